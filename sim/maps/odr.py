"""OpenDRIVE lane geometry for every lane type, read straight from the XML.

``carla.Map`` offline only reaches driving lanes; the map raster, walkers on
sidewalks and the camera renderer need all of them (driving, sidewalk, shoulder,
parking, border, median, curb, ...), with widths and road marks. This module parses
the OpenDRIVE file with :mod:`xml.etree.ElementTree` and evaluates it:

* plan view: ``line``, ``arc``, ``spiral`` (clothoid, integrated numerically),
  ``poly3`` (re-parametrised by arc length) and ``paramPoly3`` (``pRange``
  ``arcLength`` or ``normalized``; like CARLA, ``p`` is taken as the distance along
  the geometry, or that distance divided by its length);
* ``laneOffset``, ``laneSection`` with left/centre/right lanes, lane ``width`` (or
  ``border``) records and ``roadMark`` records (with explicit ``<type><line>``
  dash definitions when the file has them);
* ``elevationProfile``, ``type/speed``, ``signals`` (``signal`` and
  ``signalReference``), ``objects`` (with outlines) and junction ids.

Frames and units: OpenDRIVE's inertial frame has y to the left (north); CARLA's
world frame has y to the right. Everything this module returns in world
coordinates is in **CARLA's frame**: ``x = x_odr``, ``y = -y_odr``,
``yaw = -heading_odr`` (radians). Road coordinates ``s`` (along the reference line)
and ``t`` (to the left of it) stay as OpenDRIVE defines them.

:func:`read_opendrive` parses, :func:`sample_lanes` turns every lane of every lane
section into a :class:`LaneStrip` (boundaries and centre sampled every ``step_m``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from sim.errors import MapError
from sim.maps.roadmap import LaneKey

__all__ = [
    "MarkType",
    "MarkColor",
    "PolyRecord",
    "Geometry",
    "MarkLine",
    "RoadMark",
    "LaneRecord",
    "LaneSection",
    "RoadLink",
    "RoadSignal",
    "RoadObject",
    "Road",
    "OpenDrive",
    "LaneStrip",
    "read_opendrive",
    "read_opendrive_file",
    "reference_line",
    "road_to_world",
    "object_outline_xy",
    "sample_lanes",
]

_SPEED_UNITS_TO_MPS = {"m/s": 1.0, "km/h": 1.0 / 3.6, "mph": 0.44704}


class MarkType(IntEnum):
    """OpenDRIVE ``roadMark`` types (``e_roadMarkType``); unknown names read as NONE."""

    NONE = 0
    SOLID = 1
    BROKEN = 2
    SOLID_SOLID = 3
    SOLID_BROKEN = 4
    BROKEN_SOLID = 5
    BROKEN_BROKEN = 6
    BOTTS_DOTS = 7
    GRASS = 8
    CURB = 9
    CUSTOM = 10
    EDGE = 11


class MarkColor(IntEnum):
    """OpenDRIVE ``roadMark`` colours (``e_roadMarkColor``); ``standard`` is white."""

    STANDARD = 0
    WHITE = 1
    YELLOW = 2
    BLUE = 3
    GREEN = 4
    RED = 5
    ORANGE = 6
    BLACK = 7
    VIOLET = 8


_MARK_TYPES = {m.name.replace("_", " ").lower(): m for m in MarkType}
_MARK_COLORS = {c.name.lower(): c for c in MarkColor}


@dataclass(frozen=True)
class PolyRecord:
    """One cubic record ``a + b*ds + c*ds**2 + d*ds**3`` valid from ``s_m`` on.

    ``s_m`` is what the record's element gives: road ``s`` for ``laneOffset`` and
    ``elevation``, ``sOffset`` from the lane-section start for ``width``/``border``.
    """

    s_m: float
    a: float
    b: float
    c: float
    d: float


@dataclass(frozen=True, eq=False)
class Geometry:
    """One plan-view geometry record (OpenDRIVE frame: y left, heading counter-clockwise).

    ``kind`` is ``line``, ``arc``, ``spiral``, ``poly3`` or ``paramPoly3``. ``params``:
    arc ``(curvature,)``; spiral ``(curv_start, curv_end)``; poly3 ``(a, b, c, d)``;
    paramPoly3 ``(aU, bU, cU, dU, aV, bV, cV, dV, normalized)`` with ``normalized``
    1.0 for ``pRange="normalized"``.

    ``poly3`` and ``paramPoly3`` are evaluated by true arc length, as CARLA 0.9.16
    does: a table of the curve's chord length every ~2 cm of its parameter maps the
    distance along the geometry to the parameter (``u``, or ``p`` in ``[0, length]``
    or ``[0, 1]``). CARLA's own table is coarser and interpolated linearly, so on the
    tight paramPoly3 turns ``carla.Osm2Odr`` writes its waypoints differ from these
    points by up to ~3 cm (elsewhere by under 2 mm).
    """

    s_m: float
    x_m: float
    y_m: float
    hdg_rad: float
    length_m: float
    kind: str
    params: tuple[float, ...] = ()
    _table: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("poly3", "paramPoly3"):
            return
        n = max(64, int(math.ceil(self.length_m / 0.02)))
        if self.kind == "poly3":  # u runs past the end: the curve is longer than its u
            param = np.linspace(0.0, max(self.length_m, 1e-9) * 1.5, int(n * 1.5))
        else:
            param = np.linspace(0.0, 1.0 if self.params[8] else self.length_m, n)
        u, v = _poly_uv(self, param)
        s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(u), np.diff(v)))])
        object.__setattr__(self, "_table", (s, param))

    def evaluate(self, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, heading) in the OpenDRIVE frame at distances ``ds`` from the geometry start."""
        ds = np.clip(np.asarray(ds, dtype=float), 0.0, self.length_m)
        u, v, theta = _LOCAL[self.kind](self, ds)
        ch, sh = math.cos(self.hdg_rad), math.sin(self.hdg_rad)
        return self.x_m + u * ch - v * sh, self.y_m + u * sh + v * ch, self.hdg_rad + theta


