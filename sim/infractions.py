"""The ego's infractions and route progress, counted as the CARLA Leaderboard counts them.

:class:`InfractionMonitor` watches one ego on one route. Call :meth:`InfractionMonitor.update`
once per tick, after physics, with the :class:`~sim.state.WorldState` and the actors the
ego's box overlaps; it returns that tick's :class:`~sim.state.Event` s:

* collisions (walker, vehicle - car, truck, bicycle - or static): one per actor per
  episode (see ``collision_rearm_s``), never while the ego stands still;
* ``RED_LIGHT`` and ``STOP_SIGN``: the ego's path between two ticks crosses a stop line
  of ``state.signals`` forward, on a RED row, or on a STOP row without having come
  below ``stop_sign_speed_mps`` in the stop zone before the line;
* ``OUTSIDE_ROUTE_LANES``: one event when the ego leaves the driving lanes or enters a
  lane of the opposite direction; the route metres covered meanwhile accumulate in
  :attr:`InfractionMonitor.outside_lanes_m` (the penalty is a share, not a count);
* the endings: ``ROUTE_COMPLETED``, ``ROUTE_DEVIATION``, ``AGENT_BLOCKED``,
  ``ROUTE_TIMEOUT``. After one of them :attr:`~InfractionMonitor.done` is true and
  ``update`` returns nothing more.

Everything costly (a raster of lane directions around the route, a grid of stop lines)
is built once, so a tick costs a few microseconds: the route match walks from the last
matched point instead of searching the map. Frame: CARLA's world frame, SI units.

Where this deliberately differs from the Leaderboard, the docstrings say so.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

import numba
import numpy as np

from sim.errors import ConfigError, RouteError
from sim.numerics import hypot_is_pythons, py_hypot
from sim.state import ActorType, Event, EventKind, LightState, SignalStates, WorldState

if TYPE_CHECKING:
    from sim.maps.roadmap import RoadMap

__all__ = ["InfractionConfig", "InfractionMonitor", "RouteLike", "collision_kind"]


class RouteLike(Protocol):
    """What the monitor reads of a route (:class:`sim.maps.planner.DenseRoute` fits).

    ``xyz_m`` (N, 3) points in driving order, ``s_m`` (N,) cumulative distance along
    them from the first point, ``length_m`` the total.
    """

    xyz_m: np.ndarray
    s_m: np.ndarray

    @property
    def length_m(self) -> float: ...


@dataclass(frozen=True)
class InfractionConfig:
    """Thresholds of the Leaderboard's criteria (defaults: the Leaderboard's values).

    * ``deviation_m``: the route ends (``ROUTE_DEVIATION``) when the ego is further than
      this from the route near its matched point (``InRouteTest``: 30 m).
    * ``blocked_speed_mps``, ``blocked_s``: the route ends (``AGENT_BLOCKED``) after the
      ego has been slower than the speed for this long (``ActorBlockedTest``: 0.1, 180).
    * ``completion_share``, ``completion_goal_m``: the route is completed when more than
      this share of it is done and the ego is closer than this to the goal (99 %, 10 m).
    * ``timeout_base_s``, ``timeout_s_per_m``: the route times out after
      ``int(base + per_m * length)`` seconds, Leaderboard 1.0's ``route_scenario.py``
      (``INITIAL_SECONDS_DELAY`` 5 s, ``SECONDS_GIVEN_PER_METERS`` 0.8).
    * ``stop_sign_speed_mps``, ``stop_zone_m``: at a STOP row the ego must be slower
      than this speed at some tick while its front bumper is within ``stop_zone_m``
      before the line (and its centre not yet over it).
    * ``collision_min_speed_mps``: contacts while the ego is slower than this are not
      its fault (``CollisionTest.EPSILON``: 0.1 m/s).
    * ``collision_rearm_s``: an actor already counted counts again only after this many
      seconds without contact with it. ``inf`` (default): once per episode. (The
      Leaderboard forgets an actor 5 s after counting it, which counts a long scrape
      several times.)
    * ``progress_max_offset_m``: progress is credited only while the ego is within
      this of the route (more than a lane width: driving the neighbour lane still
      progresses), so a parallel road cannot advance it.
    * ``match_window_m``: when the ego is further than ``progress_max_offset_m`` from
      the route, its matched point is searched this far back and ahead along the route.
    * ``lane_margin_m``: the ego's centre may be this far beyond a driving lane's edge
      without being outside the lanes (the Leaderboard allows 1.3 m for the kerb; 0
      here: off the lane is outside). The opposite lane gets no margin.
    """

    deviation_m: float = 30.0
    blocked_speed_mps: float = 0.1
    blocked_s: float = 180.0
    completion_share: float = 0.99
    completion_goal_m: float = 10.0
    timeout_base_s: float = 5.0
    timeout_s_per_m: float = 0.8
    stop_sign_speed_mps: float = 0.1
    stop_zone_m: float = 5.0
    collision_min_speed_mps: float = 0.1
    collision_rearm_s: float = math.inf
    progress_max_offset_m: float = 5.0
    match_window_m: float = 50.0
    lane_margin_m: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ConfigError(f"InfractionConfig.{f.name} must be a number, got {value!r}")
            if value < 0 or (math.isinf(value) and f.name != "collision_rearm_s"):
                raise ConfigError(f"InfractionConfig.{f.name} must be finite and >= 0, got {value}")
        positive = (
            "deviation_m",
            "blocked_s",
            "completion_goal_m",
            "stop_zone_m",
            "progress_max_offset_m",
            "match_window_m",
            "completion_share",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"InfractionConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.completion_share > 1:
            raise ConfigError(
                f"InfractionConfig.completion_share must be in (0, 1], got {self.completion_share}"
            )

    def timeout_s(self, length_m: float) -> float:
        """Seconds a route of ``length_m`` may take (whole seconds, as the Leaderboard)."""
        return float(int(self.timeout_base_s + self.timeout_s_per_m * length_m))


_COLLISION_KIND = {
    ActorType.CAR: EventKind.COLLISION_VEHICLE,
    ActorType.TRUCK: EventKind.COLLISION_VEHICLE,
    ActorType.BICYCLE: EventKind.COLLISION_VEHICLE,
    ActorType.WALKER: EventKind.COLLISION_WALKER,
    ActorType.STATIC: EventKind.COLLISION_STATIC,
}


def collision_kind(actor_type: int) -> EventKind:
    """The collision event for touching an actor of ``actor_type`` (an :class:`ActorType`)."""
    return _COLLISION_KIND[ActorType(int(actor_type))]


# -- driving-lane directions around the route -----------------------------------------

_SECTORS = 32  # heading sectors of 11.25 deg: "opposite" is decided to within 5.6 deg
_HEADING_BITS = (1 << _SECTORS) - 1
_NEAR_BIT = 1 << _SECTORS  # within lane_margin_m of some driving lane
_TILE_SHIFT = 6  # 64 x 64 cells per tile
_TILE_MASK = (1 << _TILE_SHIFT) - 1
_TILE_BIAS = 1 << 19  # tile indices as non-negative 20-bit fields of a cell key


def _sector(yaw_rad: float) -> int:
    return int((yaw_rad + math.pi) * (_SECTORS / (2.0 * math.pi))) % _SECTORS


def _heading_masks(yaw_rad: np.ndarray) -> np.ndarray:
    """Per yaw: the bits of the sectors whose centre lies within 90 deg of it."""
    centres = -math.pi + (np.arange(_SECTORS) + 0.5) * (2.0 * math.pi / _SECTORS)
    diff = np.abs(np.remainder(centres[None, :] - yaw_rad[:, None] + math.pi, 2.0 * math.pi) - math.pi)
    bits = np.left_shift(np.uint64(1), np.arange(_SECTORS, dtype=np.uint64))
    return (diff <= 0.5 * math.pi).astype(np.uint64) @ bits


_LUT_BINS = 2048  # lane yaw quantised to 0.18 deg for its heading mask


class _LaneRaster:
    """Which headings are legal where, on a grid of ``cell_m`` cells near the route.

    Each cell holds a bit mask: bit k set when a driving lane covering the cell heads
    within 90 deg of sector k's centre, and :data:`_NEAR_BIT` when a lane is within the
    margin. Cells are stored in sparse 64 x 64 tiles, so a long route costs only the
    tiles its nearby lanes touch. The answer errs towards "inside": lanes grow by up to
    one cell diagonal (0.35 m) at their edges, and "more than 90 deg" is decided for the
    ego's 11.25 deg heading sector (to within 5.6 deg).
    """

    def __init__(
        self,
        road_map: RoadMap,
        route_xy: np.ndarray | None,
        radius_m: float,
        margin_m: float,
        cell_m: float = 0.25,
    ):
        from scipy.spatial import cKDTree

        self.inv_cell = 1.0 / cell_m
        self._lut = _heading_masks(-math.pi + (np.arange(_LUT_BINS) + 0.5) * (2.0 * math.pi / _LUT_BINS))
        tree = cKDTree(route_xy) if route_xy is not None else None
        ix, iy, masks = [], [], []
        for lane in road_map.lanes.values():
            if tree is None:
                span = (0.0, float(lane.length_m))
            else:
                dist, _ = tree.query(lane.xyz_m[:, :2], distance_upper_bound=radius_m)
                near_s = lane.s_m[np.isfinite(dist)]
                if not len(near_s):
                    continue
                # only the stretch of the lane near the route (lanes run for hundreds of metres)
                span = (float(near_s[0]) - 2.0, float(near_s[-1]) + 2.0)
            cells = self._lane_cells(lane, span, margin_m, cell_m)
            for out, part in zip((ix, iy, masks), cells, strict=True):
                out.append(part)
        self.tiles: dict[tuple[int, int], np.ndarray] = {}
        if masks:
            self._fill_tiles(np.concatenate(ix), np.concatenate(iy), np.concatenate(masks))

    def _lane_cells(self, lane, span: tuple[float, float], margin_m: float, cell_m: float):
        """Cell indices (x, y) and masks of samples covering the lane between ``span`` (s)."""
        # A square lattice of pitch 0.7 cell leaves no cell it crosses without a sample.
        step = 0.7 * cell_m
        lo, hi = max(span[0], 0.0), min(span[1], lane.length_m)
        s = np.append(np.arange(lo, hi, step), hi)
        x = np.interp(s, lane.s_m, lane.xyz_m[:, 0])
        y = np.interp(s, lane.s_m, lane.xyz_m[:, 1])
        yaw = np.interp(s, lane.s_m, np.unwrap(lane.yaw_rad))
        half = 0.5 * np.interp(s, lane.s_m, lane.width_m)
        reach = float(half.max()) + margin_m
        offsets = np.clip(
            np.arange(-math.ceil(reach / step), math.ceil(reach / step) + 1) * step, -reach, reach
        )
        nx, ny = -np.sin(yaw), np.cos(yaw)  # the lateral direction (its sign does not matter)
        lateral = np.abs(offsets)[None, :]
        inside = lateral <= half[:, None] + 1e-9
        near = lateral <= half[:, None] + margin_m + 1e-9
        bins = (np.remainder(yaw + math.pi, 2.0 * math.pi) * (_LUT_BINS / (2.0 * math.pi))).astype(np.int64)
        heading = self._lut[np.minimum(bins, _LUT_BINS - 1)][:, None] | np.uint64(_NEAR_BIT)
        mask = np.where(inside, heading, np.uint64(_NEAR_BIT))[near]
        px = (x[:, None] + offsets[None, :] * nx[:, None])[near]
        py = (y[:, None] + offsets[None, :] * ny[:, None])[near]
        return (
            np.floor(px * self.inv_cell).astype(np.int64),
            np.floor(py * self.inv_cell).astype(np.int64),
            mask,
        )

    def _fill_tiles(self, ix: np.ndarray, iy: np.ndarray, masks: np.ndarray) -> None:
        # One int64 key per cell, tile-major (tile x, tile y, row, column), makes the
        # merge of samples into cells and of cells into tiles a single sort.
        key = (
            (((ix >> _TILE_SHIFT) + _TILE_BIAS) << 32)
            | (((iy >> _TILE_SHIFT) + _TILE_BIAS) << 12)
            | ((iy & _TILE_MASK) << _TILE_SHIFT)
            | (ix & _TILE_MASK)
        )
        order = np.argsort(key)
        key, masks = key[order], masks[order]
        starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
        merged = np.bitwise_or.reduceat(masks, starts)
        key = key[starts]
        tile, local = key >> 12, key & 0xFFF
        bounds = np.r_[0, np.flatnonzero(np.diff(tile)) + 1, len(tile)]
        side = 1 << _TILE_SHIFT
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            cells = np.zeros(side * side, np.uint64)
            cells[local[a:b]] = merged[a:b]
            tx, ty = (int(tile[a]) >> 20) - _TILE_BIAS, (int(tile[a]) & 0xFFFFF) - _TILE_BIAS
            self.tiles[(tx, ty)] = cells.reshape(side, side)

    def outside(self, x: float, y: float, yaw_rad: float) -> bool:
        """True when (x, y) is on no driving lane heading within 90 deg of ``yaw_rad``."""
        ix = math.floor(x * self.inv_cell)
        iy = math.floor(y * self.inv_cell)
        tile = self.tiles.get((ix >> _TILE_SHIFT, iy >> _TILE_SHIFT))
        if tile is None:
            return True
        mask = int(tile[iy & _TILE_MASK, ix & _TILE_MASK])
        if mask >> _sector(yaw_rad) & 1:
            return False
        # On a lane, but every lane here runs the other way: the opposite lane.
        return bool(mask & _HEADING_BITS) or not mask & _NEAR_BIT


# -- stop lines -------------------------------------------------------------------------

_RED, _STOP = int(LightState.RED), int(LightState.STOP)
_LINE_CELL_M = 4.0
_LINE_REACH_M = 3.0  # longest step between two ticks checked through the grid (60 m/s)


class _StopLines:
    """The stop lines of one :class:`SignalStates` row set, in a grid for local lookups.

    Row r's line runs through ``stop_xy_m[r]`` across the direction ``stop_yaw_rad[r]``,
    half a lane width to either side (the width of the controlled entry lane at its
    end). A row is filed in every grid cell near its line or its stop zone, so a tick
    looks at the rows of the ego's cell only.
    """

    def __init__(self, signals: SignalStates, road_map: RoadMap, zone_m: float):
        self.ids = signals.signal_id
        n = len(signals)
        self.cx = [float(v) for v in signals.stop_xy_m[:, 0]]
        self.cy = [float(v) for v in signals.stop_xy_m[:, 1]]
        self.ux = [math.cos(float(v)) for v in signals.stop_yaw_rad]
        self.uy = [math.sin(float(v)) for v in signals.stop_yaw_rad]
        self.half = [self._half_width(road_map, signals.lanes[r], self.cx[r], self.cy[r]) for r in range(n)]
        self.stopped = [False] * n
        self.all_rows = tuple(range(n))
        self.grid: dict[tuple[int, int], tuple[int, ...]] = {}
        cells: dict[tuple[int, int], list[int]] = {}
        for r in range(n):
            for key in self._cells(r, zone_m):
                cells.setdefault(key, []).append(r)
        self.grid = {k: tuple(v) for k, v in cells.items()}

    @staticmethod
    def _half_width(road_map: RoadMap, key, x: float, y: float) -> float:
        lane = road_map.lanes.get(key)
        if lane is not None:
            return 0.5 * float(lane.width_m[-1])
        pos = road_map.project(x, y)  # a row whose lane is not a driving lane of this map
        return 0.5 * float(road_map.lanes[pos.key].width_m[pos.index])

    def _cells(self, r: int, zone_m: float) -> set[tuple[int, int]]:
        reach, h = _LINE_REACH_M, self.half[r] + _LINE_REACH_M
        ux, uy = self.ux[r], self.uy[r]
        xs, ys = [], []
        for a in (-zone_m - reach, reach):
            for b in (-h, h):
                xs.append(self.cx[r] + a * ux - b * uy)
                ys.append(self.cy[r] + a * uy + b * ux)
        x0, x1 = math.floor(min(xs) / _LINE_CELL_M), math.floor(max(xs) / _LINE_CELL_M)
        y0, y1 = math.floor(min(ys) / _LINE_CELL_M), math.floor(max(ys) / _LINE_CELL_M)
        return {(i, j) for i in range(x0, x1 + 1) for j in range(y0, y1 + 1)}

    def rows_near(self, x: float, y: float, step_m: float) -> Sequence[int]:
        if step_m > _LINE_REACH_M:  # a jump: the grid no longer bounds the path
            return self.all_rows
        return self.grid.get((math.floor(x / _LINE_CELL_M), math.floor(y / _LINE_CELL_M)), ())


#: The raster covers lanes whose centre line comes within this of the route plus the
#: margin; beyond :data:`_RASTER_USE_M` from the route the map is asked instead
#: (rarely: the ego is then one road or three lanes off its route).
_RASTER_USE_M = 12.0
_RASTER_EXTRA_M = 6.0  # a lane's half width and the spacing of its points, generously


#: one raster of every lane per (map, margin), shared by every route and world on the map
_MAP_RASTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _map_raster(road_map: RoadMap, margin_m: float) -> _LaneRaster:
    """The lane raster of the whole map, built once per map and margin (a second or so on a town,
    tens of MB); a route then costs nothing to set up."""
    per_map = _MAP_RASTERS.setdefault(road_map, {})
    raster = per_map.get(margin_m)
    if raster is None:
        raster = per_map[margin_m] = _LaneRaster(road_map, None, 0.0, margin_m)
    return raster


class _LaneDirections:
    """Outside the driving lanes or in an opposite lane? The raster near the route,
    :meth:`RoadMap.lane_at` further out (tens of microseconds, off the common path)."""

    def __init__(self, road_map: RoadMap, route_xy: np.ndarray, margin_m: float):
        self.road_map = road_map
        self.margin_m = margin_m
        self.raster = _map_raster(road_map, margin_m)

    def outside(self, x: float, y: float, yaw_rad: float, route_offset_m: float) -> bool:
        if route_offset_m <= _RASTER_USE_M:
            return self.raster.outside(x, y, yaw_rad)
        return self._outside_by_map(x, y, yaw_rad)

    def _outside_by_map(self, x: float, y: float, yaw_rad: float) -> bool:
        pos = self.road_map.lane_at(x, y, yaw_rad=yaw_rad)
        if pos is None:
            pos = self.road_map.project(x, y)
            lane = self.road_map.lanes[pos.key]
            return abs(pos.lateral_m) > 0.5 * float(lane.width_m[pos.index]) + self.margin_m
        lane = self.road_map.lanes[pos.key]
        return abs(math.remainder(float(lane.yaw_rad[pos.index]) - yaw_rad, 2.0 * math.pi)) > 0.5 * math.pi


# -- the route match, compiled ------------------------------------------------------------


@numba.njit(cache=True)
def _near_tie(a, b):
    """Squared distances this close may compare either way in the monitor's Python (``v ** 2``
    rounds as the C library's ``pow`` does; here it is ``v * v``)."""
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


