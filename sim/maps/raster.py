"""The top-down map raster: one class label per ground pixel.

:func:`build_raster` paints every lane of the OpenDRIVE file (read with
:mod:`sim.maps.odr`, so sidewalks, shoulders and curbs too), the road marks exactly
as the file gives them, crosswalk objects and stop lines into an (H, W) ``uint8``
image of :class:`RasterClass` labels. The camera renderer textures the ground from
these labels, so the class numbers are stable: new classes are only ever appended.

Pixel grid: rows follow +y and columns +x of CARLA's world frame (y to the right
of x), so the picture is not mirrored: it shows the map as seen from above with x to
the right and y downwards. ``origin_xy_m`` is the world (x, y) of the **top-left
corner** of pixel (row 0, col 0); pixel (r, c) covers
``[ox + c*m, ox + (c+1)*m) x [oy + r*m, oy + (r+1)*m)`` with ``m = m_per_px``.

Painting order (later wins): shoulder-like lanes, sidewalks, curb lanes, driving
lanes, junction driving lanes, crosswalks, curb road marks, lane markings, stop
lines.

Road marks: ``solid``/``broken`` and the double types (two lines of the mark's width,
``double_line_gap_m`` apart; for ``solid broken`` and ``broken solid`` the first word
is the line nearer the road centre, on the centre lane the line on the left, as
OpenDRIVE defines them), ``botts dots``, ``curb`` (painted as :attr:`RasterClass.CURB`)
and ``edge``. Broken lines are ``broken_line_m`` painted and ``broken_gap_m`` empty,
phased from the start of the road-mark record, unless the record gives explicit
``<type><line>`` dash definitions, which then win. ``yellow`` and ``orange`` marks are
yellow; every other colour (``standard``, ``white``, ``red``, ...) is white. Marks
are drawn at least one pixel wide.

Stop lines: a signal from ``RoadMap.signals`` of kind ``traffic_light`` or ``stop``
controls

* if it sits on a junction's connecting road: every driving lane of that road, and
  the stop line lies across the lane where it enters the junction (its first point);
* otherwise: the driving lanes of its road that end at a junction, at the road end
  (start or end) nearest to the signal's ``s``, if that end is within
  ``stop_line_max_distance_m`` of the signal; the line lies across each lane's last
  point.

The line spans the lane width at that point and is ``stop_line_width_m`` deep, just
before the junction.

Cache: ``<raster_cache_dir()>/<key>.npy`` (the labels) plus ``<key>.json`` (origin,
scale, hash, shape), keyed by the map's content hash, ``m_per_px``, the style and the
format version. Files are written under a temporary name and renamed, and a cache
entry whose sidecar or array does not match is rebuilt, never trusted. A cached
raster loads memory-mapped (read-only labels).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path

import cv2
import numpy as np

from sim.errors import ConfigError, MapError
from sim.maps.odr import (
    LaneStrip,
    MarkColor,
    MarkLine,
    MarkType,
    OpenDrive,
    RoadMark,
    object_outline_xy,
    read_opendrive,
    road_to_world,
    sample_lanes,
)
from sim.maps.roadmap import RoadMap

__all__ = [
    "RasterClass",
    "DEFAULT_PALETTE",
    "RasterStyle",
    "MapRaster",
    "build_raster",
    "raster_cache_dir",
    "RASTER_FORMAT_VERSION",
]

#: Bumped whenever painting changes, so old cache files are rebuilt.
RASTER_FORMAT_VERSION = 1

_SHIFT = 3  # cv2 fixed-point bits: 1/8 pixel
_SCALE = 1 << _SHIFT
_MAX_PIXELS = 600_000_000


class RasterClass(IntEnum):
    """Ground classes of the map raster. Stable numbers: append, never renumber."""

    OFF_ROAD = 0  #: grass, terrain, anything no lane covers
    ROAD = 1  #: driving surface outside junctions (driving, bidirectional, ramps, bus, ...)
    JUNCTION = 2  #: driving surface of junction connecting roads
    SHOULDER = 3  #: paved, not for driving: shoulder, border, parking, stop, median, biking, ...
    SIDEWALK = 4  #: sidewalk and walking lanes
    CURB = 5  #: curb lanes and ``curb`` road marks
    MARKING_WHITE = 6  #: white (and every non-yellow) lane marking
    MARKING_YELLOW = 7  #: yellow or orange lane marking
    STOP_LINE = 8  #: stop line at a signal-controlled junction entry
    CROSSWALK = 9  #: crosswalk objects of the file


#: RGB per class, indexable by label: ``DEFAULT_PALETTE[labels]`` is the picture.
DEFAULT_PALETTE = np.array(
    [
        (74, 96, 62),  # OFF_ROAD
        (64, 64, 68),  # ROAD
        (82, 80, 88),  # JUNCTION
        (112, 104, 92),  # SHOULDER
        (168, 164, 156),  # SIDEWALK
        (196, 96, 72),  # CURB
        (240, 240, 240),  # MARKING_WHITE
        (236, 188, 32),  # MARKING_YELLOW
        (255, 64, 64),  # STOP_LINE
        (132, 160, 196),  # CROSSWALK
    ],
    dtype=np.uint8,
)

# OpenDRIVE lane types (lower-cased) per surface class; other types ("none", ...) stay unpainted.
_DRIVING_TYPES = frozenset(
    (
        "driving",
        "bidirectional",
        "entry",
        "exit",
        "onramp",
        "offramp",
        "connectingramp",
        "sliplane",
        "hov",
        "bus",
        "taxi",
        "roadworks",
    )
)
_SHOULDER_TYPES = frozenset(
    (
        "shoulder",
        "border",
        "parking",
        "stop",
        "restricted",
        "median",
        "biking",
        "tram",
        "rail",
        "special1",
        "special2",
        "special3",
    )
)
_SIDEWALK_TYPES = frozenset(("sidewalk", "walking"))
_CURB_TYPES = frozenset(("curb",))


@dataclass(frozen=True)
class RasterStyle:
    """How road marks, stop lines and the border of the raster are drawn (metres)."""

    margin_m: float = 10.0  #: off-road border around the outermost lane
    broken_line_m: float = 3.0  #: painted length of a broken line (CARLA's towns: 3 m)
    broken_gap_m: float = 6.0  #: gap of a broken line (CARLA's towns: 6 m)
    double_line_gap_m: float = 0.12  #: clear space between the two lines of a double mark
    default_mark_width_m: float = 0.12  #: width of marks whose record gives none
    curb_width_m: float = 0.15  #: width of a ``curb`` mark whose record gives none
    botts_dot_m: float = 0.15  #: diameter of a Botts' dot
    botts_gap_m: float = 1.2  #: spacing between Botts' dots
    stop_line_width_m: float = 0.4  #: depth of a stop line along the lane
    stop_line_max_distance_m: float = 50.0  #: how far from the junction a signal may stand

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"RasterStyle.{name} must be a finite number >= 0, got {value!r}")
        for name in ("broken_line_m", "botts_dot_m", "botts_gap_m", "stop_line_width_m"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"RasterStyle.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True, eq=False)
class MapRaster:
    """Class labels of the ground seen from above; see the module docstring for the grid.

    ``labels`` is (H, W) ``uint8`` of :class:`RasterClass` (read-only when loaded from
    the cache). ``content_hash`` is the map's (``RoadMap.content_hash``).
    """

    labels: np.ndarray
    origin_xy_m: tuple[float, float]
    m_per_px: float
    content_hash: str

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.labels.shape[0]), int(self.labels.shape[1])

    @property
    def extent_xy_m(self) -> tuple[float, float, float, float]:
        """(min x, min y, max x, max y) of the area the raster covers."""
        h, w = self.shape
        ox, oy = self.origin_xy_m
        return ox, oy, ox + w * self.m_per_px, oy + h * self.m_per_px

    def world_to_pixel(self, xy_m) -> np.ndarray:
        """(row, col) int64 of the pixel containing each world (x, y); may lie outside the image."""
        xy = np.asarray(xy_m, dtype=float)
        col = np.floor((xy[..., 0] - self.origin_xy_m[0]) / self.m_per_px)
        row = np.floor((xy[..., 1] - self.origin_xy_m[1]) / self.m_per_px)
        return np.stack([row, col], axis=-1).astype(np.int64)

    def pixel_to_world(self, rc) -> np.ndarray:
        """World (x, y) of the centre of each pixel (row, col)."""
        rc = np.asarray(rc, dtype=float)
        x = self.origin_xy_m[0] + (rc[..., 1] + 0.5) * self.m_per_px
        y = self.origin_xy_m[1] + (rc[..., 0] + 0.5) * self.m_per_px
        return np.stack([x, y], axis=-1)

    def label_at(self, xy_m) -> np.ndarray:
        """Labels under world (x, y) points; OFF_ROAD outside the image."""
        rc = self.world_to_pixel(xy_m)
        h, w = self.shape
        inside = (rc[..., 0] >= 0) & (rc[..., 0] < h) & (rc[..., 1] >= 0) & (rc[..., 1] < w)
        out = np.full(rc.shape[:-1], RasterClass.OFF_ROAD, np.uint8)
        out[inside] = self.labels[rc[..., 0][inside], rc[..., 1][inside]]
        return out

    def to_rgb(self, palette: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) ``uint8`` RGB picture: ``palette[labels]`` (default :data:`DEFAULT_PALETTE`)."""
        pal = DEFAULT_PALETTE if palette is None else np.asarray(palette, dtype=np.uint8)
        if pal.ndim != 2 or pal.shape[1] != 3 or len(pal) < len(RasterClass):
            raise ConfigError(f"palette must be ({len(RasterClass)}, 3) RGB, got shape {pal.shape}")
        return pal[np.asarray(self.labels)]

    def crop(self, min_xy_m: tuple[float, float], max_xy_m: tuple[float, float]) -> MapRaster:
        """The part of the raster inside the world box (a copy; clipped to the raster)."""
        h, w = self.shape
        r0, c0 = self.world_to_pixel(min_xy_m)
        r1, c1 = self.world_to_pixel(max_xy_m) + 1
        r0, r1 = int(np.clip(r0, 0, h)), int(np.clip(r1, 0, h))
        c0, c1 = int(np.clip(c0, 0, w)), int(np.clip(c1, 0, w))
        origin = (self.origin_xy_m[0] + c0 * self.m_per_px, self.origin_xy_m[1] + r0 * self.m_per_px)
        return MapRaster(np.array(self.labels[r0:r1, c0:c1]), origin, self.m_per_px, self.content_hash)


