"""The one map type the rest of loopdrive uses.

:class:`RoadMap` wraps ``carla.Map(name, xodr_text)`` from the ``carla`` client
package, which parses OpenDRIVE offline (no server). From it the map extracts, once,
the driving lanes as dense centre lines (a point every ``resolution_m``), their
widths, markings and allowed lane changes, the lane topology, junctions and signals.

Frames and units: positions are in CARLA's world frame (x forward, y right, z up,
metres; y is the negated OpenDRIVE y). Inside loopdrive angles are radians; the
conversion from CARLA's degrees happens here, in :func:`_yaw_rad`.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache, cached_property
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np

from sim.errors import MapError
from sim.maps.native import quiet_native_output
from sim.numerics import dot2, hypot_is_pythons, numpy_dot2_fused, py_hypot

__all__ = [
    "LaneKey",
    "Lane",
    "LaneChange",
    "Marking",
    "Signal",
    "Junction",
    "LanePosition",
    "RoadMap",
    "DEFAULT_SPEED_LIMIT_MPS",
]

#: Speed limit for roads whose OpenDRIVE ``<type>`` gives none (50 km/h, urban default).
DEFAULT_SPEED_LIMIT_MPS = 50.0 / 3.6

_SPEED_UNITS_TO_MPS = {"m/s": 1.0, "km/h": 1.0 / 3.6, "mph": 0.44704}


class LaneKey(NamedTuple):
    """An OpenDRIVE lane: road id, lane-section index within the road, lane id."""

    road_id: int
    section_id: int
    lane_id: int


class LaneChange(IntEnum):
    """Lane changes the marking on a side allows (bit flags, as ``carla.LaneChange``)."""

    NONE = 0
    RIGHT = 1
    LEFT = 2
    BOTH = 3


class Marking(IntEnum):
    """Lane-marking types (a subset of ``carla.LaneMarkingType``, same names)."""

    NONE = 0
    BROKEN = 1
    SOLID = 2
    SOLID_SOLID = 3
    SOLID_BROKEN = 4
    BROKEN_SOLID = 5
    BROKEN_BROKEN = 6
    BOTTS_DOTS = 7
    GRASS = 8
    CURB = 9
    OTHER = 10


_MARKING_BY_NAME = {m.name.replace("_", ""): m for m in Marking}


def _marking(carla_marking) -> tuple[Marking, str]:
    if carla_marking is None:  # lanes without a <roadMark>
        return Marking.NONE, "none"
    name = str(carla_marking.type).replace("_", "").upper()
    return _MARKING_BY_NAME.get(name, Marking.OTHER), str(carla_marking.color).lower()


def _yaw_rad(carla_yaw_deg: float) -> float:
    """CARLA yaw (degrees, any range) to radians in (-pi, pi]."""
    return math.remainder(math.radians(carla_yaw_deg), 2.0 * math.pi)


@dataclass
class Lane:
    """A driving lane as a dense centre line, in driving direction.

    Arrays have one row per point; ``s_m`` is the distance along the lane from its
    start (the point where traffic enters it).
    """

    key: LaneKey
    xyz_m: np.ndarray  # (N, 3) float64, CARLA world frame
    yaw_rad: np.ndarray  # (N,)
    width_m: np.ndarray  # (N,)
    s_m: np.ndarray  # (N,)
    lane_change: np.ndarray  # (N,) int8, LaneChange flags
    left_marking: np.ndarray  # (N,) int8, Marking
    right_marking: np.ndarray  # (N,) int8, Marking
    left_color: str
    right_color: str
    junction_id: int  # -1 outside junctions
    speed_limit_mps: float
    successors: list[LaneKey] = field(default_factory=list)
    predecessors: list[LaneKey] = field(default_factory=list)
    left: LaneKey | None = None  # adjacent driving lane, same direction, on the left
    right: LaneKey | None = None  # adjacent driving lane, same direction, on the right

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    @property
    def in_junction(self) -> bool:
        return self.junction_id >= 0

    def point_at(self, s_m: float) -> tuple[np.ndarray, float]:
        """Centre-line position (x, y, z) and yaw at distance ``s_m`` along the lane."""
        s = float(np.clip(s_m, 0.0, self.length_m))
        i = int(np.clip(np.searchsorted(self.s_m, s, side="right") - 1, 0, len(self.s_m) - 2))
        ds = self.s_m[i + 1] - self.s_m[i]
        t = 0.0 if ds <= 0 else (s - self.s_m[i]) / ds
        xyz = self.xyz_m[i] * (1.0 - t) + self.xyz_m[i + 1] * t
        dyaw = math.remainder(self.yaw_rad[i + 1] - self.yaw_rad[i], 2.0 * math.pi)
        return xyz, math.remainder(self.yaw_rad[i] + t * dyaw, 2.0 * math.pi)


@dataclass(frozen=True)
class Signal:
    """A signal or landmark from the OpenDRIVE file (traffic light, stop sign, ...)."""

    id: str
    kind: str  # "traffic_light", "stop", "yield", "speed_limit" or "other"
    type: str  # OpenDRIVE type code, e.g. "1000001", "206", "274"
    name: str
    road_id: int
    s_m: float
    xyz_m: tuple[float, float, float]
    yaw_rad: float  # carla's landmark yaw: the road's reference heading, not turned for "-"
    value: float
    orientation: str = "+"  # "+" governs traffic along the road's s, "-" against it, "both"


@dataclass(frozen=True)
class Junction:
    """A junction: its id, the connecting lanes in it and a bounding box (x, y)."""

    id: int
    lanes: tuple[LaneKey, ...]
    min_xy: tuple[float, float]
    max_xy: tuple[float, float]


class LanePosition(NamedTuple):
    """Where a world position lies on a lane."""

    key: LaneKey
    index: int  # nearest centre-line point
    s_m: float  # distance along the lane
    lateral_m: float  # signed offset from the centre line, positive to the right
    distance_m: float  # distance from the centre line (x, y)


def _signal_kind(type_code: str, name: str) -> str:
    lname = name.lower()
    if type_code == "1000001" or "light" in lname:
        return "traffic_light"
    if type_code == "206" or "stop" in lname:
        return "stop"
    if type_code == "205" or "yield" in lname:
        return "yield"
    if type_code == "274" or "speed" in lname:
        return "speed_limit"
    return "other"


def _orientation(carla_orientation) -> str:
    name = str(carla_orientation).lower()
    return "-" if "negative" in name else ("both" if "both" in name else "+")


def _road_speed_limits(xodr_text: str) -> dict[int, float]:
    """Speed limit (m/s) per road id from the ``<type><speed>`` records (first one)."""
    limits: dict[int, float] = {}
    try:
        root = ET.fromstring(xodr_text)
    except ET.ParseError:
        return limits
    for road in root.iter("road"):
        try:
            rid = int(road.get("id", ""))
        except ValueError:
            continue
        for speed in road.iter("speed"):
            try:
                value = float(speed.get("max", ""))
            except ValueError:
                continue
            factor = _SPEED_UNITS_TO_MPS.get(speed.get("unit", "m/s").strip(), 1.0)
            if value > 0:
                limits[rid] = value * factor
                break
    return limits


def read_map_text(path: Path, what: str) -> str:
    """The text of a map file, or a :class:`MapError` naming the file and the reason."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MapError(f"{path}: no such {what} file") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise MapError(f"{path}: cannot read the {what} file ({exc.__class__.__name__})") from None