@numba.njit(cache=True)
def _dist_sq(pts, p, x, y):
    return (pts[p, 0] - x) * (pts[p, 0] - x) + (pts[p, 1] - y) * (pts[p, 1] - y)


@numba.njit(cache=True)
def _match_route(pts, s, near, x, y, max_sq, window_m):
    """:meth:`InfractionMonitor._match_py` compiled: (i, s of the foot, distance), or i = -1
    when a near tie of two distances leaves the answer to the Python rounding.
    ``pts`` (N, 6): x, y, s, unit vector x and y and length of the segment to the next point."""
    i = near
    d = _dist_sq(pts, i, x, y)
    while i + 1 < pts.shape[0]:
        dn = _dist_sq(pts, i + 1, x, y)
        if _near_tie(dn, d):
            return -1, 0.0, 0.0
        if dn > d:
            break
        i, d = i + 1, dn
    if i == near:
        while i > 0:
            dn = _dist_sq(pts, i - 1, x, y)
            if _near_tie(dn, d):
                return -1, 0.0, 0.0
            if dn >= d:
                break
            i, d = i - 1, dn
    if _near_tie(d, max_sq):
        return -1, 0.0, 0.0
    if d > max_sq:
        i = _window_nearest(pts, s, i, d, x, y, window_m)
        if i < 0:
            return -1, 0.0, 0.0
    foot_s, foot_d = _foot(pts, i, x, y)
    return i, foot_s, foot_d