def raster_cache_dir() -> Path:
    """``$LOOPDRIVE_CACHE/rasters`` (default ``~/.cache/loopdrive/rasters``)."""
    root = os.environ.get("LOOPDRIVE_CACHE") or str(Path.home() / ".cache" / "loopdrive")
    return Path(root).expanduser() / "rasters"


# -- painting ------------------------------------------------------------------------


class _Canvas:
    """The label image and the world-to-cv2 fixed-point transform."""

    def __init__(self, origin_xy_m: tuple[float, float], shape: tuple[int, int], m_per_px: float):
        self.origin = np.array(origin_xy_m, dtype=float)
        self.m_per_px = m_per_px
        self.labels = np.zeros(shape, np.uint8)

    def fixed(self, xy_m: np.ndarray) -> np.ndarray:
        """World (..., 2) to cv2 (x=col, y=row) fixed-point, pixel centres at integers."""
        return np.rint(((xy_m - self.origin) / self.m_per_px - 0.5) * _SCALE).astype(np.int32)

    def quads(self, quads_xy_m: np.ndarray, label: int) -> None:
        """Fill (Q, 4, 2) world quads one by one (``fillPoly`` on many polygons is even-odd)."""
        if len(quads_xy_m) == 0:
            return
        fill, img = cv2.fillConvexPoly, self.labels
        for q in self.fixed(quads_xy_m):
            fill(img, q, label, lineType=cv2.LINE_8, shift=_SHIFT)

    def polygon(self, xy_m: np.ndarray, label: int) -> None:
        if len(xy_m) >= 3:
            cv2.fillPoly(self.labels, [self.fixed(xy_m)], label, lineType=cv2.LINE_8, shift=_SHIFT)


