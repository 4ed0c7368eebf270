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
milliseconds from the cached map raster) and shared by every route on that map. The
picture is defined by OpenCV: ``cv2.warpAffine`` (bilinear, zero border) for the road
channel and ``cv2.transform`` + ``cv2.polylines`` (8-connected, 4 sub-pixel bits) for the
route. A render on the default sizes (sides a multiple of 32 pixels, a 1-pixel line)
runs numba kernels that reproduce those calls' arithmetic bit for bit (OpenCV 5 on x86
with FMA: float32 coordinates and weights with fused multiply-adds, rounded line end
points, Bresenham lines): the OpenCV calls cost tens of microseconds with cold caches
between the steps of many worlds. Other sizes call OpenCV itself; tests hold the two
paths equal.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right
from dataclasses import dataclass, field

import cv2
import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types

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
#: OpenCV's warpAffine runs its vector path on runs of up to 32 pixels (AVX-512) and a
#: scalar path of other arithmetic on what is left of a row: the kernels reproduce the
#: vector path, so they serve rows whose length is a multiple of this
_WARP_LANES = 32
_PAD = 2  # zero pixels around the coverage for the road kernel (see _warp_road)
_NO_START = (math.nan, math.nan)  # no route index: the line starts at the route's first point
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

    @functools.cached_property
    def padded(self) -> np.ndarray:
        """``coverage`` with ``_PAD`` zero pixels on every side (for the road kernel)."""
        return np.pad(self.coverage, _PAD)

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


@numba.extending.intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma: the FMA instruction, else libm's exact fma)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(a)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ty, [ty, ty, ty]), f"llvm.fma.f{a.bitwidth}"
        )
        return builder.call(fn, args)

    return a(a, a, a), codegen


@numba.njit(cache=True)
def _warp_road(padded, m, out, channel):
    """``cv2.warpAffine(coverage, m, (w, h), INTER_LINEAR | WARP_INVERSE_MAP, BORDER_CONSTANT,
    0)`` into ``out[:, :, channel]``, as OpenCV 5's vector path computes it: the matrix in
    float32, a row's offset ``v * m1 + m2`` in float32, ``u * m0`` added with a fused
    multiply-add, weights as the fractions of the source coordinates, two fused lerps
    along x and one along y, rounded half to even.

    ``padded`` is the coverage with ``_PAD`` zero pixels around it: a neighbour outside
    the image reads 0 there (source coordinates are clamped into the padding, where all
    four neighbours of a far pixel are 0). A row is done in three loops, the first and
    last of which the compiler vectorises: coordinates, the four neighbours, the lerps
    (into a contiguous row: faster than storing into the interleaved channels).
    """
    rows, cols = padded.shape[0] - 2 * _PAD, padded.shape[1] - 2 * _PAD
    stride = padded.shape[1]
    flat = padded.ravel()
    m0, m1, m2 = np.float32(m[0]), np.float32(m[1]), np.float32(m[2])
    m3, m4, m5 = np.float32(m[3]), np.float32(m[4]), np.float32(m[5])
    width = out.shape[1]
    column = np.arange(width).astype(np.float32)
    ax, ay, index = np.empty(width, np.float32), np.empty(width, np.float32), np.empty(width, np.int64)
    p00, p01 = np.empty(width, np.float32), np.empty(width, np.float32)
    p10, p11 = np.empty(width, np.float32), np.empty(width, np.float32)
    row = np.empty(width, np.uint8)
    for v in range(out.shape[0]):
        fv = np.float32(v)
        row_x, row_y = fv * m1 + m2, fv * m4 + m5
        for u in range(width):
            sx, sy = _fma(m0, column[u], row_x), _fma(m3, column[u], row_y)
            fx, fy = np.floor(sx), np.floor(sy)
            ax[u], ay[u] = sx - fx, sy - fy
            ix = min(max(np.int64(fx), -_PAD), cols) + _PAD
            iy = min(max(np.int64(fy), -_PAD), rows) + _PAD
            index[u] = iy * stride + ix
        for u in range(width):
            k = index[u]
            p00[u], p01[u] = flat[k], flat[k + 1]
            p10[u], p11[u] = flat[k + stride], flat[k + stride + 1]
        for u in range(width):
            top = _fma(ax[u], p01[u] - p00[u], p00[u])
            bottom = _fma(ax[u], p11[u] - p10[u], p10[u])
            value = np.rint(_fma(ay[u], bottom - top, top))
            row[u] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))
        out[v, :, channel] = row


