"""CARLA Leaderboard route files: read the v1 and v2 XML forms into :class:`RouteSpec`.

Both generations are plain XML with a ``<routes>`` root holding ``<route id town>``
elements (see ``shared/routes/carla_leaderboard/FORMAT.md``):

* v1 (Leaderboard 1.0): ``<waypoint x y z pitch roll yaw/>`` children, in driving
  order, and at most one ``<weather .../>``;
* v2 (Leaderboard 2.x): ``<waypoints><position x y z/></waypoints>`` (no
  orientation), ``<weathers>`` keyframes with ``route_percentage``, and inline
  ``<scenarios>``, which are skipped here.

Coordinates stay in CARLA's world frame (x forward, y right, z up, metres); angles
are converted from the file's degrees to radians in (-pi, pi] (so a v1 pitch of 360
becomes 0). Every problem with a file raises :class:`sim.errors.RouteError` with one
line naming the file (and the route, element and line where there is one) and the
reason.
"""

from __future__ import annotations

import math
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import RouteError

__all__ = ["RouteSpec", "read_route_file", "select_route"]


@dataclass(frozen=True, eq=False)
class RouteSpec:
    """One Leaderboard route: an ordered list of sparse key points on a town.

    ``keypoints_xyz_m`` is (K, 3), K >= 1, CARLA world frame. ``keypoint_yaw_rad``
    (K,) is given for v1 files (every ``<waypoint>`` has a yaw) and ``None`` for v2
    positions; ``keypoint_pitch_rad`` likewise. ``weather`` holds the weather
    keyframes along the route as ``{route_percentage: {attribute: value}}`` (a v1
    ``<weather>`` is the keyframe at 0 %), or ``None`` when the route names none.
    ``source`` is the file the route came from, ``line`` the line of its ``<route>``.
    """

    route_id: str
    town: str
    keypoints_xyz_m: np.ndarray
    keypoint_yaw_rad: np.ndarray | None
    source: str
    weather: dict | None = None
    keypoint_pitch_rad: np.ndarray | None = None
    line: int = 0
    scenario_types: tuple[str, ...] = field(default=())

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints_xyz_m.shape[0])

    def describe(self) -> str:
        """``<file> route <id>``: how errors and reports name this route."""
        return f"{self.source} route {self.route_id}"


# -- a tiny XML tree with line numbers (ElementTree keeps none) ------------------------


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_Node] = field(default_factory=list)

    def find_all(self, tag: str) -> list[_Node]:
        return [c for c in self.children if c.tag == tag]