def _strip_quads(strip: LaneStrip) -> np.ndarray:
    a, b = strip.inner_xy_m, strip.outer_xy_m
    quads = np.stack([a[:-1], a[1:], b[1:], b[:-1]], axis=1)
    keep = (strip.width_m[:-1] > 1e-3) | (strip.width_m[1:] > 1e-3)
    return quads[keep]


def _lane_class(strip: LaneStrip) -> int | None:
    kind = strip.lane_type.lower()
    if kind in _DRIVING_TYPES:
        return RasterClass.JUNCTION if strip.in_junction else RasterClass.ROAD
    if kind in _SHOULDER_TYPES:
        return RasterClass.SHOULDER
    if kind in _SIDEWALK_TYPES:
        return RasterClass.SIDEWALK
    if kind in _CURB_TYPES:
        return RasterClass.CURB
    return None


_SURFACE_ORDER = (
    RasterClass.SHOULDER,
    RasterClass.SIDEWALK,
    RasterClass.CURB,
    RasterClass.ROAD,
    RasterClass.JUNCTION,
)


def _paint_surfaces(canvas: _Canvas, strips: list[LaneStrip]) -> None:
    by_class: dict[int, list[np.ndarray]] = {c: [] for c in _SURFACE_ORDER}
    for strip in strips:
        label = _lane_class(strip)
        if label is not None and strip.lane_id != 0:
            by_class[label].append(_strip_quads(strip))
    for label in _SURFACE_ORDER:
        if by_class[label]:
            canvas.quads(np.concatenate(by_class[label]), label)