def _line_local(g: Geometry, ds: np.ndarray):
    return ds, np.zeros_like(ds), np.zeros_like(ds)


def _arc_local(g: Geometry, ds: np.ndarray):
    k = g.params[0]
    if abs(k) < 1e-12:
        return _line_local(g, ds)
    theta = k * ds
    return np.sin(theta) / k, (1.0 - np.cos(theta)) / k, theta


_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(8)


def _spiral_local(g: Geometry, ds: np.ndarray):
    """Clothoid: curvature linear in ``ds``; position by 8-point Gauss-Legendre panels of <= 1 m."""
    k0, k1 = g.params
    rate = (k1 - k0) / g.length_m if g.length_m > 0 else 0.0

    def theta_of(u):
        return k0 * u + 0.5 * rate * u * u

    def integral(lo, hi):  # int_lo^hi (cos, sin)(theta(u)) du, vectorised over panels
        half = 0.5 * (hi - lo)[:, None]
        u = 0.5 * (hi + lo)[:, None] + half * _GAUSS_X[None, :]
        th = theta_of(u)
        return (np.cos(th) * _GAUSS_W).sum(1) * half[:, 0], (np.sin(th) * _GAUSS_W).sum(1) * half[:, 0]

    n = max(1, int(math.ceil(g.length_m / 1.0)))
    grid = np.linspace(0.0, g.length_m, n + 1)
    cx, cy = integral(grid[:-1], grid[1:])
    base_x = np.concatenate([[0.0], np.cumsum(cx)])
    base_y = np.concatenate([[0.0], np.cumsum(cy)])
    j = np.clip(np.searchsorted(grid, ds, side="right") - 1, 0, n - 1)
    px, py = integral(grid[j], ds)
    return base_x[j] + px, base_y[j] + py, theta_of(ds)