@numba.njit(cache=True)
def _trunc_div(a, b):
    """C's integer division (towards zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


@numba.njit(cache=True)
def _clip_line(width, height, x1, y1, x2, y2):
    """OpenCV's ``clipLine`` to [0, width) x [0, height): (inside, x1, y1, x2, y2)."""
    right, bottom = width - 1, height - 1
    c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8
    c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += _trunc_div((a - y1) * (x2 - x1), y2 - y1)
            y1 = a
            c1 = (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += _trunc_div((a - y2) * (x2 - x1), y2 - y1)
            y2 = a
            c2 = (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += _trunc_div((a - x1) * (y2 - y1), x2 - x1)
                x1, c1 = a, 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += _trunc_div((a - x2) * (y2 - y1), x2 - x1)
                x2, c2 = a, 0
    return (c1 | c2) == 0, x1, y1, x2, y2


@numba.njit(cache=True)
def _line(out, channel, x1, y1, x2, y2):
    """``cv2.line(..., 255, 1, LINE_8)`` between pixels (x1, y1) and (x2, y2): clipped to
    the image, then OpenCV's 8-connected Bresenham walk from the left end."""
    height, width = out.shape[0], out.shape[1]
    if not (0 <= x1 < width and 0 <= x2 < width and 0 <= y1 < height and 0 <= y2 < height):
        inside, x1, y1, x2, y2 = _clip_line(width, height, x1, y1, x2, y2)
        if not inside:
            return
    dx, dy = x2 - x1, y2 - y1
    if dx < 0:
        dx, dy, x1, y1 = -dx, -dy, x2, y2
    step_y = 1
    if dy < 0:
        dy, step_y = -dy, -1
    x, y = x1, y1
    major, minor = (dy, dx) if dy > dx else (dx, dy)
    err = major - 2 * minor
    for _ in range(major + 1):
        out[y, x, channel] = 255
        diagonal = err < 0
        err += 2 * major - 2 * minor if diagonal else -2 * minor
        if dy > dx:
            y += step_y
            x += diagonal
        else:
            x += 1
            y += step_y if diagonal else 0


@numba.njit(cache=True)
def _line_pixel(u, v):
    """A fixed-point (``_SHIFT`` bits) end point rounded to its pixel, as cv2.polylines does."""
    half = 1 << (_SHIFT - 1)
    return (u + half) >> _SHIFT, (v + half) >> _SHIFT


@numba.njit(cache=True)
def _draw_run(out, channel, line_xy, a, b, t, start):
    """``cv2.polylines`` of points a..b-1 after ``cv2.transform`` by ``t`` and rounding;
    ``start`` (x, y, transformed without fusing, as Python does) replaces point a when
    its first entry is finite. One point is drawn as a dot."""
    ru, fu, tu, rv, fv, tv = t
    if math.isfinite(start[0]):
        u, v = np.rint(ru * start[0] + fu * start[1] + tu), np.rint(rv * start[0] + fv * start[1] + tv)
    else:
        px, py = line_xy[a, 0], line_xy[a, 1]
        u, v = np.rint(_fma(ru, px, fu * py) + tu), np.rint(_fma(rv, px, fv * py) + tv)
    x0, y0 = _line_pixel(np.int64(np.int32(u)), np.int64(np.int32(v)))
    if b - a == 1:
        _line(out, channel, x0, y0, x0, y0)
    for k in range(a + 1, b):
        px, py = line_xy[k, 0], line_xy[k, 1]
        u, v = np.rint(_fma(ru, px, fu * py) + tu), np.rint(_fma(rv, px, fv * py) + tv)
        x1, y1 = _line_pixel(np.int64(np.int32(u)), np.int64(np.int32(v)))
        _line(out, channel, x0, y0, x1, y1)
        x0, y0 = x1, y1


@numba.njit(cache=True)
def _draw_route_kernel(out, channel, line_xy, chunks, first, start, x, y, view_m, t):
    """:meth:`RouteMap._draw_route` with a 1-pixel line, into ``out[:, :, channel]``.

    ``chunks`` holds the rows (start, stop, centre x, centre y, radius) of
    :class:`_Chunks`. A chunk's visibility is tested on squares by multiplication where
    Python's ``**`` calls ``pow``: they can differ in the last bit only for a chunk at
    the edge of the view, and such a chunk's segments lie a pixel or more outside the
    picture (``view_m`` has that margin), so the pixels are the same.
    """
    run_a, run_b, runs = -1, -1, 0
    for k in range(first // _CHUNK_POINTS, chunks.shape[0]):
        reach = chunks[k, 4] + view_m
        dx, dy = chunks[k, 2] - x, chunks[k, 3] - y
        if dx * dx + dy * dy < reach * reach:
            if run_a < 0:
                run_a = max(int(chunks[k, 0]), first)
            run_b = int(chunks[k, 1])
        elif run_a >= 0:
            _draw_run(
                out, channel, line_xy, run_a, run_b, t, start if runs == 0 and run_a == first else _NO_START
            )
            run_a, runs = -1, runs + 1
    if run_a >= 0:
        _draw_run(
            out, channel, line_xy, run_a, run_b, t, start if runs == 0 and run_a == first else _NO_START
        )


@numba.njit(cache=True)
def _road_matrix(pose, geometry):
    """The inverse map (m0, m1, m2, m3, m4, m5) of the road warp: destination pixel
    (u, v) -> world x + (u-u0) m right + (v0-v) m forward -> source pixel. ``pose`` is
    (x, y, cos yaw, sin yaw), ``geometry`` :attr:`RouteMap._geometry`."""
    x, y, c, s = pose
    origin_x, origin_y, m_per_px, u0, v0, _ = geometry
    tx = (x - origin_x) / m_per_px - 0.5 + s * u0 + c * v0
    ty = (y - origin_y) / m_per_px - 0.5 - c * u0 + s * v0
    return -s, -c, tx, c, -s, ty


@numba.njit(cache=True)
def _route_transform(pose, geometry):
    """World -> fixed-point image (ru, fu, tu, rv, fv, tv): (x - X) along the ego's
    right, forward up, ``_SHIFT`` fractional bits."""
    x, y, c, s = pose
    _, _, m_per_px, u0, v0, _ = geometry
    inv = (1 << _SHIFT) / m_per_px
    ru, fu = -s * inv, c * inv
    rv, fv = -c * inv, -s * inv
    tu = u0 * (1 << _SHIFT) - ru * x - fu * y
    tv = v0 * (1 << _SHIFT) - rv * x - fv * y
    return ru, fu, tu, rv, fv, tv


@numba.njit(cache=True)
def _render_kernel(image, road_channel, padded, route_channel, line_xy, chunks, first, start, pose, geometry):
    """:meth:`RouteMap.render` after the noise, in one call: the road warp into
    ``image[:, :, road_channel]`` and the route line into ``route_channel`` (a channel
    of -1 is left out). ``pose`` is (x, y, cos yaw, sin yaw), ``geometry``
    :attr:`RouteMap._geometry`."""
    if road_channel >= 0:
        _warp_road(padded, _road_matrix(pose, geometry), image, road_channel)
    if route_channel >= 0:
        t = _route_transform(pose, geometry)
        _draw_route_kernel(
            image, route_channel, line_xy, chunks, first, start, pose[0], pose[1], geometry[5], t
        )


_WARP_FLAGS = {
    "flags": cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    "borderMode": cv2.BORDER_CONSTANT,
    "borderValue": 0,
}


@functools.cache
def _kernels_agree() -> bool:
    """Whether the kernels give OpenCV's pixels with this OpenCV build on this CPU (its
    vector path, fused multiply-adds), checked once per process on random images, warps
    and lines; where they do not, every render calls OpenCV."""
    rng = np.random.default_rng(0)
    size = 2 * _WARP_LANES
    coverage = rng.integers(0, 256, (57, 61), dtype=np.uint8)
    image = np.zeros((size, size, 1), np.uint8)
    for _ in range(16):
        c, s = math.cos(yaw := rng.uniform(-math.pi, math.pi)), math.sin(yaw)
        matrix = (-s, -c, rng.uniform(-40, 100), c, -s, rng.uniform(-40, 100))
        _warp_road(np.pad(coverage, _PAD), matrix, image, 0)
        expected = cv2.warpAffine(coverage, np.reshape(matrix, (2, 3)), (size, size), **_WARP_FLAGS)
        if not np.array_equal(image[:, :, 0], expected):
            return False
    for _ in range(64):
        c, s = math.cos(yaw := rng.uniform(-math.pi, math.pi)), math.sin(yaw)
        t = (-8 * s, 8 * c, rng.uniform(0, 1024), -8 * c, -8 * s, rng.uniform(0, 1024))
        points = rng.uniform(-100, 200, (int(rng.integers(1, 6)), 2))
        image[:] = 0
        _draw_run(image, 0, points, 0, len(points), t, _NO_START)
        ipts = np.rint(cv2.transform(points.reshape(1, -1, 2), np.reshape(t, (2, 3)))[0]).astype(np.int32)
        expected = np.zeros((size, size), np.uint8)
        line = ipts if len(ipts) > 1 else np.concatenate([ipts, ipts])
        cv2.polylines(expected, [line], False, 255, thickness=1, lineType=cv2.LINE_8, shift=_SHIFT)
        if not np.array_equal(image[:, :, 0], expected):
            return False
    return True


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
        # plain copies for next_maneuver, called every step (numpy scalars cost there)
        self._s_list: list[float] = self._s.tolist()
        self._next_list: list[int] = self._next.tolist()
        self._command_list: list[int] = self._command.tolist()
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
        #: (origin x, origin y, m_per_px, ego column u0, ego row v0, view_m) for the kernels
        ox, oy = roads.origin_xy_m
        self._geometry = (float(ox), float(oy), float(config.m_per_px), self._u0, self._v0, self._view_m)
        self._heading_sigma_rad = math.radians(config.heading_sigma_deg)
        self._kept_list: list[int] = self._kept.tolist()
        # the numba kernels reproduce OpenCV's arithmetic on these sizes (module docstring)
        self._kernels = config.size_px % _WARP_LANES == 0 and config.route_width_px == 1 and _kernels_agree()
        channels = config.channels
        self._road_channel = channels.index("road") if "road" in channels else -1
        self._route_channel = channels.index("route") if "route" in channels else -1

    # -- the next maneuver -----------------------------------------------------------

    def next_maneuver(self, route_index: int) -> tuple[int, float]:
        """The next maneuver at or after route point ``route_index`` and the distance
        to where it starts, along the route (m).

        A maneuver is any :class:`~sim.maps.planner.RoadOption` but LANEFOLLOW (and
        VOID); inside one, its distance is 0. With none ahead: ``(LANEFOLLOW, distance
        to the goal)``. Raises ``IndexError`` for an index outside the route.
        """
        s = self._s_list
        n = len(s)
        i = int(route_index)
        if not 0 <= i < n:
            raise IndexError(f"route_index {route_index} outside the route's {n} points")
        j = self._next_list[i]
        if j >= n:
            return int(RoadOption.LANEFOLLOW), s[-1] - s[i]
        return self._command_list[j], s[j] - s[i]

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
            n0, n1, n2 = rng.standard_normal(3).tolist()
            x += cfg.gps_sigma_m * n0
            y += cfg.gps_sigma_m * n1
            yaw += self._heading_sigma_rad * n2
        c, s = math.cos(yaw), math.sin(yaw)
        if self._kernels:
            image = np.zeros(cfg.shape, np.uint8)
            first, start = self._route_start(route_index)
            _render_kernel(
                image,
                self._road_channel,
                self.roads.padded,
                self._route_channel,
                self._line_xy,
                self._chunks.table,
                first,
                _NO_START if start is None else start,
                (x, y, c, s),
                self._geometry,
            )
            return image
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
        size = self.config.size_px
        return cv2.warpAffine(
            self.roads.coverage,
            np.reshape(_road_matrix((x, y, c, s), self._geometry), (2, 3)),
            (size, size),
            **_WARP_FLAGS,
        )

    def _route_start(self, route_index: int | None) -> tuple[int, tuple[float, float] | None]:
        """The first drawn point of the simplified line and, with a route index, the ego's
        route point that replaces it (the rest of the route from there)."""
        if route_index is None:
            return 0, None
        i = min(max(int(route_index), 0), len(self._s) - 1)
        first = bisect_right(self._kept_list, i) - 1
        return first, (float(self._xy[i, 0]), float(self._xy[i, 1]))

    def _draw_route(
        self, plane: np.ndarray, x: float, y: float, c: float, s: float, route_index: int | None
    ) -> None:
        first, start_xy = self._route_start(route_index)
        runs = self._chunks.visible_runs(x, y, self._view_m, first)
        if not runs:
            return
        line_xy = self._line_xy
        pts = (
            line_xy[runs[0][0] : runs[0][1]]
            if len(runs) == 1
            else np.concatenate([line_xy[a:b] for a, b in runs])
        )
        ru, fu, tu, rv, fv, tv = _route_transform((x, y, c, s), self._geometry)
        uv = cv2.transform(pts.reshape(1, -1, 2), np.array([[ru, fu, tu], [rv, fv, tv]]))
        ipts = np.rint(uv[0]).astype(np.int32)
        if start_xy is not None and runs[0][0] == first:
            sx, sy = start_xy
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
        #: the same as rows (start, stop, centre x, centre y, radius) for the kernels
        self.table = np.array([start, stop, cx, cy, r], np.float64).T.copy()

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