def _paint_crosswalks(canvas: _Canvas, od: OpenDrive) -> None:
    for road in od.roads.values():
        for obj in road.objects:
            if obj.type.lower() == "crosswalk":
                canvas.polygon(object_outline_xy(road, obj), RasterClass.CROSSWALK)


# -- road marks -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    t_offset_m: float
    width_m: float
    length_m: float  # 0: solid
    space_m: float
    s_offset_m: float
    label: int


def _mark_lines(mark: RoadMark, lane_id: int, style: RasterStyle, m_per_px: float) -> list[_Line]:
    """The painted lines of one road-mark record, offsets in OpenDRIVE t."""
    if mark.type == MarkType.CURB:
        width = mark.width_m or style.curb_width_m
        return [_Line(0.0, max(width, m_per_px), 0.0, 0.0, 0.0, RasterClass.CURB)]
    yellow = mark.color in (MarkColor.YELLOW, MarkColor.ORANGE)
    label = RasterClass.MARKING_YELLOW if yellow else RasterClass.MARKING_WHITE
    width = max(mark.width_m or style.default_mark_width_m, m_per_px)
    if mark.lines:
        return [_explicit_line(line, label, m_per_px) for line in mark.lines]
    solid = (0.0, 0.0)
    broken = (style.broken_line_m, style.broken_gap_m)
    singles = {MarkType.SOLID: solid, MarkType.EDGE: solid, MarkType.BROKEN: broken}
    if mark.type in singles:
        return [_Line(0.0, width, *singles[mark.type], 0.0, label)]
    if mark.type == MarkType.BOTTS_DOTS:
        dot = max(style.botts_dot_m, m_per_px)
        return [_Line(0.0, dot, dot, style.botts_gap_m, 0.0, label)]
    doubles = {
        MarkType.SOLID_SOLID: (solid, solid),
        MarkType.SOLID_BROKEN: (solid, broken),
        MarkType.BROKEN_SOLID: (broken, solid),
        MarkType.BROKEN_BROKEN: (broken, broken),
    }
    if mark.type not in doubles:  # none, grass, custom without lines
        return []
    first, second = doubles[mark.type]
    # first = inner line (centre lane: the left one); outward is +t for left lanes
    outward = 1.0 if lane_id > 0 else -1.0
    half = 0.5 * (width + style.double_line_gap_m)
    return [
        _Line(-outward * half, width, *first, 0.0, label),
        _Line(outward * half, width, *second, 0.0, label),
    ]