def content_hash(text: str) -> str:
    """The SHA-256 of an OpenDRIVE text, which keys every cache built from a map."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: cell size (m) of the point grid behind :meth:`RoadMap.project` (more on large maps)
_GRID_CELL_M = 2.0
_GRID_MAX_CELLS = 4_000_000
#: rings of cells the grid searches before it leaves a query to the k-d tree
_GRID_MAX_RINGS = 40
#: values closer than this (relative) are a tie the grid cannot order as the k-d tree does
_TIE = 1e-9


@numba.njit(cache=True)
def _nearest_points(x, y, k, pxy, cell_start, cell_pts, x0, y0, cell_m, nx, ny, best_d, best_i):
    """The k nearest points to (x, y), nearest first, into ``best_d``/``best_i`` (length
    k), by a search over rings of grid cells; False when not found within the rings."""
    best_d[:] = np.inf
    best_i[:] = -1
    cx = int(math.floor((x - x0) / cell_m))
    cy = int(math.floor((y - y0) / cell_m))
    for r in range(_GRID_MAX_RINGS + 1):
        for ix in range(max(cx - r, 0), min(cx + r, nx - 1) + 1):
            edge_x = ix == cx - r or ix == cx + r
            for iy in range(max(cy - r, 0), min(cy + r, ny - 1) + 1):
                if not edge_x and iy != cy - r and iy != cy + r:
                    continue  # inside the ring: visited before
                c = ix * ny + iy
                for p in cell_pts[cell_start[c] : cell_start[c + 1]]:
                    dx, dy = pxy[p, 0] - x, pxy[p, 1] - y
                    d = math.sqrt(dx * dx + dy * dy)
                    if d < best_d[k - 1]:
                        m = k - 1
                        while m > 0 and best_d[m - 1] > d:
                            best_d[m], best_i[m] = best_d[m - 1], best_i[m - 1]
                            m -= 1
                        best_d[m], best_i[m] = d, p
        # every point not yet seen lies outside the square of rings 0..r
        reach = min(
            x - (x0 + (cx - r) * cell_m),
            x0 + (cx + r + 1) * cell_m - x,
            y - (y0 + (cy - r) * cell_m),
            y0 + (cy + r + 1) * cell_m - y,
        )
        if best_d[k - 1] < reach - 1e-6:
            return True
    return False


@numba.njit(cache=True)
def _project_point(x, y, yaw_rad, use_yaw, k, pxy, pyaw, cell_start, cell_pts, x0, y0, cell_m, nx, ny):
    """The point :meth:`RoadMap.project` chooses among the k nearest: the nearest, lanes
    heading more than 90 deg from ``yaw_rad`` (when ``use_yaw``) counted 1 km further.
    -1 when a tie (equal distances, a heading at 90 deg, an equal k-th and k+1-th
    point) leaves the choice to the k-d tree's order, or the point is far from all."""
    best_d = np.empty(k + 1)
    best_i = np.empty(k + 1, np.int64)
    if not _nearest_points(x, y, k + 1, pxy, cell_start, cell_pts, x0, y0, cell_m, nx, ny, best_d, best_i):
        return -1
    eff = best_d[:k].copy()
    for c in range(k):
        if use_yaw:
            diff = pyaw[best_i[c]] - yaw_rad
            off = abs(diff - 2.0 * math.pi * np.round(diff / (2.0 * math.pi)))
            if abs(off - 0.5 * math.pi) <= _TIE:
                return -1
            if off > 0.5 * math.pi:
                eff[c] += 1e3
    w = 0
    for c in range(1, k):
        if eff[c] < eff[w]:
            w = c
    for c in range(k):
        if c != w and abs(eff[c] - eff[w]) <= _TIE * max(1.0, eff[w]):
            return -1
    last = best_d[k - 1]
    tied_last = abs(best_d[k] - last) <= _TIE * max(1.0, last)
    if tied_last and (eff[w] > best_d[w] or abs(best_d[w] - last) <= _TIE * max(1.0, last)):
        return -1  # which of the points at the k-th distance the k-d tree keeps matters
    return best_i[w]