@numba.njit(cache=True)
def _window_nearest(pts, s, i, d, x, y, window_m):
    """:meth:`InfractionMonitor._window_nearest` compiled; -1 on a near tie."""
    lo = np.searchsorted(s, s[i] - window_m, side="left")
    hi = np.searchsorted(s, s[i] + window_m, side="right")
    k, dk = lo, np.inf
    for p in range(lo, hi):
        dp = _dist_sq(pts, p, x, y)
        if dp < dk:
            k, dk = p, dp
    if _near_tie(dk, d):
        return -1
    return k if dk < d else i


@numba.njit(cache=True)
def _foot(pts, i, x, y):
    """:meth:`InfractionMonitor._foot_py` compiled (its ``min``/``max`` and ``math.hypot``)."""
    best_s, best_d = pts[i, 2], py_hypot(pts[i, 0] - x, pts[i, 1] - y)
    for j in (i - 1, i):
        if j < 0 or j + 1 >= pts.shape[0] or pts[j, 5] <= 0.0:
            continue
        dx, dy = x - pts[j, 0], y - pts[j, 1]
        along = dx * pts[j, 3] + dy * pts[j, 4]
        t = 0.0 if along < 0.0 else along  # max(along, 0.0)
        t = pts[j, 5] if pts[j, 5] < t else t  # min(t, seg)
        d = py_hypot(dx - t * pts[j, 3], dy - t * pts[j, 4])
        if d < best_d:
            best_s, best_d = pts[j, 2] + t, d
    return best_s, best_d