def _explicit_line(line: MarkLine, label: int, m_per_px: float) -> _Line:
    solid = line.length_m <= 0 or line.space_m <= 0
    return _Line(
        line.t_offset_m,
        max(line.width_m, m_per_px),
        0.0 if solid else line.length_m,
        0.0 if solid else line.space_m,
        line.s_offset_m,
        label,
    )


def _line_quads(s, xy, tdir, line: _Line, s_start: float, m_per_px: float):
    """Quads of one line along a run of samples; dashes cut exactly at their ends.

    cv2 fills a polygon's outline too, so a filled quad covers about one pixel more
    than its width: lines are drawn one pixel narrower to come out at their width.
    """
    if line.length_m > 0:
        period = line.length_m + line.space_m
        phase0 = s_start + line.s_offset_m
        k0 = math.floor((s[0] - phase0) / period)
        k1 = math.ceil((s[-1] - phase0) / period)
        ks = np.arange(k0, k1 + 1) * period + phase0
        edges = np.concatenate([ks, ks + line.length_m])
        edges = edges[(edges > s[0]) & (edges < s[-1])]
        grid = np.unique(np.concatenate([s, edges]))
        xy = np.stack([np.interp(grid, s, xy[:, 0]), np.interp(grid, s, xy[:, 1])], axis=1)
        tdir = np.stack([np.interp(grid, s, tdir[:, 0]), np.interp(grid, s, tdir[:, 1])], axis=1)
        mid = 0.5 * (grid[:-1] + grid[1:])
        on = np.mod(mid - phase0, period) < line.length_m
    else:
        on = np.ones(len(s) - 1, bool)
    half = 0.5 * max(line.width_m - m_per_px, 0.0)
    lo = xy + tdir * (line.t_offset_m - half)
    hi = xy + tdir * (line.t_offset_m + half)
    quads = np.stack([lo[:-1], lo[1:], hi[1:], hi[:-1]], axis=1)
    return quads[on]


def _strip_mark_quads(strip: LaneStrip, sec_start: float, style: RasterStyle, m_per_px: float):
    """(label, quads) of the marks on the strip's outer border, record by record."""
    seg_rec = strip.mark_index[:-1]
    if len(seg_rec) == 0 or (seg_rec < 0).all():
        return
    cuts = np.flatnonzero(np.diff(seg_rec)) + 1
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(seg_rec)]]), strict=True):
        rec = int(seg_rec[a])
        if rec < 0:
            continue
        mark = strip.road_marks[rec]
        sl = slice(a, b + 1)
        for line in _mark_lines(mark, strip.lane_id, style, m_per_px):
            quads = _line_quads(
                strip.s_m[sl],
                strip.outer_xy_m[sl],
                strip.t_dir_xy[sl],
                line,
                sec_start + mark.s_offset_m,
                m_per_px,
            )
            yield line.label, quads