def _poly_uv(g: Geometry, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local (u, v) of a poly3 (``p`` is u) or paramPoly3 at parameter ``p``."""
    if g.kind == "poly3":
        a, b, c, d = g.params
        return p, a + p * (b + p * (c + p * d))
    au, bu, cu, du, av, bv, cv, dv, _ = g.params
    return au + p * (bu + p * (cu + p * du)), av + p * (bv + p * (cv + p * dv))


def _poly_local(g: Geometry, ds: np.ndarray):
    s_tab, p_tab = g._table  # type: ignore[misc]
    p = np.interp(ds, s_tab, p_tab)
    u, v = _poly_uv(g, p)
    if g.kind == "poly3":
        _, b, c, d = g.params
        return u, v, np.arctan(b + p * (2 * c + 3 * d * p))
    _, bu, cu, du, _, bv, cv, dv, _ = g.params
    return u, v, np.arctan2(bv + p * (2 * cv + 3 * dv * p), bu + p * (2 * cu + 3 * du * p))


_LOCAL = {
    "line": _line_local,
    "arc": _arc_local,
    "spiral": _spiral_local,
    "poly3": _poly_local,
    "paramPoly3": _poly_local,
}


@dataclass(frozen=True)
class MarkLine:
    """One explicit line of a road mark (``roadMark/type/line``); a solid line has ``space_m`` 0."""

    length_m: float
    space_m: float
    t_offset_m: float
    s_offset_m: float
    width_m: float


@dataclass(frozen=True)
class RoadMark:
    """A ``roadMark`` record on a lane's outer border, valid from ``s_offset_m`` (section-relative).

    ``width_m`` is ``None`` where the file gives no width. ``lines`` holds the explicit
    dash definitions of ``<type><line>`` children (empty when the file has none).
    """

    s_offset_m: float
    type: MarkType
    color: MarkColor
    width_m: float | None
    lines: tuple[MarkLine, ...] = ()


@dataclass(frozen=True)
class LaneRecord:
    """One lane of a lane section: id (> 0 left, 0 centre, < 0 right), type as the file spells it."""

    id: int
    type: str
    widths: tuple[PolyRecord, ...]
    borders: tuple[PolyRecord, ...]
    road_marks: tuple[RoadMark, ...]


@dataclass(frozen=True)
class LaneSection:
    """Lanes valid on ``[s_m, end_s_m]`` of the road, sorted by id (left to right: +n .. 0 .. -n)."""

    index: int
    s_m: float
    end_s_m: float
    lanes: tuple[LaneRecord, ...]


@dataclass(frozen=True)
class RoadLink:
    """A road's predecessor or successor: ``element_type`` ``road`` or ``junction``."""

    element_type: str
    element_id: int
    contact_point: str  # "start", "end" or "" (junctions)


@dataclass(frozen=True)
class RoadSignal:
    """A ``signal`` or a ``signalReference`` (``is_reference``) on a road, in road coordinates."""

    id: str
    road_id: int
    s_m: float
    t_m: float
    orientation: str  # "+", "-" or "none"
    type: str
    subtype: str
    name: str
    dynamic: bool
    is_reference: bool


@dataclass(frozen=True)
class RoadObject:
    """An ``object`` on a road (crosswalk, pole, building, ...).

    ``outline_local`` holds ``cornerLocal`` (u, v) points in the object's frame;
    ``outline_road`` holds ``cornerRoad`` (s, t) points. Both may be empty.
    """

    id: str
    road_id: int
    type: str
    name: str
    s_m: float
    t_m: float
    hdg_rad: float
    length_m: float
    width_m: float
    radius_m: float
    outline_local: tuple[tuple[float, float], ...] = ()
    outline_road: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Road:
    """One OpenDRIVE road: reference line, lane layout, signals and objects.

    ``junction_id`` is -1 outside junctions. ``speeds`` holds ``(s_m, max_mps)`` of the
    ``type/speed`` records. ``rule`` is ``RHT`` or ``LHT``.
    """

    id: int
    name: str
    length_m: float
    junction_id: int
    rule: str
    geometries: tuple[Geometry, ...]
    elevations: tuple[PolyRecord, ...]
    lane_offsets: tuple[PolyRecord, ...]
    sections: tuple[LaneSection, ...]
    speeds: tuple[tuple[float, float], ...] = ()
    signals: tuple[RoadSignal, ...] = ()
    objects: tuple[RoadObject, ...] = ()
    predecessor: RoadLink | None = None
    successor: RoadLink | None = None

    @property
    def in_junction(self) -> bool:
        return self.junction_id >= 0


@dataclass(frozen=True)
class OpenDrive:
    """A parsed OpenDRIVE file: roads by id and the junction ids it declares."""

    source: str
    roads: dict[int, Road]
    junction_ids: tuple[int, ...]


# -- parsing ------------------------------------------------------------------------


class _Ctx:
    """Names the file and element in every parse error."""

    def __init__(self, source: str):
        self.source = source
        self.where = ""

    def fail(self, reason: str) -> MapError:
        where = f" ({self.where})" if self.where else ""
        return MapError(f"{self.source}: {reason}{where}")

    def num(self, elem: ET.Element, name: str, default: float | None = None) -> float:
        raw = elem.get(name)
        if raw is None or raw.strip() == "":
            if default is None:
                raise self.fail(f"<{elem.tag}> has no '{name}' attribute")
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(f"<{elem.tag}> attribute {name}={raw!r} is not a number") from None
        if not math.isfinite(value):
            raise self.fail(f"<{elem.tag}> attribute {name}={raw!r} is not finite")
        return value

    def int_id(self, elem: ET.Element, name: str = "id", default: int | None = None) -> int:
        raw = elem.get(name)
        if raw is None or raw.strip() == "":
            if default is None:
                raise self.fail(f"<{elem.tag}> has no '{name}' attribute")
            return default
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not value.is_integer():
            raise self.fail(f"<{elem.tag}> {name}={raw!r} is not an integer (CARLA needs integer ids)")
        return int(value)


def _poly(ctx: _Ctx, elem: ET.Element, s_name: str) -> PolyRecord:
    return PolyRecord(
        ctx.num(elem, s_name, 0.0),
        ctx.num(elem, "a", 0.0),
        ctx.num(elem, "b", 0.0),
        ctx.num(elem, "c", 0.0),
        ctx.num(elem, "d", 0.0),
    )


def _geometry(ctx: _Ctx, elem: ET.Element) -> Geometry | None:
    base = dict(
        s_m=ctx.num(elem, "s"),
        x_m=ctx.num(elem, "x"),
        y_m=ctx.num(elem, "y"),
        hdg_rad=ctx.num(elem, "hdg"),
        length_m=ctx.num(elem, "length"),
    )
    if base["length_m"] < 0:
        raise ctx.fail(f"geometry at s={base['s_m']} has a negative length")
    kinds = [child for child in elem if child.tag in _LOCAL]
    if not kinds:
        raise ctx.fail(f"geometry at s={base['s_m']} has no line/arc/spiral/poly3/paramPoly3 child")
    shape = kinds[0]
    if shape.tag == "arc":
        params: tuple[float, ...] = (ctx.num(shape, "curvature"),)
    elif shape.tag == "spiral":
        params = (ctx.num(shape, "curvStart"), ctx.num(shape, "curvEnd"))
    elif shape.tag == "poly3":
        params = tuple(ctx.num(shape, k, 0.0) for k in "abcd")
    elif shape.tag == "paramPoly3":
        coeffs = tuple(ctx.num(shape, f"{k}{axis}", 0.0) for axis in "UV" for k in "abcd")
        params = (*coeffs, 1.0 if shape.get("pRange", "normalized") == "normalized" else 0.0)
    else:
        params = ()
    return Geometry(kind=shape.tag, params=params, **base)


def _road_mark(ctx: _Ctx, elem: ET.Element) -> RoadMark:
    kind = _MARK_TYPES.get(" ".join(elem.get("type", "none").lower().split()), MarkType.NONE)
    color = _MARK_COLORS.get(elem.get("color", "standard").strip().lower(), MarkColor.STANDARD)
    width = ctx.num(elem, "width", -1.0)
    lines = tuple(
        MarkLine(
            length_m=ctx.num(line, "length", 0.0),
            space_m=ctx.num(line, "space", 0.0),
            t_offset_m=ctx.num(line, "tOffset", 0.0),
            s_offset_m=ctx.num(line, "sOffset", 0.0),
            width_m=ctx.num(line, "width", width if width > 0 else 0.12),
        )
        for line in elem.findall("type/line")
    )
    return RoadMark(ctx.num(elem, "sOffset", 0.0), kind, color, width if width > 0 else None, lines)


def _lane(ctx: _Ctx, elem: ET.Element) -> LaneRecord:
    lane_id = ctx.int_id(elem)
    widths = sorted((_poly(ctx, w, "sOffset") for w in elem.findall("width")), key=lambda r: r.s_m)
    borders = sorted((_poly(ctx, w, "sOffset") for w in elem.findall("border")), key=lambda r: r.s_m)
    marks = sorted((_road_mark(ctx, m) for m in elem.findall("roadMark")), key=lambda r: r.s_offset_m)
    return LaneRecord(lane_id, elem.get("type", "none"), tuple(widths), tuple(borders), tuple(marks))


def _sections(ctx: _Ctx, lanes_elem: ET.Element | None, length_m: float) -> tuple[LaneSection, ...]:
    if lanes_elem is None:
        raise ctx.fail("road has no <lanes>")
    raw = []
    for sec in lanes_elem.findall("laneSection"):
        lanes = [_lane(ctx, ln) for side in ("left", "center", "right") for ln in sec.findall(f"{side}/lane")]
        raw.append((ctx.num(sec, "s", 0.0), tuple(sorted(lanes, key=lambda r: -r.id))))
    if not raw:
        raise ctx.fail("road has no <laneSection>")
    raw.sort(key=lambda r: r[0])
    ends = [s for s, _ in raw[1:]] + [length_m]
    pairs = enumerate(zip(raw, ends, strict=True))
    return tuple(LaneSection(i, s, max(e, s), lanes) for i, ((s, lanes), e) in pairs)


def _link(ctx: _Ctx, elem: ET.Element | None) -> RoadLink | None:
    if elem is None or elem.get("elementId") is None:
        return None
    kind = elem.get("elementType", "road")
    return RoadLink(kind, ctx.int_id(elem, "elementId"), elem.get("contactPoint", ""))


def _signals(ctx: _Ctx, road_elem: ET.Element, road_id: int) -> tuple[RoadSignal, ...]:
    out = []
    for tag, ref in (("signals/signal", False), ("signals/signalReference", True)):
        for sig in road_elem.findall(tag):
            out.append(
                RoadSignal(
                    id=sig.get("id", ""),
                    road_id=road_id,
                    s_m=ctx.num(sig, "s", 0.0),
                    t_m=ctx.num(sig, "t", 0.0),
                    orientation=sig.get("orientation", "none"),
                    type=sig.get("type", ""),
                    subtype=sig.get("subtype", ""),
                    name=sig.get("name", ""),
                    dynamic=sig.get("dynamic", "no") == "yes",
                    is_reference=ref,
                )
            )
    return tuple(out)


def _objects(ctx: _Ctx, road_elem: ET.Element, road_id: int) -> tuple[RoadObject, ...]:
    out = []
    for obj in road_elem.findall("objects/object"):
        outline = obj.find("outline")
        if outline is None:
            outline = obj.find("outlines/outline")
        corners_local = outline.findall("cornerLocal") if outline is not None else []
        corners_road = outline.findall("cornerRoad") if outline is not None else []
        out.append(
            RoadObject(
                id=obj.get("id", ""),
                road_id=road_id,
                type=obj.get("type", "none"),
                name=obj.get("name", ""),
                s_m=ctx.num(obj, "s", 0.0),
                t_m=ctx.num(obj, "t", 0.0),
                hdg_rad=ctx.num(obj, "hdg", 0.0),
                length_m=ctx.num(obj, "length", 0.0),
                width_m=ctx.num(obj, "width", 0.0),
                radius_m=ctx.num(obj, "radius", 0.0),
                outline_local=tuple((ctx.num(c, "u"), ctx.num(c, "v")) for c in corners_local),
                outline_road=tuple((ctx.num(c, "s"), ctx.num(c, "t")) for c in corners_road),
            )
        )
    return tuple(out)


def _speeds(ctx: _Ctx, road_elem: ET.Element) -> tuple[tuple[float, float], ...]:
    out = []
    for rtype in road_elem.findall("type"):
        speed = rtype.find("speed")
        if speed is None or speed.get("max", "").strip().lower() in ("", "no limit", "undefined"):
            continue
        factor = _SPEED_UNITS_TO_MPS.get(speed.get("unit", "m/s").strip(), 1.0)
        out.append((ctx.num(rtype, "s", 0.0), ctx.num(speed, "max") * factor))
    return tuple(out)


def _by_s(record: PolyRecord) -> float:
    return record.s_m


def _road(ctx: _Ctx, elem: ET.Element) -> Road:
    road_id = ctx.int_id(elem)
    ctx.where = f"road {road_id}"
    geometries = [_geometry(ctx, g) for g in elem.findall("planView/geometry")]
    geometries = sorted((g for g in geometries if g is not None), key=lambda g: g.s_m)
    if not geometries:
        raise ctx.fail("road has no <planView> geometry")
    length = ctx.num(elem, "length", geometries[-1].s_m + geometries[-1].length_m)
    lanes_elem = elem.find("lanes")
    offsets = sorted((_poly(ctx, o, "s") for o in elem.findall("lanes/laneOffset")), key=_by_s)
    elevations = sorted((_poly(ctx, e, "s") for e in elem.findall("elevationProfile/elevation")), key=_by_s)
    link = elem.find("link")
    road = Road(
        id=road_id,
        name=elem.get("name", ""),
        length_m=length,
        junction_id=ctx.int_id(elem, "junction", -1),
        rule=elem.get("rule", "RHT").upper(),
        geometries=tuple(geometries),
        elevations=tuple(elevations),
        lane_offsets=tuple(offsets),
        sections=_sections(ctx, lanes_elem, length),
        speeds=_speeds(ctx, elem),
        signals=_signals(ctx, elem, road_id),
        objects=_objects(ctx, elem, road_id),
        predecessor=_link(ctx, link.find("predecessor")) if link is not None else None,
        successor=_link(ctx, link.find("successor")) if link is not None else None,
    )
    ctx.where = ""
    return road


def read_opendrive(xodr_text: str, *, source: str = "<OpenDRIVE text>") -> OpenDrive:
    """Parse an OpenDRIVE document.

    Raises :class:`sim.errors.MapError` naming ``source`` (and the road, where one
    is at fault) when the text is not XML, not OpenDRIVE, has no roads, or has a
    record with a missing or non-numeric attribute.
    """
    ctx = _Ctx(source)
    try:
        root = ET.fromstring(xodr_text)
    except ET.ParseError as exc:
        raise ctx.fail(f"not valid XML ({exc})") from None
    if root.tag != "OpenDRIVE":
        raise ctx.fail(f"not an OpenDRIVE file (root element is <{root.tag}>)")
    roads: dict[int, Road] = {}
    for elem in root.findall("road"):
        road = _road(ctx, elem)
        if road.id in roads:
            raise ctx.fail(f"road id {road.id} appears twice")
        roads[road.id] = road
    if not roads:
        raise ctx.fail("the OpenDRIVE file has no <road>")
    junctions = tuple(sorted(ctx.int_id(j) for j in root.findall("junction")))
    return OpenDrive(source=source, roads=roads, junction_ids=junctions)


def read_opendrive_file(path: str | Path) -> OpenDrive:
    """:func:`read_opendrive` on a file; a missing or unreadable file is a MapError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MapError(f"{path}: no such OpenDRIVE file") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise MapError(f"{path}: cannot read the OpenDRIVE file ({exc.__class__.__name__})") from None
    return read_opendrive(text, source=str(path))


# -- evaluation ---------------------------------------------------------------------


def _piecewise(records: tuple[PolyRecord, ...], s: np.ndarray, origin=0.0, *, before=None, select=None):
    """Evaluate cubic records at ``s`` (records' ``s_m`` relative to ``origin``).

    The record is chosen at ``select`` (default ``s``): a lane section's last sample
    selects just before the section end, so a record starting exactly there (a
    ``laneOffset`` jump) applies to the next section only. Points before the first
    record take ``before`` when given, else the first record.
    """
    if not records:
        return np.zeros_like(s)
    starts = np.array([r.s_m for r in records]) + origin
    coeff = np.array([(r.a, r.b, r.c, r.d) for r in records])
    idx = np.searchsorted(starts, (s if select is None else select) + 1e-9, side="right") - 1
    first = idx < 0
    idx = np.clip(idx, 0, len(records) - 1)
    ds = s - starts[idx]
    a, b, c, d = coeff[idx].T
    out = a + ds * (b + ds * (c + ds * d))
    if before is not None:
        out = np.where(first, before, out)
    return out


def reference_line(road: Road, s_m: np.ndarray, select=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, heading) of the road's reference line at ``s_m``, in the **OpenDRIVE** frame.

    The geometry record is chosen at ``select`` (default ``s_m``), as in :func:`_piecewise`.
    """
    s = np.asarray(s_m, dtype=float)
    starts = np.array([g.s_m for g in road.geometries])
    pick = s if select is None else np.asarray(select, dtype=float)
    idx = np.clip(np.searchsorted(starts, pick, side="right") - 1, 0, len(starts) - 1)
    x, y, h = np.empty_like(s), np.empty_like(s), np.empty_like(s)
    for i in np.unique(idx):
        mask = idx == i
        g = road.geometries[i]
        x[mask], y[mask], h[mask] = g.evaluate(s[mask] - g.s_m)
    return x, y, h


def road_to_world(road: Road, s_m: np.ndarray, t_m: np.ndarray) -> np.ndarray:
    """World (x, y) in **CARLA's frame** of road coordinates (s, t), shape (N, 2)."""
    s = np.atleast_1d(np.asarray(s_m, dtype=float))
    t = np.broadcast_to(np.asarray(t_m, dtype=float), s.shape)
    x, y, h = reference_line(road, s)
    return np.stack([x - t * np.sin(h), -(y + t * np.cos(h))], axis=1)


def object_outline_xy(road: Road, obj: RoadObject) -> np.ndarray:
    """The object's outline as a world polygon (K, 2) in CARLA's frame.

    ``cornerRoad`` outlines map through (s, t); ``cornerLocal`` ones through the
    object's frame (origin at (s, t), u axis at the road heading plus ``hdg``, v to
    its left). Without an outline: the ``length`` x ``width`` box centred on the
    object, or a 16-gon for ``radius``; an empty array when the object has no extent.
    """
    if obj.outline_road:
        st = np.array(obj.outline_road)
        return road_to_world(road, st[:, 0], st[:, 1])
    if obj.outline_local:
        uv = np.array(obj.outline_local)
    elif obj.length_m > 0 and obj.width_m > 0:
        hl, hw = 0.5 * obj.length_m, 0.5 * obj.width_m
        uv = np.array([(hl, hw), (hl, -hw), (-hl, -hw), (-hl, hw)])
    elif obj.radius_m > 0:
        a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        uv = obj.radius_m * np.stack([np.cos(a), np.sin(a)], axis=1)
    else:
        return np.zeros((0, 2))
    x, y, h = reference_line(road, np.array([obj.s_m]))
    ox, oy = x[0] - obj.t_m * math.sin(h[0]), y[0] + obj.t_m * math.cos(h[0])
    ang = h[0] + obj.hdg_rad
    ca, sa = math.cos(ang), math.sin(ang)
    px = ox + uv[:, 0] * ca - uv[:, 1] * sa
    py = oy + uv[:, 0] * sa + uv[:, 1] * ca
    return np.stack([px, -py], axis=1)


# -- sampling -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LaneStrip:
    """One lane of one lane section, sampled along the road.

    All arrays have one row per sample, in increasing road ``s`` (which is against the
    driving direction for right-hand-traffic left lanes). Positions are in CARLA's
    world frame. ``inner_xy_m`` is the border nearer the road's centre lane,
    ``outer_xy_m`` the farther one (the border the lane's road marks sit on).
    ``t_dir_xy`` is the unit world vector of increasing OpenDRIVE ``t`` (the
    reference line's left), along which road-mark lines are offset. The road's
    centre lane comes as a zero-width strip with ``lane_id`` 0, carrying the centre
    marks. ``mark_index`` points into ``road_marks`` (-1: no record); ``mark_type``,
    ``mark_color`` and ``mark_width_m`` (NaN where the file gives none) are that
    record's, per sample.
    """

    road_id: int
    section_index: int
    lane_id: int
    lane_type: str
    junction_id: int
    s_m: np.ndarray
    centre_xy_m: np.ndarray
    inner_xy_m: np.ndarray
    outer_xy_m: np.ndarray
    width_m: np.ndarray
    z_m: np.ndarray
    yaw_rad: np.ndarray
    t_dir_xy: np.ndarray
    mark_index: np.ndarray
    mark_type: np.ndarray
    mark_color: np.ndarray
    mark_width_m: np.ndarray
    road_marks: tuple[RoadMark, ...]

    @property
    def key(self) -> LaneKey:
        return LaneKey(self.road_id, self.section_index, self.lane_id)

    @property
    def in_junction(self) -> bool:
        return self.junction_id >= 0


_LEFT_LIMIT_M = 1e-6  # a record start is sampled twice: just before it, and at it


def _section_samples(road: Road, sec: LaneSection, step_m: float) -> np.ndarray:
    """Even samples plus every record start inside the section, each with its left limit.

    A file may jump at a record start (a width or heading that does not continue); the
    pair of samples ``s - 1e-6`` and ``s`` keeps both sides of the jump in the polylines.
    """
    s0, s1 = sec.s_m, min(sec.end_s_m, road.length_m)
    if s1 <= s0:
        return np.array([s0, s0])
    n = max(1, int(math.ceil((s1 - s0) / step_m - 1e-9)))
    s = np.linspace(s0, s1, n + 1)
    starts = [g.s_m for g in road.geometries] + [r.s_m for r in road.lane_offsets]
    for lane in sec.lanes:
        starts += [sec.s_m + r.s_m for r in (*lane.widths, *lane.borders)]
        starts += [sec.s_m + m.s_offset_m for m in lane.road_marks]
    inner = np.array([v for v in starts if s0 + 2 * _LEFT_LIMIT_M < v < s1 - _LEFT_LIMIT_M])
    if len(inner):
        s = np.unique(np.concatenate([s, inner, inner - _LEFT_LIMIT_M]))
    return s


def _lane_borders(sec: LaneSection, s: np.ndarray, offset: np.ndarray, select) -> dict[int, tuple]:
    """(inner t, outer t) per lane id; widths accumulate outwards from the centre lane."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {0: (offset, offset)}
    for side in (1, -1):
        t = offset
        for lane in sorted((ln for ln in sec.lanes if ln.id * side > 0), key=lambda ln: abs(ln.id)):
            if lane.widths or not lane.borders:
                outer = t + side * _piecewise(lane.widths, s, sec.s_m, select=select)
            else:  # border records: |t| of the outer border from the centre lane
                outer = offset + side * _piecewise(lane.borders, s, sec.s_m, select=select)
            out[lane.id] = (t, outer)
            t = outer
    return out


def _mark_arrays(lane: LaneRecord, s_rel: np.ndarray):
    marks = lane.road_marks
    n = len(s_rel)
    if not marks:
        return np.full(n, -1, np.int16), np.zeros(n, np.int8), np.zeros(n, np.int8), np.full(n, np.nan)
    starts = np.array([m.s_offset_m for m in marks])
    idx = (np.searchsorted(starts, s_rel + 1e-9, side="right") - 1).astype(np.int16)
    lut_type = np.array([m.type for m in marks] + [MarkType.NONE], np.int8)
    lut_color = np.array([m.color for m in marks] + [MarkColor.STANDARD], np.int8)
    lut_width = np.array([m.width_m if m.width_m is not None else np.nan for m in marks] + [np.nan])
    return idx, lut_type[idx], lut_color[idx], lut_width[idx]


def _section_strips(road: Road, sec: LaneSection, step_m: float) -> list[LaneStrip]:
    s = _section_samples(road, sec, step_m)
    select = np.minimum(s, max(sec.s_m, s[-1] - _LEFT_LIMIT_M))  # the end belongs to this section
    x, y, h = reference_line(road, s, select)
    offset = _piecewise(road.lane_offsets, s, before=0.0, select=select)
    z = _piecewise(road.elevations, s, select=select)
    sin_h, cos_h = np.sin(h), np.cos(h)
    t_dir = np.stack([-sin_h, -cos_h], axis=1)  # +t (OpenDRIVE left) in CARLA's frame
    base = np.stack([x, -y], axis=1)
    yaw = -h
    borders = _lane_borders(sec, s, offset, select)
    strips = []
    for lane in sec.lanes:
        t_in, t_out = borders[lane.id]
        idx, mtype, mcolor, mwidth = _mark_arrays(lane, s - sec.s_m)
        strips.append(
            LaneStrip(
                road_id=road.id,
                section_index=sec.index,
                lane_id=lane.id,
                lane_type=lane.type,
                junction_id=road.junction_id,
                s_m=s,
                centre_xy_m=base + t_dir * (0.5 * (t_in + t_out))[:, None],
                inner_xy_m=base + t_dir * t_in[:, None],
                outer_xy_m=base + t_dir * t_out[:, None],
                width_m=np.abs(t_out - t_in),
                z_m=z,
                yaw_rad=yaw,
                t_dir_xy=t_dir,
                mark_index=idx,
                mark_type=mtype,
                mark_color=mcolor,
                mark_width_m=mwidth,
                road_marks=lane.road_marks,
            )
        )
    return strips


def sample_lanes(od: OpenDrive, step_m: float = 0.5) -> list[LaneStrip]:
    """Every lane (all types, plus each road's centre lane as a zero-width strip) as a :class:`LaneStrip`.

    Samples lie at most ``step_m`` apart along the reference line, include the ends of
    each lane section and every geometry start inside it.
    """
    if not step_m > 0:
        raise MapError(f"{od.source}: sample step must be positive, got {step_m}")
    strips: list[LaneStrip] = []
    for road in od.roads.values():
        for sec in road.sections:
            strips.extend(_section_strips(road, sec, step_m))
    return strips
