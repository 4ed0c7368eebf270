"""The low-definition route map: what a phone's navigation shows, as a small image.

The policy never sees lanes, only this: a coarse picture of the roads, the planned
route as a line over it, and the next maneuver ("turn left in 80 m"), drawn around a
GPS-grade noisy position and heading.

Image layout (``uint8``, shape ``(size_px, size_px, len(channels))``), heading-up:

* the ego's (noisy) heading points up the image and its right is the image's right;
* the ego sits at pixel (row :attr:`RouteMapConfig.ego_row_px`, column ``size_px // 2``)
  (default row 48 of 64: 96 m ahead and 32 m behind at 2 m per pixel);
* one pixel is :attr:`RouteMapConfig.m_per_px` metres on both axes;
* channel ``"road"``: the share of each pixel covered by driving surface (road,
  junction, their markings, stop lines and crosswalks of the 0.1 m map raster,
  block-averaged to ``m_per_px``: 0 off the road, 255 fully on it; no lanes);
* channel ``"route"``: the planned route as a 255 line ``route_width_px`` wide on 0
  (the remaining route from ``route_index`` when it is given, else all of it).

Noise: every :meth:`RouteMap.render` call draws three standard normals from the
given generator (always three, so the stream does not depend on the sigmas) and
moves the ego by ``gps_sigma_m`` times the first two (x, y, metres) and turns it by
``heading_sigma_deg`` times the third. Without a generator nothing is drawn and the
picture is exact. Pixel centres lie at integer coordinates (OpenCV's convention).

The coarse road image is built once per map (:meth:`CoarseRoads.build`, a few
milliseconds from the cached map raster) and shared by every route on that map; a
render is one ``cv2.warpAffine`` and one ``cv2.polylines`` on a 64 x 64 image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from sim.errors import ConfigError
from sim.maps.planner import DenseRoute, RoadOption
from sim.maps.raster import MapRaster, RasterClass, build_raster
from sim.maps.roadmap import RoadMap

__all__ = ["ROUTE_MAP_CHANNELS", "RouteMapConfig", "CoarseRoads", "RouteMap"]

#: The channels a route map can have, by name.
ROUTE_MAP_CHANNELS: tuple[str, ...] = ("road", "route")

#: Raster classes that count as driving surface in the "road" channel.
_DRIVING_SURFACE = (
    RasterClass.ROAD,
    RasterClass.JUNCTION,
    RasterClass.MARKING_WHITE,
    RasterClass.MARKING_YELLOW,
    RasterClass.STOP_LINE,
    RasterClass.CROSSWALK,
)
_RASTER_M_PER_PX = 0.1  # the map raster's scale; the coarse image averages blocks of it
_SHIFT = 4  # cv2 fixed-point bits for sub-pixel route lines
_NON_MANEUVERS = (int(RoadOption.LANEFOLLOW), int(RoadOption.VOID))


@dataclass(frozen=True)
class RouteMapConfig:
    """The route map's size, scale, noise and channels (see the module docstring)."""

    size_px: int = field(default=64, metadata={"help": "side of the square route map (pixels)"})
    m_per_px: float = field(
        default=2.0, metadata={"help": "metres per pixel (a multiple of the raster's 0.1 m)"}
    )
    gps_sigma_m: float = field(default=1.5, metadata={"help": "GPS position noise per axis (m, >= 0)"})
    heading_sigma_deg: float = field(default=3.0, metadata={"help": "heading noise (degrees, >= 0)"})
    channels: tuple[str, ...] = field(
        default=ROUTE_MAP_CHANNELS, metadata={"help": "channels in order, from 'road' and 'route'"}
    )
    ego_row_px: int = field(default=48, metadata={"help": "image row of the ego (0 = top)"})
    route_width_px: int = field(default=1, metadata={"help": "width of the route line (pixels)"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not (isinstance(self.size_px, int) and 8 <= self.size_px <= 1024):
            raise ConfigError(f"RouteMapConfig.size_px must be an integer in [8, 1024], got {self.size_px!r}")
        blocks = self.m_per_px / _RASTER_M_PER_PX if isinstance(self.m_per_px, int | float) else math.nan
        if not (math.isfinite(blocks) and 1 <= round(blocks) <= 1000 and abs(blocks - round(blocks)) < 1e-6):
            raise ConfigError(
                f"RouteMapConfig.m_per_px must be a multiple of 0.1 in [0.1, 100], got {self.m_per_px!r}"
            )
        for name in ("gps_sigma_m", "heading_sigma_deg"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"RouteMapConfig.{name} must be a finite number >= 0, got {value!r}")
        unknown = [c for c in self.channels if c not in ROUTE_MAP_CHANNELS]
        if not self.channels or unknown or len(set(self.channels)) != len(self.channels):
            raise ConfigError(
                f"RouteMapConfig.channels must be distinct names of {ROUTE_MAP_CHANNELS}, got {self.channels}"
            )
        if not (isinstance(self.ego_row_px, int) and 0 <= self.ego_row_px < self.size_px):
            raise ConfigError(f"RouteMapConfig.ego_row_px must lie in [0, size_px), got {self.ego_row_px!r}")
        if not (isinstance(self.route_width_px, int) and 1 <= self.route_width_px <= 16):
            raise ConfigError(
                f"RouteMapConfig.route_width_px must be an integer in [1, 16], got {self.route_width_px!r}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(size_px, size_px, channels) of a rendered route map."""
        return self.size_px, self.size_px, len(self.channels)


@dataclass(frozen=True, eq=False)
class CoarseRoads:
    """The driving surface of a map at ``m_per_px``: (H, W) ``uint8`` coverage 0-255.

    Same grid convention as :class:`~sim.maps.raster.MapRaster` (rows +y, columns +x,
    ``origin_xy_m`` the top-left corner of pixel (0, 0)). Build once per map and share.
    """

    coverage: np.ndarray
    origin_xy_m: tuple[float, float]
    m_per_px: float

    @classmethod
    def build(cls, road_map: RoadMap, m_per_px: float = 2.0) -> CoarseRoads:
        """Block-average the map's 0.1 m raster (cached on disk) to ``m_per_px``."""
        return cls.from_raster(build_raster(road_map, m_per_px=_RASTER_M_PER_PX), m_per_px)

    @classmethod
    def from_raster(cls, raster: MapRaster, m_per_px: float) -> CoarseRoads:
        """Block-average ``raster`` to ``m_per_px`` (an integer multiple of its scale)."""
        factor = round(m_per_px / raster.m_per_px)
        if factor < 1 or abs(factor * raster.m_per_px - m_per_px) > 1e-6:
            raise ConfigError(
                f"route map scale {m_per_px} m/px is not a multiple of the raster's {raster.m_per_px} m/px"
            )
        lut = np.zeros(256, np.uint8)
        lut[[int(c) for c in _DRIVING_SURFACE]] = 255
        mask = cv2.LUT(np.ascontiguousarray(raster.labels), lut)
        h, w = mask.shape
        hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
        if (hp, wp) != (h, w):
            mask = cv2.copyMakeBorder(mask, 0, hp - h, 0, wp - w, cv2.BORDER_CONSTANT, value=0)
        coverage = cv2.resize(mask, (wp // factor, hp // factor), interpolation=cv2.INTER_AREA)
        coverage.setflags(write=False)
        return cls(coverage, (float(raster.origin_xy_m[0]), float(raster.origin_xy_m[1])), float(m_per_px))


def _next_maneuver_index(command: np.ndarray) -> np.ndarray:
    """Per route point, the index of the first point at or after it whose command is a
    maneuver (not LANEFOLLOW or VOID); ``len(command)`` where none follows."""
    n = len(command)
    is_maneuver = ~np.isin(command.astype(np.int64), _NON_MANEUVERS)
    idx = np.where(is_maneuver, np.arange(n), n)
    return np.minimum.accumulate(idx[::-1])[::-1].copy()


class RouteMap:
    """The route map of one route on one map (build per route, render per step).

    ``roads`` is the map's :class:`CoarseRoads` at ``config.m_per_px``; pass the
    same one for every route on a map (it is built from ``road_map`` when omitted,
    which costs tens of milliseconds; ``road_map`` may be ``None`` when it is given).
    """

    def __init__(
        self,
        road_map: RoadMap | None,
        route: DenseRoute,
        config: RouteMapConfig | None = None,
        *,
        roads: CoarseRoads | None = None,
    ):
        self.config = config = config or RouteMapConfig()
        if roads is None:
            if road_map is None:
                raise ConfigError("RouteMap needs a road_map or its CoarseRoads")
            roads = CoarseRoads.build(road_map, config.m_per_px)
        if abs(roads.m_per_px - config.m_per_px) > 1e-9:
            raise ConfigError(f"roads are at {roads.m_per_px} m/px, the route map at {config.m_per_px}")
        self.roads = roads
        self.route = route
        self._xy = np.ascontiguousarray(route.xyz_m[:, :2], dtype=np.float64)
        self._s = np.asarray(route.s_m, dtype=np.float64)
        self._command = np.asarray(route.command).astype(np.int64)
        self._next = _next_maneuver_index(self._command)
        self._u0 = float(config.size_px // 2)
        self._v0 = float(config.ego_row_px)
        # The line is drawn from a simplified copy of the route (within a tenth of a
        # pixel), so a straight kilometre costs two points, not a thousand.
        self._kept = _simplify(self._xy, _SIMPLIFY_PX * config.m_per_px)
        self._line_xy = np.ascontiguousarray(self._xy[self._kept])
        self._chunks = _Chunks.build(self._line_xy)
        corners = np.array([-0.5, config.size_px - 0.5])
        reach_px = np.hypot(corners[:, None] - self._u0, corners[None, :] - self._v0).max()
        self._view_m = float(reach_px + config.route_width_px + 1) * config.m_per_px

    # -- the next maneuver -----------------------------------------------------------

    def next_maneuver(self, route_index: int) -> tuple[int, float]:
        """The next maneuver at or after route point ``route_index`` and the distance
        to where it starts, along the route (m).

        A maneuver is any :class:`~sim.maps.planner.RoadOption` but LANEFOLLOW (and
        VOID); inside one, its distance is 0. With none ahead: ``(LANEFOLLOW, distance
        to the goal)``. Raises ``IndexError`` for an index outside the route.
        """
        n = len(self._s)
        i = int(route_index)
        if not 0 <= i < n:
            raise IndexError(f"route_index {route_index} outside the route's {n} points")
        j = int(self._next[i])
        if j >= n:
            return int(RoadOption.LANEFOLLOW), float(self._s[-1] - self._s[i])
        return int(self._command[j]), float(self._s[j] - self._s[i])

    # -- the picture -----------------------------------------------------------------

    def render(
        self,
        ego_x_m: float,
        ego_y_m: float,
        ego_yaw_rad: float,
        rng: np.random.Generator | None = None,
        *,
        route_index: int | None = None,
    ) -> np.ndarray:
        """The route map around the ego: ``uint8`` (size_px, size_px, channels), heading-up.

        ``rng`` supplies the GPS and heading noise (three normals per call); ``None``
        draws an exact picture. ``route_index`` (the ego's route point) restricts the
        route line to the part still ahead.
        """
        cfg = self.config
        x, y, yaw = float(ego_x_m), float(ego_y_m), float(ego_yaw_rad)
        if rng is not None:
            n = rng.standard_normal(3)
            x += cfg.gps_sigma_m * float(n[0])
            y += cfg.gps_sigma_m * float(n[1])
            yaw += math.radians(cfg.heading_sigma_deg) * float(n[2])
        c, s = math.cos(yaw), math.sin(yaw)
        planes = []
        for name in cfg.channels:
            if name == "road":
                planes.append(self._road(x, y, c, s))
            else:
                plane = np.zeros((cfg.size_px, cfg.size_px), np.uint8)
                self._draw_route(plane, x, y, c, s, route_index)
                planes.append(plane)
        return cv2.merge(planes) if len(planes) > 1 else planes[0][:, :, None]

    def _road(self, x: float, y: float, c: float, s: float) -> np.ndarray:
        """The road channel: the coarse image warped heading-up around (x, y)."""
        roads, m = self.roads, self.config.m_per_px
        u0, v0 = self._u0, self._v0
        # destination pixel (u, v) -> world x + (u-u0) m right + (v0-v) m forward -> source pixel
        tx = (x - roads.origin_xy_m[0]) / m - 0.5 + s * u0 + c * v0
        ty = (y - roads.origin_xy_m[1]) / m - 0.5 - c * u0 + s * v0
        matrix = np.array([[-s, -c, tx], [c, -s, ty]])
        size = self.config.size_px
        return cv2.warpAffine(
            roads.coverage,
            matrix,
            (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def _draw_route(
        self, plane: np.ndarray, x: float, y: float, c: float, s: float, route_index: int | None
    ) -> None:
        first, start_xy = 0, None
        if route_index is not None:  # from the ego's route point on: the rest of the route
            i = min(max(int(route_index), 0), len(self._s) - 1)
            first = int(np.searchsorted(self._kept, i, side="right")) - 1
            start_xy = self._xy[i]
        runs = self._chunks.visible_runs(x, y, self._view_m, first)
        if not runs:
            return
        line_xy = self._line_xy
        pts = (
            line_xy[runs[0][0] : runs[0][1]]
            if len(runs) == 1
            else np.concatenate([line_xy[a:b] for a, b in runs])
        )
        # world -> fixed-point image: (x - X) along the ego's right, forward up
        inv = (1 << _SHIFT) / self.config.m_per_px
        ru, fu = -s * inv, c * inv
        rv, fv = -c * inv, -s * inv
        tu = self._u0 * (1 << _SHIFT) - ru * x - fu * y
        tv = self._v0 * (1 << _SHIFT) - rv * x - fv * y
        uv = cv2.transform(pts.reshape(1, -1, 2), np.array([[ru, fu, tu], [rv, fv, tv]]))
        ipts = np.rint(uv[0]).astype(np.int32)
        if start_xy is not None and runs[0][0] == first:
            sx, sy = float(start_xy[0]), float(start_xy[1])
            ipts[0] = (round(ru * sx + fu * sy + tu), round(rv * sx + fv * sy + tv))
        lines, k = [], 0
        for a, b in runs:
            line = ipts[k : k + b - a]
            k += b - a
            lines.append(line if len(line) > 1 else np.concatenate([line, line]))
        cv2.polylines(
            plane, lines, False, 255, thickness=self.config.route_width_px, lineType=cv2.LINE_8, shift=_SHIFT
        )


_CHUNK_POINTS = 16
_SIMPLIFY_PX = 0.1  # largest distance of the drawn line from the route (pixels)


def _simplify(xy: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Indices of the points that Ramer-Douglas-Peucker keeps: the polyline through
    them stays within ``tolerance_m`` of every dropped point (distance to segments)."""
    n = len(xy)
    keep = np.zeros(n, bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        p, d = xy[a], xy[b] - xy[a]
        rel = xy[a + 1 : b] - p
        ll = float(d @ d)
        t = np.clip(rel @ d / ll, 0.0, 1.0) if ll > 0 else np.zeros(len(rel))
        dist = np.hypot(rel[:, 0] - t * d[0], rel[:, 1] - t * d[1])
        k = int(np.argmax(dist))
        if dist[k] > tolerance_m:
            m = a + 1 + k
            keep[m] = True
            stack += [(a, m), (m, b)]
    return np.flatnonzero(keep)


class _Chunks:
    """The drawn line cut into runs of ``_CHUNK_POINTS`` segments with bounding circles,
    so a render transforms and draws only the points near the ego. Plain lists: a
    route has tens of chunks, where numpy's per-call cost would dominate."""

    def __init__(self, start: list[int], stop: list[int], cx: list[float], cy: list[float], r: list[float]):
        self.start, self.stop, self.cx, self.cy, self.radius_m = start, stop, cx, cy, r

    @classmethod
    def build(cls, xy: np.ndarray) -> _Chunks:
        n = len(xy)
        start = list(range(0, max(n - 1, 1), _CHUNK_POINTS))
        stop = [min(a + _CHUNK_POINTS + 1, n) for a in start]
        lo = np.array([xy[a:b].min(axis=0) for a, b in zip(start, stop, strict=True)])
        hi = np.array([xy[a:b].max(axis=0) for a, b in zip(start, stop, strict=True)])
        centre = 0.5 * (lo + hi)
        radius = 0.5 * np.hypot(hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1])
        return cls(start, stop, centre[:, 0].tolist(), centre[:, 1].tolist(), radius.tolist())

    def visible_runs(self, x: float, y: float, view_m: float, first: int) -> list[tuple[int, int]]:
        """Point ranges [a, b) from point ``first`` on whose chunks come within ``view_m``
        of (x, y); consecutive chunks merge into one range."""
        runs: list[tuple[int, int]] = []
        open_run = False
        cx, cy, rad, start, stop = self.cx, self.cy, self.radius_m, self.start, self.stop
        for k in range(first // _CHUNK_POINTS, len(start)):
            reach = rad[k] + view_m
            if (cx[k] - x) ** 2 + (cy[k] - y) ** 2 < reach * reach:
                if open_run:
                    runs[-1] = (runs[-1][0], stop[k])
                else:
                    runs.append((max(start[k], first), stop[k]))
                open_run = True
            else:
                open_run = False
        return runs