def _paint_marks(canvas: _Canvas, od: OpenDrive, strips: list[LaneStrip], style: RasterStyle) -> None:
    by_class: dict[int, list[np.ndarray]] = {
        c: [] for c in (RasterClass.CURB, RasterClass.MARKING_WHITE, RasterClass.MARKING_YELLOW)
    }
    for strip in strips:
        if not strip.road_marks:
            continue
        sec_start = od.roads[strip.road_id].sections[strip.section_index].s_m
        for label, quads in _strip_mark_quads(strip, sec_start, style, canvas.m_per_px):
            by_class[label].append(quads)
    for label, parts in by_class.items():
        if parts:
            canvas.quads(np.concatenate(parts), label)


# -- stop lines -------------------------------------------------------------------------


def _stop_quad(point_xy: np.ndarray, yaw_rad: float, width_m: float, depth_m: float, at_end: bool):
    """A depth x width box across the lane, ending at (``at_end``) or starting at the point."""
    fwd = np.array([math.cos(yaw_rad), math.sin(yaw_rad)])
    side = np.array([-fwd[1], fwd[0]]) * 0.5 * width_m
    back = point_xy - fwd * depth_m if at_end else point_xy
    front = point_xy if at_end else point_xy + fwd * depth_m
    return np.stack([back - side, front - side, front + side, back + side])


def _junction_entry_lanes(road_map: RoadMap, road_id: int) -> list:
    """Driving lanes of a road (outside junctions) whose successor is a junction lane."""
    out = []
    for key, lane in road_map.lanes.items():
        if key.road_id != road_id or lane.in_junction:
            continue
        if any(road_map.lanes[k].in_junction for k in lane.successors if k in road_map.lanes):
            out.append(lane)
    return out


def _stop_lines(road_map: RoadMap, od: OpenDrive, style: RasterStyle) -> list[np.ndarray]:
    quads = []
    done: set[tuple] = set()
    for sig in road_map.signals:
        road = od.roads.get(sig.road_id)
        if sig.kind not in ("traffic_light", "stop") or road is None:
            continue
        if road.in_junction:
            entries = [(lane, 0) for key, lane in road_map.lanes.items() if key.road_id == road.id]
        else:
            entries = _ends_near_signal(road_map, road, sig.s_m, style.stop_line_max_distance_m)
        for lane, i in entries:
            if (lane.key, i) in done:
                continue
            done.add((lane.key, i))
            quads.append(
                _stop_quad(
                    lane.xyz_m[i, :2],
                    float(lane.yaw_rad[i]),
                    float(lane.width_m[i]),
                    style.stop_line_width_m,
                    at_end=i != 0,
                )
            )
    return quads


def _ends_near_signal(road_map: RoadMap, road, s_m: float, max_distance_m: float) -> list:
    lanes = _junction_entry_lanes(road_map, road.id)
    if not lanes:
        return []
    ends = road_to_world(road, np.array([0.0, road.length_m]), np.zeros(2))
    groups: dict[int, list] = {0: [], 1: []}
    for lane in lanes:
        d = np.hypot(*(ends - lane.xyz_m[-1, :2]).T)
        groups[int(np.argmin(d))].append((lane, len(lane.s_m) - 1))
    distance = {0: s_m, 1: road.length_m - s_m}
    best = min((e for e in groups if groups[e]), key=lambda e: distance[e])
    return groups[best] if distance[best] <= max_distance_m else []


# -- build and cache --------------------------------------------------------------------


def _grid(od_strips: list[LaneStrip], od: OpenDrive, m_per_px: float, margin_m: float):
    pts = [np.concatenate([s.inner_xy_m, s.outer_xy_m]) for s in od_strips if s.lane_id != 0]
    xy = np.concatenate(pts) if pts else np.concatenate([s.centre_xy_m for s in od_strips])
    lo = np.floor((xy.min(axis=0) - margin_m) / m_per_px) * m_per_px
    hi = xy.max(axis=0) + margin_m
    w, h = (int(v) for v in np.ceil((hi - lo) / m_per_px))
    if w * h > _MAX_PIXELS:
        raise MapError(
            f"{od.source}: a {w} x {h} raster at {m_per_px} m/px is too large; use a coarser m_per_px"
        )
    return (float(lo[0]), float(lo[1])), (h, w)