class _PointGrid:
    """The lane points in square cells (CSR), for :func:`_project_point`."""

    def __init__(self, xy: np.ndarray, yaw: np.ndarray):
        self.xy, self.yaw = xy, yaw
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        span = np.maximum(hi - lo, 1.0)
        self.cell_m = max(_GRID_CELL_M, math.sqrt(float(span[0] * span[1]) / _GRID_MAX_CELLS))
        self.x0, self.y0 = float(lo[0]), float(lo[1])
        self.nx, self.ny = (int(v) for v in np.floor(span / self.cell_m) + 1)
        ix = np.floor((xy[:, 0] - self.x0) / self.cell_m).astype(np.int64)
        iy = np.floor((xy[:, 1] - self.y0) / self.cell_m).astype(np.int64)
        cell = ix * self.ny + iy
        self.cell_pts = np.argsort(cell, kind="stable").astype(np.int64)
        counts = np.bincount(cell, minlength=self.nx * self.ny)
        self.cell_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def choose(self, x: float, y: float, yaw_rad: float | None, k: int) -> int:
        yaw = 0.0 if yaw_rad is None else float(yaw_rad)
        return _project_point(
            float(x), float(y), yaw, yaw_rad is not None, k, self.xy, self.yaw,
            self.cell_start, self.cell_pts, self.x0, self.y0, self.cell_m, self.nx, self.ny,
        )  # fmt: skip