def _parse_xml(path: Path) -> _Node:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RouteError(f"{path}: no such route file") from None
    except IsADirectoryError:
        raise RouteError(f"{path}: is a folder, not a route file") from None
    except PermissionError:
        raise RouteError(f"{path}: cannot read the route file (permission denied)") from None
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Node] = []
    roots: list[_Node] = []

    def start(tag, attrs):
        node = _Node(tag, dict(attrs), parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: stack.pop()
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        reason = xml.parsers.expat.ErrorString(exc.code)
        raise RouteError(
            f"{path}: not valid XML: {reason} at line {exc.lineno}, column {exc.offset + 1}"
        ) from None
    return roots[0]


# -- numbers and angles ----------------------------------------------------------------


def _number(value: str | None, what: str) -> float:
    """A finite float from an attribute value, or a RouteError naming ``what``."""
    if value is None:
        raise RouteError(f"{what} is missing")
    try:
        number = float(value)
    except ValueError:
        raise RouteError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise RouteError(f"{what} is not a finite number: {value!r}")
    return number


def _angle_rad(degrees: float) -> float:
    """Degrees (any range, e.g. a pitch of 360 or 372.4) to radians in (-pi, pi]."""
    return math.remainder(math.radians(degrees), 2.0 * math.pi)


# -- one route -------------------------------------------------------------------------


def _keypoint_nodes(route: _Node, rid: str) -> list[_Node]:
    v1 = route.find_all("waypoint")
    v2 = [p for group in route.find_all("waypoints") for p in group.find_all("position")]
    if v1 and v2:
        raise RouteError(f"route {rid} (line {route.line}) mixes v1 <waypoint> and v2 <waypoints> key points")
    nodes = v1 or v2
    if not nodes:
        raise RouteError(
            f"route {rid} (line {route.line}) has no key points "
            "(expected <waypoint x y z .../> or <waypoints><position x y z/></waypoints>)"
        )
    return nodes


def _keypoints(nodes: list[_Node], rid: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    xyz = np.zeros((len(nodes), 3))
    yaw = np.zeros(len(nodes))
    pitch = np.zeros(len(nodes))
    has_yaw = all("yaw" in n.attrs for n in nodes)
    has_pitch = all("pitch" in n.attrs for n in nodes)
    for i, node in enumerate(nodes):
        where = f"route {rid}: {node.tag} {i} (line {node.line}) attribute"
        xyz[i, 0] = _number(node.attrs.get("x"), f"{where} 'x'")
        xyz[i, 1] = _number(node.attrs.get("y"), f"{where} 'y'")
        xyz[i, 2] = _number(node.attrs.get("z", "0"), f"{where} 'z'")
        for name in ("yaw", "pitch", "roll"):
            if name in node.attrs:
                value = _angle_rad(_number(node.attrs[name], f"{where} '{name}'"))
                if name == "yaw":
                    yaw[i] = value
                elif name == "pitch":
                    pitch[i] = value
    return xyz, (yaw if has_yaw else None), (pitch if has_pitch else None)


def _weather_values(node: _Node, rid: str) -> dict[str, float]:
    where = f"route {rid}: weather (line {node.line}) attribute"
    return {k: _number(v, f"{where} '{k}'") for k, v in node.attrs.items() if k != "route_percentage"}


def _weather(route: _Node, rid: str) -> dict | None:
    keyframes: dict[float, dict[str, float]] = {}
    for node in route.find_all("weather"):  # v1: one plain <weather>
        keyframes[0.0] = _weather_values(node, rid)
    for group in route.find_all("weathers"):  # v2: keyframes along the route
        for node in group.find_all("weather"):
            pct = _number(
                node.attrs.get("route_percentage", "0"),
                f"route {rid}: weather (line {node.line}) attribute 'route_percentage'",
            )
            keyframes[pct] = _weather_values(node, rid)
    return dict(sorted(keyframes.items())) or None


def _route(node: _Node, index: int, source: str) -> RouteSpec:
    rid = node.attrs.get("id", "").strip()
    if not rid:
        raise RouteError(f"<route> number {index} (line {node.line}) has no id attribute")
    town = node.attrs.get("town", "").strip()
    if not town:
        raise RouteError(f"route {rid} (line {node.line}) has no town attribute")
    xyz, yaw, pitch = _keypoints(_keypoint_nodes(node, rid), rid)
    scenarios = tuple(
        s.attrs.get("type", s.attrs.get("name", ""))
        for g in node.find_all("scenarios")
        for s in g.find_all("scenario")
    )
    return RouteSpec(
        route_id=rid,
        town=town,
        keypoints_xyz_m=xyz,
        keypoint_yaw_rad=yaw,
        source=source,
        weather=_weather(node, rid),
        keypoint_pitch_rad=pitch,
        line=node.line,
        scenario_types=scenarios,
    )


def read_route_file(path: str | Path) -> list[RouteSpec]:
    """All routes of a Leaderboard route file (v1 or v2), in file order.

    Raises :class:`RouteError` with one line naming the file and the reason: a missing
    file, malformed XML (with line and column), a root other than ``<routes>``, no
    ``<route>`` at all, a route without ``id`` or ``town``, duplicate ids, a route
    without key points, or a non-numeric coordinate (naming route and attribute).
    """
    path = Path(path)
    root = _parse_xml(path)
    if root.tag != "routes":
        raise RouteError(f"{path}: not a route file: the root element is <{root.tag}>, expected <routes>")
    nodes = root.find_all("route")
    if not nodes:
        raise RouteError(f"{path}: the <routes> element holds no <route>")
    routes: list[RouteSpec] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        try:
            spec = _route(node, index, str(path))
        except RouteError as exc:
            raise RouteError(f"{path}: {exc}") from None
        if spec.route_id in seen:
            raise RouteError(
                f"{path}: route id {spec.route_id} is used twice "
                f"(lines {seen[spec.route_id]} and {spec.line})"
            )
        seen[spec.route_id] = spec.line
        routes.append(spec)
    return routes


def _describe_ids(ids: list[str]) -> str:
    """'0-49' for a contiguous run of integers, else the ids (at most 20, then a count)."""
    if ids and all(i.isdigit() for i in ids):
        numbers = sorted(int(i) for i in ids)
        if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
            return f"{numbers[0]}-{numbers[-1]}"
    shown = ", ".join(ids[:20])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")


def select_route(routes: list[RouteSpec], route_id: str | int) -> RouteSpec:
    """The route with id ``route_id``; a RouteError listing the available ids otherwise."""
    wanted = str(route_id).strip()
    for route in routes:
        if route.route_id == wanted:
            return route
    source = routes[0].source if routes else "the route file"
    ids = [r.route_id for r in routes]
    raise RouteError(f"{source}: no route with id {wanted!r} (available ids: {_describe_ids(ids) or 'none'})")