# -- the monitor ------------------------------------------------------------------------


class InfractionMonitor:
    """Infractions, progress and the end of one route driven by the ego.

    ``road_map`` is the map the route lies on; ``route`` any :class:`RouteLike`
    (at least two points, length > 0); ``start_time_s`` the world time at which the
    route starts (the timeout and the blocked timer count from it).

    Route progress is the furthest distance along the route of the ego's foot on it,
    credited only while the ego is within ``progress_max_offset_m`` of the route. The
    matched point moves from the last one to its nearest neighbour, so a route that
    passes near itself (a loop, the way back on the other lane) never jumps ahead.

    Outside-lane metres are route metres of progress made while the ego was outside
    the driving lanes or in an opposite lane (at any tick since the previous progress),
    as the Leaderboard's ``OutsideRouteLanesTest`` counts them. :attr:`outside_lanes_share`
    divides them by the route length (the issue's rule; the Leaderboard divides by
    the completed length, :attr:`outside_lanes_share_of_completed`).
    """

    def __init__(
        self,
        road_map: RoadMap,
        route: RouteLike,
        config: InfractionConfig | None = None,
        *,
        start_time_s: float = 0.0,
    ):
        self.config = config or InfractionConfig()
        xyz = np.asarray(route.xyz_m, dtype=np.float64)
        s = np.asarray(route.s_m, dtype=np.float64)
        if xyz.ndim != 2 or xyz.shape[0] < 2 or xyz.shape[0] != s.shape[0] or not float(route.length_m) > 0:
            raise RouteError("InfractionMonitor: a route needs at least two points and a positive length")
        self.road_map = road_map
        self.length_m = float(route.length_m)
        self.goal_xyz_m = tuple(float(v) for v in xyz[-1])
        self.start_time_s = float(start_time_s)
        self.timeout_s = self.config.timeout_s(self.length_m)
        self._init_route(xyz, s)
        self._lanes = _LaneDirections(road_map, xyz[:, :2], self.config.lane_margin_m)
        self._lines: _StopLines | None = None
        self._events: list[Event] = []
        self._prev_xy: tuple[float, float] | None = None
        self._time_s = self.start_time_s
        self._last_moving_s = self.start_time_s
        self._last_contact_s: dict[int, float] = {}
        self._counted: set[int] = set()
        self._outside = False
        self._outside_pending = False
        self.progress_m = 0.0
        self.route_offset_m = 0.0
        self.outside_lanes_m = 0.0
        self.distance_driven_m = 0.0
        self.done = False
        self.end_reason: EventKind | None = None
        self._completed = False

    def _init_route(self, xyz: np.ndarray, s: np.ndarray) -> None:
        self._xy = np.ascontiguousarray(xyz[:, :2])
        self._s_arr = s
        self._xs = xyz[:, 0].tolist()
        self._ys = xyz[:, 1].tolist()
        self._s = s.tolist()
        d = np.diff(self._xy, axis=0)
        seg = np.hypot(d[:, 0], d[:, 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.where(seg[:, None] > 0, d / seg[:, None], 0.0)
        self._ux, self._uy, self._seg = u[:, 0].tolist(), u[:, 1].tolist(), seg.tolist()
        self._n = len(self._xs)
        self._near = 0
        # the same numbers, one row per point, for the compiled match
        self._pts = np.zeros((self._n, 6))
        self._pts[:, 0], self._pts[:, 1], self._pts[:, 2] = xyz[:, 0], xyz[:, 1], s
        self._pts[:-1, 3], self._pts[:-1, 4], self._pts[:-1, 5] = u[:, 0], u[:, 1], seg

    # -- read-outs -----------------------------------------------------------------

    @property
    def events(self) -> tuple[Event, ...]:
        """Every event so far, in order."""
        return tuple(self._events)

    @property
    def route_completion(self) -> float:
        """Share of the route done, in [0, 1]; 1 once completed (as the Leaderboard)."""
        if self._completed:
            return 1.0
        return min(1.0, self.progress_m / self.length_m)

    @property
    def outside_lanes_share(self) -> float:
        """Outside-lane route metres over the route length, in [0, 1]."""
        return min(1.0, self.outside_lanes_m / self.length_m)

    @property
    def outside_lanes_share_of_completed(self) -> float:
        """Outside-lane route metres over the metres completed (the Leaderboard's share)."""
        return min(1.0, self.outside_lanes_m / self.progress_m) if self.progress_m > 0 else 0.0

    def outside_lanes_at(self, x_m: float, y_m: float, yaw_rad: float) -> bool:
        """The per-tick rule at any pose: off every driving lane, or on lanes that all
        head more than 90 deg away from ``yaw_rad`` (for diagnosis; not cheap)."""
        offset = float(np.min(np.hypot(self._xy[:, 0] - x_m, self._xy[:, 1] - y_m)))
        return self._lanes.outside(x_m, y_m, yaw_rad, offset)

    @property
    def elapsed_s(self) -> float:
        """World time since the route started, up to the last update."""
        return self._time_s - self.start_time_s

    # -- the tick ------------------------------------------------------------------

    def update(self, state: WorldState, ego_contacts: Sequence[tuple[int, int]] = ()) -> list[Event]:
        """Advance by one tick; return this tick's events (empty once :attr:`done`).

        ``ego_contacts``: (other actor id, :class:`ActorType`) for every actor the ego's
        box overlaps on this tick. Motion (stop-line crossings, distance driven) is
        measured from the previous update's position, so the first call only records
        where the ego is: pass the state after reset (tick 0) first where it matters.
        """
        if self.done:
            return []
        ego = state.ego
        x, y = ego.x_m, ego.y_m
        t = state.time_s
        self._time_s = t
        events: list[Event] = []
        px, py = self._prev_xy if self._prev_xy is not None else (x, y)
        step = math.hypot(x - px, y - py)
        self.distance_driven_m += step
        if ego_contacts:
            self._collisions(state, ego_contacts, events)
        if len(state.signals):
            self._stop_lines(state, px, py, step, events)
        self._route(state, events)
        self._endings(state, events)
        self._prev_xy = (x, y)
        if events:
            self._events.extend(events)
        return events

    @staticmethod
    def _event(
        kind: EventKind, state: WorldState, other_id: int = -1, other_type: int = -1, detail: str = ""
    ) -> Event:
        ego = state.ego
        return Event(kind, state.time_s, (ego.x_m, ego.y_m, ego.z_m), other_id, other_type, detail)

    def _collisions(self, state: WorldState, contacts, events: list[Event]) -> None:
        t = state.time_s
        moving = state.ego.speed_mps >= self.config.collision_min_speed_mps
        for other_id, other_type in contacts:
            oid = int(other_id)
            last = self._last_contact_s.get(oid)
            self._last_contact_s[oid] = t
            if not moving:
                continue
            if oid in self._counted and last is not None and t - last < self.config.collision_rearm_s:
                continue
            self._counted.add(oid)
            events.append(self._event(collision_kind(other_type), state, oid, int(other_type)))

    def _stop_lines(self, state: WorldState, px: float, py: float, step: float, events: list[Event]) -> None:
        signals = state.signals
        lines = self._lines
        if lines is None or (signals.signal_id is not lines.ids and signals.signal_id != lines.ids):
            lines = self._lines = _StopLines(signals, self.road_map, self.config.stop_zone_m)
        ego = state.ego
        rows = lines.rows_near(ego.x_m, ego.y_m, step)
        if not rows:
            return
        lights = signals.state
        for r in rows:
            light = int(lights[r])  # a plain int: numpy scalars compare slowly with enums
            if light in (_RED, _STOP):  # GREEN, YELLOW and OFF are legal to cross
                kind = self._stop_line(lines, r, light == _RED, ego, px, py)
                if kind is not None:
                    events.append(self._event(kind, state, detail=lines.ids[r]))

    def _stop_line(self, lines: _StopLines, r: int, red: bool, ego, px: float, py: float) -> EventKind | None:
        """The infraction of row r on this tick: a red light or stop sign run, or None."""
        x, y = ego.x_m, ego.y_m
        cx, cy, ux, uy, half = lines.cx[r], lines.cy[r], lines.ux[r], lines.uy[r], lines.half[r]
        a1 = (x - cx) * ux + (y - cy) * uy  # along the direction of travel; the line is at 0
        lat1 = (y - cy) * ux - (x - cx) * uy
        # The stop zone holds the ego when its front bumper is in it (the Leaderboard tests
        # the ego's box against the stop sign's trigger volume, not its centre).
        front = a1 + 0.5 * ego.length_m
        if not red and -self.config.stop_zone_m <= front and a1 <= 0.0 and abs(lat1) <= half:
            if ego.speed_mps < self.config.stop_sign_speed_mps:
                lines.stopped[r] = True
            return None
        a0 = (px - cx) * ux + (py - cy) * uy
        if not a0 < 0.0 <= a1:
            return None
        lat0 = (py - cy) * ux - (px - cx) * uy
        if abs(lat0 + (lat1 - lat0) * (-a0 / (a1 - a0))) > half:
            return None  # crossed the line's extension: another lane
        stopped, lines.stopped[r] = lines.stopped[r], False  # the next pass needs a new stop
        if red:
            return EventKind.RED_LIGHT
        return None if stopped else EventKind.STOP_SIGN

    def _route(self, state: WorldState, events: list[Event]) -> None:
        ego = state.ego
        x, y = ego.x_m, ego.y_m
        s, dist = self._match(x, y)
        self.route_offset_m = dist
        gain = 0.0
        if dist <= self.config.progress_max_offset_m and s > self.progress_m:
            gain = s - self.progress_m
            self.progress_m = s
        # Beyond deviation_m the route ends on this tick: no outside stretch starts there.
        outside = dist <= self.config.deviation_m and self._lanes.outside(x, y, ego.yaw_rad, dist)
        if outside and not self._outside:
            events.append(self._event(EventKind.OUTSIDE_ROUTE_LANES, state))
        self._outside = outside
        self._outside_pending = self._outside_pending or outside
        if gain > 0.0:
            if self._outside_pending:
                self.outside_lanes_m += gain
            self._outside_pending = False

    def _match(self, x: float, y: float) -> tuple[float, float]:
        """Distance along the route of the ego's foot, and its distance from the route."""
        if hypot_is_pythons():  # (checked once) else the Python match
            cfg = self.config
            i, s, dist = _match_route(
                self._pts, self._s_arr, self._near, x, y, cfg.progress_max_offset_m**2, cfg.match_window_m
            )
            if i >= 0:
                self._near = i
                return s, dist
        return self._match_py(x, y)

    def _match_py(self, x: float, y: float) -> tuple[float, float]:
        """:meth:`_match` in Python (near ties of two distances are decided here)."""
        xs, ys = self._xs, self._ys
        i = self._near
        d = (xs[i] - x) ** 2 + (ys[i] - y) ** 2
        while i + 1 < self._n:
            dn = (xs[i + 1] - x) ** 2 + (ys[i + 1] - y) ** 2
            if dn > d:
                break
            i, d = i + 1, dn
        if i == self._near:
            while i > 0:
                dn = (xs[i - 1] - x) ** 2 + (ys[i - 1] - y) ** 2
                if dn >= d:
                    break
                i, d = i - 1, dn
        if d > self.config.progress_max_offset_m**2:
            i = self._window_nearest(i, d, x, y)
        self._near = i
        return self._foot_py(i, x, y)

    def _window_nearest(self, i: int, d: float, x: float, y: float) -> int:
        """Far from the route: the nearest point within ``match_window_m`` of point i."""
        w = self.config.match_window_m
        lo = int(np.searchsorted(self._s_arr, self._s[i] - w, side="left"))
        hi = int(np.searchsorted(self._s_arr, self._s[i] + w, side="right"))
        seg = self._xy[lo:hi]
        d2 = (seg[:, 0] - x) ** 2 + (seg[:, 1] - y) ** 2
        k = int(np.argmin(d2))
        return lo + k if d2[k] < d else i

    def _foot_py(self, i: int, x: float, y: float) -> tuple[float, float]:
        best_s, best_d = self._s[i], math.hypot(self._xs[i] - x, self._ys[i] - y)
        for j in (i - 1, i):
            if j < 0 or j + 1 >= self._n or self._seg[j] <= 0.0:
                continue
            dx, dy = x - self._xs[j], y - self._ys[j]
            t = min(max(dx * self._ux[j] + dy * self._uy[j], 0.0), self._seg[j])
            d = math.hypot(dx - t * self._ux[j], dy - t * self._uy[j])
            if d < best_d:
                best_s, best_d = self._s[j] + t, d
        return best_s, best_d

    def _endings(self, state: WorldState, events: list[Event]) -> None:
        cfg = self.config
        ego = state.ego
        t = state.time_s
        if ego.speed_mps >= cfg.blocked_speed_mps:
            self._last_moving_s = t
        gx, gy, _ = self.goal_xyz_m
        kind = None
        if (
            self.progress_m > cfg.completion_share * self.length_m
            and math.hypot(ego.x_m - gx, ego.y_m - gy) < cfg.completion_goal_m
        ):
            kind = EventKind.ROUTE_COMPLETED
            self._completed = True
        elif self.route_offset_m > cfg.deviation_m:
            kind = EventKind.ROUTE_DEVIATION
        elif t - self._last_moving_s >= cfg.blocked_s:
            kind = EventKind.AGENT_BLOCKED
        elif t - self.start_time_s >= self.timeout_s:
            kind = EventKind.ROUTE_TIMEOUT
        if kind is not None:
            self.done = True
            self.end_reason = kind
            events.append(self._event(kind, state))