@numba.njit(cache=True)
def _refine_point(xy, seg_d, seg_sq, s, first, n, j, x, y, fused):
    """:meth:`RoadMap._refine_py` compiled, for the lane of ``n`` points from point
    ``first`` of the map's point arrays: (index, s, lateral, distance). Its dot products
    and hypot as numpy and Python round them (:mod:`sim.numerics`; ``fused``: numpy's)."""
    lo, hi = max(j - 1, 0), min(j, n - 2)  # segments i: points i and i + 1
    if hi < lo:  # single-point lane
        dist = py_hypot(x - xy[first, 0], y - xy[first, 1])
        return 0, 0.0, dist, dist
    best_i, best_s, best_lateral, best_d = -1, 0.0, 0.0, 0.0
    for i in range(lo, hi + 1):
        p = first + i
        p0x, p0y, dx, dy, ll = xy[p, 0], xy[p, 1], seg_d[p, 0], seg_d[p, 1], seg_sq[p]
        t = 0.0
        if ll != 0.0:
            t = dot2(x - p0x, y - p0y, dx, dy, fused) / ll
            t = 0.0 if t <= 0.0 else (1.0 if t > 1.0 else t)  # np.clip's zero and NaN
        dist = py_hypot(x - (p0x + t * dx), y - (p0y + t * dy))
        if best_i < 0 or dist < best_d:
            cross = dx * (y - p0y) - dy * (x - p0x)  # > 0: right of travel (y right)
            best_lateral = math.copysign(dist, cross) if ll > 0 else dist
            best_i, best_s, best_d = i if t < 0.5 else i + 1, s[p] + t * math.sqrt(ll), dist
    return best_i, best_s, best_lateral, best_d


@cache
def _compiled_refine() -> bool:
    """Whether :func:`_refine_point` gives :meth:`RoadMap._refine_py`'s bits here."""
    return hypot_is_pythons() and numpy_dot2_fused() is not None