def _paint(road_map: RoadMap, m_per_px: float, style: RasterStyle, content_hash: str) -> MapRaster:
    od = read_opendrive(road_map.xodr_text, source=road_map.source)
    strips = sample_lanes(od, step_m=float(np.clip(5.0 * m_per_px, 0.25, 2.0)))
    origin, shape = _grid(strips, od, m_per_px, style.margin_m)
    canvas = _Canvas(origin, shape, m_per_px)
    _paint_surfaces(canvas, strips)
    _paint_crosswalks(canvas, od)
    _paint_marks(canvas, od, strips, style)
    stops = _stop_lines(road_map, od, style)
    if stops:
        canvas.quads(np.stack(stops), RasterClass.STOP_LINE)
    return MapRaster(canvas.labels, origin, m_per_px, content_hash)


def _cache_key(content_hash: str, m_per_px: float, style: RasterStyle) -> str:
    style_text = json.dumps(asdict(style), sort_keys=True)
    digest = hashlib.sha256(f"{content_hash}|{m_per_px!r}|{style_text}|{RASTER_FORMAT_VERSION}".encode())
    return f"{content_hash[:16]}_{m_per_px:g}mpp_{digest.hexdigest()[:16]}"


def _meta(raster: MapRaster) -> dict:
    return {
        "format_version": RASTER_FORMAT_VERSION,
        "content_hash": raster.content_hash,
        "m_per_px": raster.m_per_px,
        "origin_xy_m": list(raster.origin_xy_m),
        "shape": list(raster.shape),
        "classes": [c.name for c in RasterClass],
    }


def _load_cached(path: Path, content_hash: str, m_per_px: float) -> MapRaster | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        labels = np.load(path, mmap_mode="r", allow_pickle=False)
        ok = (
            meta["format_version"] == RASTER_FORMAT_VERSION
            and meta["content_hash"] == content_hash
            and meta["m_per_px"] == m_per_px
            and meta["classes"] == [c.name for c in RasterClass]
            and labels.dtype == np.uint8
            and list(labels.shape) == meta["shape"]
        )
        if not ok:
            return None
        origin = (float(meta["origin_xy_m"][0]), float(meta["origin_xy_m"][1]))
        return MapRaster(labels, origin, m_per_px, content_hash)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _store(path: Path, raster: MapRaster) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(raster.labels), allow_pickle=False))
        meta = json.dumps(_meta(raster), indent=1).encode()
        _atomic_write(path.with_suffix(".json"), lambda f: f.write(meta))
    except OSError:
        pass  # an unwritable cache only costs the next build its time


def build_raster(
    road_map: RoadMap,
    *,
    m_per_px: float = 0.1,
    cache_dir: str | Path | None = None,
    style: RasterStyle | None = None,
    use_cache: bool = True,
) -> MapRaster:
    """The class raster of ``road_map`` at ``m_per_px`` metres per pixel, from the cache when there.

    ``cache_dir`` defaults to :func:`raster_cache_dir`. With ``use_cache`` False the
    raster is built and nothing is read or written.
    """
    if not (isinstance(m_per_px, int | float) and math.isfinite(m_per_px) and 0.01 <= m_per_px <= 100):
        raise ConfigError(f"m_per_px must be between 0.01 and 100, got {m_per_px!r}")
    m_per_px = float(m_per_px)
    style = style or RasterStyle()
    content_hash = road_map.content_hash
    path = Path(cache_dir) if cache_dir is not None else raster_cache_dir()
    path = path / f"{_cache_key(content_hash, m_per_px, style)}.npy"
    if use_cache:
        cached = _load_cached(path, content_hash, m_per_px)
        if cached is not None:
            return cached
    raster = _paint(road_map, m_per_px, style, content_hash)
    if use_cache:
        _store(path, raster)
    return raster