class RoadMap:
    """A parsed OpenDRIVE map with its driving lanes, topology, junctions and signals.

    Build one with :meth:`from_xodr` or :func:`sim.maps.load_map`. Lanes are traced
    once at construction (about a second for the largest CARLA towns).
    """

    def __init__(self, name: str, xodr_text: str, *, source: str = "", resolution_m: float = 1.0):
        import carla  # the offline OpenDRIVE parser; no server is contacted

        if resolution_m <= 0:
            raise MapError(f"{name}: resolution_m must be positive, got {resolution_m}")
        self.name = name
        self.source = source or name
        self.xodr_text = xodr_text
        self.resolution_m = resolution_m
        self.content_hash = content_hash(xodr_text)
        try:
            with quiet_native_output():
                self.carla_map = carla.Map(name, xodr_text)
        except RuntimeError as exc:  # carla raises RuntimeError on unparsable files
            raise MapError(f"{self.source}: not a valid OpenDRIVE map ({exc})") from None
        self._speed_limits = _road_speed_limits(xodr_text)
        self.lanes: dict[LaneKey, Lane] = self._trace_lanes()
        if not self.lanes:
            raise MapError(f"{self.source}: the OpenDRIVE map has no driving lanes")
        self._link_neighbours()
        self._fill_speed_limits()

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_xodr(cls, name: str, xodr_text: str, **kwargs) -> RoadMap:
        return cls(name, xodr_text, **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> RoadMap:
        path = Path(path)
        text = read_map_text(path, "map")
        if "<OpenDRIVE" not in text[:4096]:
            raise MapError(f"{path}: not an OpenDRIVE file (no <OpenDRIVE> root element)")
        return cls(path.stem, text, source=str(path), **kwargs)

    @staticmethod
    def _key(wp) -> LaneKey:
        return LaneKey(wp.road_id, wp.section_id, wp.lane_id)

    def _lane_starts(self) -> tuple[dict[LaneKey, object], list[tuple[LaneKey, object]]]:
        starts: dict[LaneKey, object] = {}
        edges = []
        for a, b in self.carla_map.get_topology():
            starts.setdefault(self._key(a), a)
            edges.append((self._key(a), b))
        # Lanes without successors (dead ends) start no topology edge. Their first
        # point is the generated waypoint furthest upstream (``previous_until_lane_start``
        # crashes the carla 0.9.16 client on lanes without a predecessor).
        for wp in self.carla_map.generate_waypoints(self.resolution_m):
            key = self._key(wp)
            if key in starts and not isinstance(starts[key], tuple):
                continue
            upstream = wp.s if key.lane_id < 0 else -wp.s
            if key not in starts or upstream < starts[key][0]:
                starts[key] = (upstream, wp)
        return {k: (v[1] if isinstance(v, tuple) else v) for k, v in starts.items()}, edges

    def _trace_lanes(self) -> dict[LaneKey, Lane]:
        starts, edges = self._lane_starts()

        def loc(wp) -> tuple[float, float]:
            return wp.transform.location.x, wp.transform.location.y

        # A topology edge (a, b) is a real successor when b is the start of its lane;
        # a "successor" at the far end of the lane itself marks a dead end.
        succ: dict[LaneKey, list] = defaultdict(list)
        for ka, b in edges:
            kb = self._key(b)
            if kb in starts and math.dist(loc(b), loc(starts[kb])) <= 0.5:
                succ[ka].append(b)
        lanes: dict[LaneKey, Lane] = {}
        for key, start in starts.items():
            wps = [start, *start.next_until_lane_end(self.resolution_m)]
            wps = [w for w in wps if self._key(w) == key] or [start]
            # Tracing stops up to one step short of the lane end; the successor's
            # first point is the exact end, so joins have no gap.
            if succ.get(key) and math.dist(loc(wps[-1]), loc(succ[key][0])) > 0.02:
                wps.append(succ[key][0])
            wps = self._dedupe(wps)
            if len(wps) < 2:
                wps = [start, *start.next(min(self.resolution_m, 0.5))[:1]]
            lanes[key] = self._lane_from_waypoints(key, wps)
        for ka, bs in succ.items():
            for b in bs:
                kb = self._key(b)
                if ka in lanes and kb not in lanes[ka].successors:
                    lanes[ka].successors.append(kb)
                    lanes[kb].predecessors.append(ka)
        return lanes

    @staticmethod
    def _dedupe(wps: list) -> list:
        """Drop points within 1 cm of the previous one (lane ends repeat points)."""
        out = [wps[0]]
        for w in wps[1:]:
            a, b = out[-1].transform.location, w.transform.location
            if math.hypot(a.x - b.x, a.y - b.y) > 0.01:
                out.append(w)
            else:
                out[-1] = w
        return out

    def _lane_from_waypoints(self, key: LaneKey, wps: list) -> Lane:
        n = len(wps)
        xyz = np.empty((n, 3))
        yaw = np.empty(n)
        width = np.empty(n)
        change = np.empty(n, np.int8)
        left = np.empty(n, np.int8)
        right = np.empty(n, np.int8)
        for i, w in enumerate(wps):
            loc = w.transform.location
            xyz[i] = (loc.x, loc.y, loc.z)
            yaw[i] = _yaw_rad(w.transform.rotation.yaw)
            width[i] = w.lane_width
            change[i] = int(w.lane_change)
            left[i] = _marking(w.left_lane_marking)[0]
            right[i] = _marking(w.right_lane_marking)[0]
        seg = np.hypot(np.diff(xyz[:, 0]), np.diff(xyz[:, 1]))
        s = np.concatenate([[0.0], np.cumsum(seg)])
        xyz, yaw, width, s, nearest = self._resample(xyz, yaw, width, s)
        change, left, right = change[nearest], left[nearest], right[nearest]
        w0 = wps[0]
        junction_id = w0.junction_id if w0.is_junction else -1
        return Lane(
            key=key,
            xyz_m=xyz,
            yaw_rad=yaw,
            width_m=width,
            s_m=s,
            lane_change=change,
            left_marking=left,
            right_marking=right,
            left_color=_marking(w0.left_lane_marking)[1],
            right_color=_marking(w0.right_lane_marking)[1],
            junction_id=junction_id,
            speed_limit_mps=self._speed_limits.get(key.road_id, math.nan),
        )

    def _resample(self, xyz, yaw, width, s):
        """Even spacing of at most ``resolution_m`` along the centre line itself.

        carla steps along the road's reference line, so on the outside of tight
        junction turns its points lie up to ~1.6 steps apart; linear interpolation
        between them errs by < 6 cm there (chord sagitta at a 5 m radius).
        """
        length = float(s[-1])
        n = max(2, int(math.ceil(length / self.resolution_m - 1e-9)) + 1)
        if len(s) == n and np.allclose(np.diff(s), length / (n - 1), rtol=0.05):
            return xyz, yaw, width, s, np.arange(len(s))
        grid = np.linspace(0.0, length, n)
        new_xyz = np.stack([np.interp(grid, s, xyz[:, k]) for k in range(3)], axis=1)
        new_yaw = np.remainder(np.interp(grid, s, np.unwrap(yaw)) + math.pi, 2 * math.pi) - math.pi
        new_width = np.interp(grid, s, width)
        nearest = np.clip(np.searchsorted(s, grid, side="left"), 0, len(s) - 1)
        return new_xyz, new_yaw, new_width, grid, nearest

    def _fill_speed_limits(self) -> None:
        """Lanes whose road gives no limit (often junction connecting roads) take the
        lowest limit of their neighbours in the topology, else the urban default."""
        for lane in self.lanes.values():
            if math.isnan(lane.speed_limit_mps):
                near = [
                    self.lanes[k].speed_limit_mps
                    for k in (*lane.predecessors, *lane.successors)
                    if not math.isnan(self.lanes[k].speed_limit_mps)
                ]
                lane.speed_limit_mps = min(near) if near else DEFAULT_SPEED_LIMIT_MPS

    def _link_neighbours(self) -> None:
        """Adjacent same-direction driving lanes (lane ids of the same sign, one apart)."""
        for key, lane in self.lanes.items():
            step = -1 if key.lane_id < 0 else 1  # away from the centre line = to the right
            right = LaneKey(key.road_id, key.section_id, key.lane_id + step)
            left = LaneKey(key.road_id, key.section_id, key.lane_id - step)
            lane.right = right if right in self.lanes else None
            lane.left = left if left in self.lanes and left.lane_id != 0 else None

    # -- queries --------------------------------------------------------------------

    @cached_property
    def _points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keys = list(self.lanes)
        xy = np.concatenate([self.lanes[k].xyz_m[:, :2] for k in keys])
        owner = np.concatenate([np.full(len(self.lanes[k].s_m), i) for i, k in enumerate(keys)])
        index = np.concatenate([np.arange(len(self.lanes[k].s_m)) for k in keys])
        return xy, owner, index

    @cached_property
    def _kdtree(self):
        from scipy.spatial import cKDTree

        return cKDTree(self._points[0])

    @cached_property
    def _keys(self) -> list[LaneKey]:
        return list(self.lanes)

    @cached_property
    def _grid(self) -> _PointGrid:
        keys = list(self.lanes)
        return _PointGrid(self._points[0], np.concatenate([self.lanes[k].yaw_rad for k in keys]))

    @cached_property
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[LaneKey, int]]:
        """In the order of ``_points``: each point's s, the vector to the next point and its
        squared length (as ``d @ d`` rounds it; np.vecdot takes the same dot product; across
        a lane's end: unused); and each lane's first point."""
        xy = self._points[0]
        s = np.concatenate([self.lanes[k].s_m for k in self._keys])
        d = np.zeros_like(xy)
        d[:-1] = xy[1:] - xy[:-1]
        counts = [len(self.lanes[k].s_m) for k in self._keys]
        first = dict(zip(self._keys, np.cumsum([0, *counts[:-1]]).tolist(), strict=True))
        return s, d, np.vecdot(d, d), first

    def project(self, x: float, y: float, *, k: int = 8, yaw_rad: float | None = None) -> LanePosition:
        """The nearest driving-lane centre line to (x, y).

        With ``yaw_rad`` given, lanes heading within 90° of it are preferred, so a
        position on a two-way road projects onto the lane driven in that direction.
        Among the ``k`` nearest centre-line points, the nearest (a lane heading the other
        way counts 1 km further) is refined to the foot on its lane. A grid finds that
        point; in a tie, whose order only the k-d tree knows, the k-d tree does.
        """
        _, owner, index = self._points
        k = min(k, len(owner))
        i = self._grid.choose(x, y, yaw_rad, k) if 0 < k < len(owner) else -1
        if i < 0:
            return self._project_by_tree(x, y, k, yaw_rad)
        return self._refine(self.lanes[self._keys[owner[i]]], int(index[i]), x, y)

    def _project_by_tree(self, x: float, y: float, k: int, yaw_rad: float | None) -> LanePosition:
        """:meth:`project` from the k-d tree's ``k`` nearest points (ties in its order)."""
        _, owner, index = self._points
        dist, idx = self._kdtree.query((x, y), k=k)
        dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
        best = None
        for d, i in zip(dist, idx, strict=True):
            lane = self.lanes[self._keys[owner[i]]]
            j = int(index[i])
            if (
                yaw_rad is not None
                and abs(math.remainder(lane.yaw_rad[j] - yaw_rad, 2 * math.pi)) > math.pi / 2
            ):
                d += 1e3
            if best is None or d < best[0]:
                best = (d, lane, j)
        assert best is not None
        return self._refine(best[1], best[2], x, y)

    def _refine(self, lane: Lane, j: int, x: float, y: float) -> LanePosition:
        """Project (x, y) onto the polyline segments around point ``j`` (the one before
        and the one after it); compiled for this map's lanes where that gives the same bits."""
        s, seg_d, seg_sq, first = self._segments
        start = first.get(lane.key)
        if start is None or self.lanes[lane.key] is not lane or not _compiled_refine():
            return self._refine_py(lane, j, x, y)
        idx, s_m, lateral, dist = _refine_point(
            self._points[0], seg_d, seg_sq, s, start, len(lane.s_m), j, x, y, numpy_dot2_fused()
        )
        return LanePosition(lane.key, idx, s_m, lateral, dist)

    def _refine_py(self, lane: Lane, j: int, x: float, y: float) -> LanePosition:
        """:meth:`_refine` in Python and numpy."""
        lo, hi = max(j - 1, 0), min(j, len(lane.s_m) - 2)  # segments i: points i and i + 1
        if hi < lo:  # single-point lane
            dist = math.hypot(x - lane.xyz_m[0, 0], y - lane.xyz_m[0, 1])
            return LanePosition(lane.key, 0, 0.0, float(dist), float(dist))
        pts = lane.xyz_m[lo : hi + 2, :2]
        d = pts[1:] - pts[:-1]
        # the dot products by numpy (np.vecdot rounds as ``a @ b`` does), the rest in floats
        along, sq = np.vecdot(np.array((x, y)) - pts[:-1], d).tolist(), np.vecdot(d, d).tolist()
        pts_l, d_l, s_l = pts.tolist(), d.tolist(), lane.s_m[lo : hi + 1].tolist()
        best = None
        for k in range(hi - lo + 1):
            (p0x, p0y), (dx, dy), ll = pts_l[k], d_l[k], sq[k]
            t = 0.0
            if ll != 0:
                t = along[k] / ll
                t = 0.0 if t <= 0.0 else (1.0 if t > 1.0 else t)  # np.clip's zero and NaN
            dist = math.hypot(x - (p0x + t * dx), y - (p0y + t * dy))
            if best is None or dist < best[0]:
                cross = dx * (y - p0y) - dy * (x - p0x)  # > 0: right of travel (y right)
                lateral = math.copysign(dist, cross) if ll > 0 else dist
                i = lo + k
                best = (dist, i if t < 0.5 else i + 1, s_l[k] + t * math.sqrt(ll), lateral)
        dist, idx, s, lateral = best
        return LanePosition(lane.key, int(idx), float(s), float(lateral), float(dist))

    def lane_at(self, x: float, y: float, yaw_rad: float | None = None) -> LanePosition | None:
        """The driving lane under (x, y), or ``None`` when the point is off every lane."""
        pos = self.project(x, y, yaw_rad=yaw_rad)
        lane = self.lanes[pos.key]
        if abs(pos.lateral_m) <= 0.5 * lane.width_m[pos.index] + 1e-6:
            return pos
        # The nearest centre line may belong to a neighbour whose half-width is smaller.
        pos_any = self.project(x, y)
        lane = self.lanes[pos_any.key]
        if abs(pos_any.lateral_m) <= 0.5 * lane.width_m[pos_any.index] + 1e-6:
            return pos_any
        return None

    def distance_along_lane(self, key: LaneKey, x: float, y: float) -> float:
        """Distance (m) from the start of lane ``key`` to the foot of (x, y) on it."""
        lane = self.lanes[key]
        d = np.hypot(lane.xyz_m[:, 0] - x, lane.xyz_m[:, 1] - y)
        return self._refine(lane, int(np.argmin(d)), x, y).s_m

    # -- summaries -------------------------------------------------------------------

    @cached_property
    def junctions(self) -> dict[int, Junction]:
        members: dict[int, list[LaneKey]] = defaultdict(list)
        for key, lane in self.lanes.items():
            if lane.in_junction:
                members[lane.junction_id].append(key)
        result = {}
        for jid, keys in members.items():
            pts = np.concatenate([self.lanes[k].xyz_m[:, :2] for k in keys])
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            result[jid] = Junction(
                jid, tuple(keys), (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1]))
            )
        return result

    @cached_property
    def signals(self) -> list[Signal]:
        out = []
        for lm in self.carla_map.get_all_landmarks():
            loc = lm.transform.location
            out.append(
                Signal(
                    id=str(lm.id),
                    kind=_signal_kind(str(lm.type), str(lm.name)),
                    type=str(lm.type),
                    name=str(lm.name),
                    road_id=int(lm.road_id),
                    s_m=float(lm.s),
                    xyz_m=(loc.x, loc.y, loc.z),
                    yaw_rad=_yaw_rad(lm.transform.rotation.yaw),
                    value=float(lm.value),
                    orientation=_orientation(lm.orientation),
                )
            )
        return out

    @property
    def driving_lane_km(self) -> float:
        return sum(lane.length_m for lane in self.lanes.values()) / 1000.0

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min x, min y, max x, max y) of all driving-lane centre lines, metres."""
        xy = self._points[0]
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def __repr__(self) -> str:
        return f"RoadMap({self.name!r}, lanes={len(self.lanes)}, junctions={len(self.junctions)})"
