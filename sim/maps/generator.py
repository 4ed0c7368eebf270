"""Procedural grid towns written as OpenDRIVE 1.4 text.

:func:`generate_town` turns a :class:`TownConfig` into an OpenDRIVE document that
``carla.Map`` parses offline and a CARLA server loads with
``client.generate_opendrive_world``. The same config gives the same bytes: every
random draw comes from ``numpy.random.default_rng(config.seed)``.

The network: junction nodes on a ``(blocks_x + 1) x (blocks_y + 1)`` grid, spaced
``block_length_m`` apart, with streets along the grid edges. Some inner edges are
removed to make T-junctions; the four grid corners become curved corner streets;
some straight streets bend out and come back (three arcs); some streets are one-way.
Junctions hold one connecting road per lane-to-lane movement, meeting the lane ends
exactly in position and heading: right-angle turns are line, arc, line with the widest
arc that fits; straight movements that shift sideways (where a one-way street meets a
two-way one) are cubic Hermite ``paramPoly3`` curves. Streets are lines and arcs.
Traffic lights (type 1000001) stand at every incoming arm of some 4-way junctions and
stop signs (type 206) on the stem of some T-junctions, on the right of the governed
lanes, with the OpenDRIVE ``orientation`` of those lanes and a ``validity`` record.

Lane use at a junction, per incoming road with ``n`` lanes (index 0 is the lane next
to the centre line): all lanes go straight into the same lane; when both turns exist
the left half of the lanes (``k < n/2``, rounding the middle lane in) turn left and the
right half (``k >= n/2``, rounding the middle lane in) turn right; when only one turn
exists, every lane may take it. A turning group of ``g`` lanes spreads over the ``n``
outgoing lanes in order (no two turning paths cross), so a single turning lane may
enter any lane. U-turns are never built.

Connectivity contract: the driving-lane graph is strongly connected **without lane
changes** (``LaneGraph(road_map, lane_changes=False)``), and so also with them. The
check runs on the generator's own lane-level model before any geometry is written: on
the grid once T-junctions are cut (always true there), then for every candidate one-way
street, which is kept only if the check still passes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sim.errors import ConfigError

__all__ = ["TownConfig", "generate_town"]

#: Straight length every street keeps between the two junction mouths, at least.
_MIN_STREET_M = 20.0
#: Space between the edge of a crossing street and the mouth of a junction arm.
_MOUTH_MARGIN_M = 5.0
#: Straight run at each end of a bent street, before the arcs begin.
_BEND_LEAD_M = 5.0
#: Largest radius of the arcs that round the grid corners.
_MAX_CORNER_RADIUS_M = 40.0
_MARK_WIDTH_M = 0.15

Node = tuple[int, int]
#: Grid directions in the OpenDRIVE frame (x east, y north): E, N, W, S.
_DIRS: tuple[Node, ...] = ((1, 0), (0, 1), (-1, 0), (0, -1))
_STRAIGHT, _LEFT, _UTURN, _RIGHT = 0, 1, 2, 3


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_int(name: str, value, lo: int, hi: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        expected = f"from {lo} to {hi}" if hi is not None else f"of {lo} or more"
        raise ConfigError(f"TownConfig.{name} must be an integer {expected}, got {value!r}")


def _check_real(name: str, value, lo: float, hi: float, unit: str = "") -> None:
    if not _is_real(value) or not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"TownConfig.{name} must be a number from {lo:g} to {hi:g}{unit}, got {value!r}")


@dataclass(frozen=True)
class TownConfig:
    """A procedural grid town: size, lanes, junction mix, curves, one-way streets.

    The defaults give a town about 400 m across (like CARLA's Town03) with 36
    junction nodes, a mix of 3- and 4-way junctions, some bent streets and some
    one-way streets. A fraction asks for ``round(fraction * count)`` things, and for
    at least one when it is positive; T-junctions are cut in pairs (one inner edge
    joins two nodes), and one-way streets stop short where no street can be turned
    one-way without cutting some lane off.
    """

    seed: int = field(default=0, metadata={"help": "random seed of the town (0 or more)"})
    blocks_x: int = field(default=5, metadata={"help": "blocks along x (east); junction nodes are one more"})
    blocks_y: int = field(default=5, metadata={"help": "blocks along y (north); junction nodes are one more"})
    block_length_m: float = field(default=80.0, metadata={"help": "distance between junction centres, m"})
    lanes_per_direction: int = field(default=2, metadata={"help": "driving lanes per direction (1-3)"})
    lane_width_m: float = field(default=3.5, metadata={"help": "driving-lane width, m"})
    three_way_fraction: float = field(
        default=0.3,
        metadata={"help": "share of inner 4-way junctions turned into T-junctions by removing a street, 0-1"},
    )
    curved_fraction: float = field(
        default=0.3, metadata={"help": "share of straight streets that bend out and come back, 0-1"}
    )
    one_way_fraction: float = field(
        default=0.15, metadata={"help": "share of streets made one-way (where all lanes stay reachable), 0-1"}
    )
    sidewalks: bool = field(default=True, metadata={"help": "sidewalk lanes on both sides of every street"})
    sidewalk_width_m: float = field(default=2.0, metadata={"help": "sidewalk width, m"})
    speed_limits_kmh: tuple[float, ...] = field(
        default=(30.0, 40.0, 50.0), metadata={"help": "speed limits drawn per street, km/h"}
    )
    signal_fraction: float = field(
        default=0.5,
        metadata={"help": "share of 4-way junctions with traffic lights and of T-junctions with stop signs"},
    )

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, None)
        _check_int("blocks_x", self.blocks_x, 2, 20)
        _check_int("blocks_y", self.blocks_y, 2, 20)
        _check_int("lanes_per_direction", self.lanes_per_direction, 1, 3)
        _check_real("lane_width_m", self.lane_width_m, 2.5, 5.0, " m")
        _check_real("sidewalk_width_m", self.sidewalk_width_m, 0.5, 5.0, " m")
        for name in ("three_way_fraction", "curved_fraction", "one_way_fraction", "signal_fraction"):
            _check_real(name, getattr(self, name), 0.0, 1.0)
        if not isinstance(self.sidewalks, bool):
            raise ConfigError(f"TownConfig.sidewalks must be true or false, got {self.sidewalks!r}")
        self._check_speeds()
        length = self.block_length_m
        if not _is_real(length) or not math.isfinite(length) or not 0.0 < length <= 2000.0:
            raise ConfigError(f"TownConfig.block_length_m must be positive, at most 2000 m, got {length!r}")
        if length < self.min_block_length_m:
            raise ConfigError(
                f"TownConfig.block_length_m: {self.block_length_m:g} m is too short for "
                f"{self.lanes_per_direction} lane(s) of {self.lane_width_m:g} m per direction"
                f"{' with sidewalks' if self.sidewalks else ''} "
                f"(needs at least {self.min_block_length_m:.1f} m)"
            )

    def _check_speeds(self) -> None:
        speeds = self.speed_limits_kmh
        if isinstance(speeds, list):
            object.__setattr__(self, "speed_limits_kmh", tuple(speeds))
            speeds = self.speed_limits_kmh
        if not isinstance(speeds, tuple) or not speeds:
            raise ConfigError(f"TownConfig.speed_limits_kmh must be a non-empty tuple (km/h), got {speeds!r}")
        for value in speeds:
            _check_real("speed_limits_kmh", value, 5.0, 200.0, " km/h")

    @property
    def half_width_m(self) -> float:
        """Half the width of a two-way street: its driving lanes and sidewalk on one side."""
        sidewalk = self.sidewalk_width_m if self.sidewalks else 0.0
        return self.lanes_per_direction * self.lane_width_m + sidewalk

    @property
    def mouth_m(self) -> float:
        """Distance from a junction centre to where its arms (the streets) begin."""
        return self.half_width_m + _MOUTH_MARGIN_M

    @property
    def min_block_length_m(self) -> float:
        """Shortest ``block_length_m`` that leaves ``_MIN_STREET_M`` of street between junctions."""
        return 2.0 * self.mouth_m + _MIN_STREET_M

    @classmethod
    def varied(cls, seed: int) -> TownConfig:
        """A config whose parameters (size, lanes, fractions, sidewalks, ...) are drawn from ``seed``.

        The draws use their own stream (``default_rng([seed, 1])``), separate from the
        town's own ``default_rng(seed)``.
        """
        _check_int("seed", seed, 0, None)
        rng = np.random.default_rng([seed, 1])
        lanes = int(rng.integers(1, 4))
        lane_width = round(float(rng.uniform(3.0, 3.75)), 2)
        sidewalks = bool(rng.random() < 0.7)
        sidewalk_width = round(float(rng.uniform(1.5, 3.0)), 2)
        shortest = 2.0 * (lanes * lane_width + (sidewalk_width if sidewalks else 0.0) + _MOUTH_MARGIN_M)
        shortest += _MIN_STREET_M
        block = round(float(rng.uniform(max(60.0, shortest), max(120.0, shortest + 20.0))), 1)
        pool = (30.0, 40.0, 50.0, 60.0, 70.0)
        picked = rng.choice(pool, size=int(rng.integers(1, 4)), replace=False)
        speeds = tuple(sorted(float(v) for v in picked))
        return cls(
            seed=seed,
            blocks_x=int(rng.integers(2, 6)),
            blocks_y=int(rng.integers(2, 6)),
            block_length_m=max(block, round(shortest + 0.05, 1)),
            lanes_per_direction=lanes,
            lane_width_m=lane_width,
            three_way_fraction=round(float(rng.uniform(0.0, 1.0)), 2),
            curved_fraction=round(float(rng.uniform(0.0, 0.7)), 2),
            one_way_fraction=round(float(rng.uniform(0.0, 0.5)), 2),
            sidewalks=sidewalks,
            sidewalk_width_m=sidewalk_width,
            speed_limits_kmh=speeds,
            signal_fraction=round(float(rng.uniform(0.0, 1.0)), 2),
        )


# -- the network plan: streets on grid edges, junctions on grid nodes ---------------------


@dataclass
class _Street:
    """A street between two junctions along grid nodes; the reference line runs along ``path``."""

    path: tuple[Node, ...]
    one_way: bool = False  # only right lanes (traffic along the reference line)
    bend_m: float = 0.0  # signed lateral amplitude of a bend-and-return, 0 for a straight street
    speed_kmh: float = 50.0


@dataclass(frozen=True)
class _Arm:
    """A street meeting a junction: its direction from the centre and which end touches it."""

    direction: int  # index into _DIRS
    street: int
    at_end: bool  # the street's reference line ends at this junction


def _direction(a: Node, b: Node) -> int:
    dx, dy = b[0] - a[0], b[1] - a[1]
    return _DIRS.index((int(np.sign(dx)), int(np.sign(dy))))


def _incoming(arm: _Arm, streets: list[_Street]) -> bool:
    """Whether traffic enters the junction from this arm (lanes exist toward it)."""
    return arm.at_end or not streets[arm.street].one_way


def _outgoing(arm: _Arm, streets: list[_Street]) -> bool:
    return not arm.at_end or not streets[arm.street].one_way


def _lane_side(arm: _Arm, incoming: bool) -> int:
    """0: right lanes (driving along the reference line), 1: left lanes."""
    return 0 if arm.at_end == incoming else 1


def _turn_groups(n: int, exits: dict[int, int]) -> dict[int, range]:
    """Incoming lanes (0 = next to the centre line) allowed each manoeuvre."""
    groups: dict[int, range] = {}
    if _STRAIGHT in exits:
        groups[_STRAIGHT] = range(n)
    if _LEFT in exits and _RIGHT in exits:
        groups[_LEFT] = range((n + 1) // 2)
        groups[_RIGHT] = range(n // 2, n)
    elif _LEFT in exits:
        groups[_LEFT] = range(n)
    elif _RIGHT in exits:
        groups[_RIGHT] = range(n)
    return groups


def _spread(g: int, m: int, i: int) -> range:
    """Outgoing lanes for the ``i``-th of ``g`` lanes entering ``m`` lanes, in order."""
    return range(i * m // g, -((-(i + 1) * m) // g))


def _junction_links(arms: list[_Arm], streets: list[_Street], n: int) -> list[tuple[int, int, int, int]]:
    """Lane-to-lane movements at a junction: (in arm, in lane index, out arm, out lane index)."""
    links = []
    for ai, a in enumerate(arms):
        if not _incoming(a, streets):
            continue
        exits = {}
        for bi, b in enumerate(arms):
            turn = (b.direction - a.direction - 2) % 4
            if bi != ai and turn != _UTURN and _outgoing(b, streets):
                exits[turn] = bi
        for turn, group in _turn_groups(n, exits).items():
            for i, k in enumerate(group):
                links.extend((ai, k, exits[turn], j) for j in _spread(len(group), n, i))
    return links


def _arms_by_node(streets: list[_Street]) -> dict[Node, list[_Arm]]:
    arms: dict[Node, list[_Arm]] = defaultdict(list)
    for sid, street in enumerate(streets):
        p = street.path
        arms[p[0]].append(_Arm(_direction(p[0], p[1]), sid, False))
        arms[p[-1]].append(_Arm(_direction(p[-1], p[-2]), sid, True))
    return {node: sorted(arms[node], key=lambda a: a.direction) for node in sorted(arms)}


def _lanes_connected(streets: list[_Street], n: int) -> bool:
    """Whether every driving lane reaches every other without lane changes."""
    rows, cols = [], []
    for arms in _arms_by_node(streets).values():
        for ai, k, bi, j in _junction_links(arms, streets, n):
            a, b = arms[ai], arms[bi]
            rows.append((2 * a.street + _lane_side(a, True)) * n + k)
            cols.append((2 * b.street + _lane_side(b, False)) * n + j)
    size = 2 * len(streets) * n
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="strong")
    exists = [
        (2 * s + side) * n + k
        for s, st in enumerate(streets)
        for side in (0, 1)
        for k in range(n)
        if side == 0 or not st.one_way
    ]
    return len(set(labels[exists].tolist())) == 1


def _share(fraction: float, count: int) -> int:
    """How many of ``count`` things a fraction asks for: rounded, but at least one when positive."""
    return 0 if fraction <= 0.0 or count == 0 else max(1, round(fraction * count))


def _grid_edges(cfg: TownConfig) -> set[tuple[Node, Node]]:
    edges = set()
    for i in range(cfg.blocks_x + 1):
        for j in range(cfg.blocks_y + 1):
            if i < cfg.blocks_x:
                edges.add(((i, j), (i + 1, j)))
            if j < cfg.blocks_y:
                edges.add(((i, j), (i, j + 1)))
    return edges


def _remove_edges(cfg: TownConfig, rng: np.random.Generator, edges: set[tuple[Node, Node]]) -> None:
    """Turn inner 4-way nodes into T-junctions, two at a time, by removing the edge between them."""

    def inner(p: Node) -> bool:
        return 0 < p[0] < cfg.blocks_x and 0 < p[1] < cfg.blocks_y

    target = _share(cfg.three_way_fraction, (cfg.blocks_x - 1) * (cfg.blocks_y - 1))
    candidates = sorted(e for e in edges if inner(e[0]) and inner(e[1]))
    converted: set[Node] = set()
    for index in rng.permutation(len(candidates)):
        if len(converted) >= target:
            break
        a, b = candidates[index]
        if a not in converted and b not in converted:
            edges.discard((a, b))
            converted.update((a, b))


def _trace_streets(edges: set[tuple[Node, Node]]) -> list[tuple[Node, ...]]:
    """Streets: maximal paths between junction nodes (degree 3 or 4) through degree-2 nodes."""
    adj: dict[Node, list[Node]] = defaultdict(list)
    for a, b in sorted(edges):
        adj[a].append(b)
        adj[b].append(a)
    seen: set[frozenset[Node]] = set()
    streets = []
    for start in sorted(n for n in adj if len(adj[n]) >= 3):
        for first in sorted(adj[start], key=lambda nb: _direction(start, nb)):
            if frozenset((start, first)) in seen:
                continue
            path = [start, first]
            seen.add(frozenset(path))
            while len(adj[path[-1]]) == 2:
                nxt = next(nb for nb in adj[path[-1]] if nb != path[-2])
                seen.add(frozenset((path[-1], nxt)))
                path.append(nxt)
            streets.append(tuple(path))
    return streets


def _choose_one_way(cfg: TownConfig, rng: np.random.Generator, streets: list[_Street]) -> None:
    target = _share(cfg.one_way_fraction, len(streets))
    made = 0
    for index in rng.permutation(len(streets)):
        if made >= target:
            break
        street = streets[index]
        original = street.path
        flip_first = bool(rng.random() < 0.5)
        for path in (original[::-1], original) if flip_first else (original, original[::-1]):
            street.path, street.one_way = path, True
            if _lanes_connected(streets, cfg.lanes_per_direction):
                made += 1
                break
        else:
            street.path, street.one_way = original, False


def _choose_bends(cfg: TownConfig, rng: np.random.Generator, streets: list[_Street]) -> None:
    straight = [s for s in streets if len(s.path) == 2]
    target = _share(cfg.curved_fraction, len(straight))
    length = cfg.block_length_m
    cap = 0.5 * (length - 2.0 * cfg.half_width_m - 4.0)
    for index in rng.permutation(len(straight))[:target]:
        amplitude = min(float(rng.uniform(0.06, 0.16)) * length, cap)
        straight[index].bend_m = amplitude if rng.random() < 0.5 else -amplitude


def _plan(cfg: TownConfig, rng: np.random.Generator) -> list[_Street]:
    edges = _grid_edges(cfg)
    _remove_edges(cfg, rng, edges)
    streets = [_Street(path) for path in _trace_streets(edges)]
    if not _lanes_connected(streets, cfg.lanes_per_direction):  # the grid guarantees it; fail loudly if not
        raise RuntimeError(f"generator bug: town {cfg} is not strongly connected before one-way streets")
    _choose_one_way(cfg, rng, streets)
    _choose_bends(cfg, rng, streets)
    for street in streets:
        street.speed_kmh = float(rng.choice(cfg.speed_limits_kmh))
    return streets


# -- geometry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pose:
    x: float
    y: float
    hdg: float

    def offset(self, t_m: float) -> tuple[float, float]:
        """The point ``t_m`` to the left of this pose."""
        return self.x - t_m * math.sin(self.hdg), self.y + t_m * math.cos(self.hdg)


@dataclass(frozen=True)
class _Segment:
    """One ``<geometry>`` record: a line, an arc (``curvature``) or a normalised paramPoly3."""

    start: _Pose
    length_m: float
    curvature: float = 0.0
    poly: tuple[float, ...] = ()  # aU bU cU dU aV bV cV dV


def _advance(pose: _Pose, length_m: float, curvature: float) -> _Pose:
    h0 = pose.hdg
    if abs(curvature) < 1e-12:
        return _Pose(pose.x + length_m * math.cos(h0), pose.y + length_m * math.sin(h0), h0)
    h1 = h0 + curvature * length_m
    return _Pose(
        pose.x + (math.sin(h1) - math.sin(h0)) / curvature,
        pose.y - (math.cos(h1) - math.cos(h0)) / curvature,
        h1,
    )


def _chain(start: _Pose, pieces: list[tuple[float, float]]) -> tuple[list[_Segment], _Pose]:
    segments, pose = [], start
    for length, curvature in pieces:
        if length > 1e-9:
            segments.append(_Segment(pose, length, curvature))
            pose = _advance(pose, length, curvature)
    return segments, pose


def _bend_pieces(straight_m: float, amplitude_m: float, min_radius_m: float) -> list[tuple[float, float]]:
    """A straight run that bends out by ``amplitude_m`` (left if positive) and comes back."""
    span = straight_m - 2.0 * _BEND_LEAD_M
    amp = abs(amplitude_m)
    while amp >= 1.0:
        alpha = 2.0 * math.atan(2.0 * amp / span)
        radius = span / (4.0 * math.sin(alpha))
        if radius >= min_radius_m:
            k = math.copysign(1.0 / radius, amplitude_m)
            lead = 0.5 * (straight_m - 4.0 * radius * math.sin(alpha))
            arc = radius * alpha
            return [(lead, 0.0), (arc, k), (2.0 * arc, -k), (arc, k), (lead, 0.0)]
        amp *= 0.8
    return [(straight_m, 0.0)]


def _street_geometry(street: _Street, cfg: TownConfig) -> tuple[list[_Segment], _Pose]:
    """Reference line of a street from its first junction mouth to its last."""
    length, mouth = cfg.block_length_m, cfg.mouth_m
    radius = min(0.5 * (length - mouth), _MAX_CORNER_RADIUS_M)
    path = street.path
    dirs = [_direction(a, b) for a, b in zip(path, path[1:], strict=False)]
    x0, y0 = path[0][0] * length, path[0][1] * length
    dx, dy = _DIRS[dirs[0]]
    start = _Pose(x0 + mouth * dx, y0 + mouth * dy, math.atan2(dy, dx))
    if len(dirs) == 1:
        return _chain(start, _bend_pieces(length - 2 * mouth, street.bend_m, cfg.half_width_m + 8.0))
    pieces: list[tuple[float, float]] = []
    run = length - mouth
    for prev, cur in zip(dirs, dirs[1:], strict=False):
        if prev == cur:
            run += length
            continue
        left = (cur - prev) % 4 == 1
        pieces += [(run - radius, 0.0), (0.5 * math.pi * radius, (1.0 if left else -1.0) / radius)]
        run = length - radius
    pieces.append((run - mouth, 0.0))
    return _chain(start, pieces)


def _connector_geometry(a: _Pose, b: _Pose) -> tuple[_Segment, ...]:
    """Path of a connecting lane's left border from pose ``a`` to pose ``b``.

    Right-angle turns are line, arc, line with the widest arc that fits (for the
    tightest right turn the lane centre keeps a radius of ``_MOUTH_MARGIN_M`` plus the
    sidewalk and half a lane); anything else is a cubic Hermite curve.
    """
    c, s = math.cos(a.hdg), math.sin(a.hdg)
    ex = (b.x - a.x) * c + (b.y - a.y) * s
    ey = -(b.x - a.x) * s + (b.y - a.y) * c
    phi = math.remainder(b.hdg - a.hdg, 2.0 * math.pi)
    if abs(abs(phi) - 0.5 * math.pi) < 1e-6:
        to_end = ey / math.sin(phi)  # from the tangents' crossing to b
        to_corner = ex - to_end * math.cos(phi)  # from a to the tangents' crossing
        radius = min(to_corner, to_end)
        if radius > 1.0:
            pieces = [
                (to_corner - radius, 0.0),
                (radius * abs(phi), math.copysign(1.0 / radius, phi)),
                (to_end - radius, 0.0),
            ]
            return tuple(_chain(a, pieces)[0])
    return (_hermite(a, b),)


def _hermite(a: _Pose, b: _Pose) -> _Segment:
    """A cubic Hermite curve (normalised paramPoly3) from pose ``a`` to pose ``b``."""
    c, s = math.cos(a.hdg), math.sin(a.hdg)
    ex = (b.x - a.x) * c + (b.y - a.y) * s
    ey = -(b.x - a.x) * s + (b.y - a.y) * c
    phi = math.remainder(b.hdg - a.hdg, 2.0 * math.pi)
    if abs(ey) < 1e-9 and abs(phi) < 1e-9 and ex > 0:
        return _Segment(a, ex)
    chord = math.hypot(ex, ey)
    turn = abs(phi)
    k = chord if turn < 1e-6 else chord * 2.0 * math.tan(turn / 4.0) / math.sin(turn / 2.0)
    cp, sp = math.cos(phi), math.sin(phi)
    poly = (
        0.0,
        k,
        3 * ex - 2 * k - k * cp,
        -2 * ex + k + k * cp,
        0.0,
        0.0,
        3 * ey - k * sp,
        -2 * ey + k * sp,
    )
    return _Segment(a, _poly_length(poly), poly=poly)


def _poly_length(poly: tuple[float, ...]) -> float:
    """Arc length of a normalised paramPoly3 (Gauss-Legendre, 16 points on 8 intervals)."""
    nodes, weights = np.polynomial.legendre.leggauss(16)
    edges = np.linspace(0.0, 1.0, 9)
    half = 0.5 * np.diff(edges)
    p = (edges[:-1, None] + half[:, None] * (nodes[None, :] + 1.0)).ravel()
    _, bu, cu, du, _, bv, cv, dv = poly
    du_dp = bu + 2 * cu * p + 3 * du * p * p
    dv_dp = bv + 2 * cv * p + 3 * dv * p * p
    speed = np.hypot(du_dp, dv_dp).reshape(8, 16)
    return float(np.sum(speed @ weights * half))


# -- OpenDRIVE text ---------------------------------------------------------------------------


def _num(value: float) -> str:
    """Numbers as text: 12 significant digits (sub-micrometre at town scale), no ``-0``."""
    if abs(value) < 5e-13:
        return "0"
    return f"{value:.12g}"


def _geometry_xml(segments: list[_Segment]) -> list[str]:
    out, s = ["    <planView>"], 0.0
    for seg in segments:
        p = seg.start
        head = (
            f'      <geometry s="{_num(s)}" x="{_num(p.x)}" y="{_num(p.y)}" hdg="{_num(p.hdg)}" '
            f'length="{_num(seg.length_m)}">'
        )
        if seg.poly:
            names = ("aU", "bU", "cU", "dU", "aV", "bV", "cV", "dV")
            coeffs = " ".join(f'{n}="{_num(v)}"' for n, v in zip(names, seg.poly, strict=True))
            body = f'<paramPoly3 {coeffs} pRange="normalized"/>'
        elif seg.curvature:
            body = f'<arc curvature="{_num(seg.curvature)}"/>'
        else:
            body = "<line/>"
        out.append(f"{head}{body}</geometry>")
        s += seg.length_m
    out.append("    </planView>")
    return out


def _mark(kind: str, color: str = "white", change: str = "none") -> str:
    width = "0" if kind == "none" else _num(_MARK_WIDTH_M)
    return (
        f'<roadMark sOffset="0" type="{kind}" weight="standard" color="{color}" width="{width}" '
        f'laneChange="{change}"/>'
    )


def _lane_xml(lane_id: int, kind: str, width_m: float, mark: str, link: str = "") -> str:
    return (
        f'        <lane id="{lane_id}" type="{kind}" level="false"><link>{link}</link>'
        f'<width sOffset="0" a="{_num(width_m)}" b="0" c="0" d="0"/>{mark}</lane>'
    )


def _driving_mark(index: int, n: int) -> str:
    """Outer-border mark of driving lane ``index`` (0 next to the centre line) of ``n``."""
    return _mark("broken", change="both") if index < n - 1 else _mark("solid")


def _street_lanes_xml(cfg: TownConfig, one_way: bool) -> list[str]:
    n, w, sw = cfg.lanes_per_direction, cfg.lane_width_m, cfg.sidewalk_width_m
    out = ["    <lanes>"]
    if one_way:  # only right lanes: shift the centre line left so the lanes sit on the street axis
        out.append(f'      <laneOffset s="0" a="{_num(0.5 * n * w)}" b="0" c="0" d="0"/>')
    out.append('      <laneSection s="0">')
    left = [] if one_way else [_lane_xml(k + 1, "driving", w, _driving_mark(k, n)) for k in range(n)]
    right = [_lane_xml(-(k + 1), "driving", w, _driving_mark(k, n)) for k in range(n)]
    if cfg.sidewalks:
        left.append(_lane_xml(len(left) + 1, "sidewalk", sw, _mark("none")))
        right.append(_lane_xml(-(n + 1), "sidewalk", sw, _mark("none")))
    centre = _mark("solid") if one_way else _mark("solid solid", color="yellow")
    out += ["       <left>", *reversed(left), "       </left>"]
    out += [
        "       <center>",
        f'        <lane id="0" type="none" level="false">{centre}</lane>',
        "       </center>",
    ]
    out += ["       <right>", *right, "       </right>", "      </laneSection>", "    </lanes>"]
    return out


def _road_head(
    road_id: int, name: str, length_m: float, junction: int, link: str, speed_kmh: float
) -> list[str]:
    return [
        f'  <road name="{name}" length="{_num(length_m)}" id="{road_id}" junction="{junction}">',
        f"    <link>{link}</link>",
        f'    <type s="0" type="town"><speed max="{_num(speed_kmh)}" unit="km/h"/></type>',
    ]


_ROAD_FLAT = (
    "    <elevationProfile>",
    '      <elevation s="0" a="0" b="0" c="0" d="0"/>',
    "    </elevationProfile>",
    "    <lateralProfile/>",
)


@dataclass(frozen=True)
class _Connection:
    """A connecting road inside a junction: one lane from an incoming lane to an outgoing lane."""

    road_id: int
    junction_id: int
    in_arm: _Arm
    in_lane_id: int
    out_arm: _Arm
    out_lane_id: int
    segments: tuple[_Segment, ...]
    sidewalk: bool  # the outermost right turn also carries the corner's sidewalk
    speed_kmh: float


class _TownWriter:
    """Lays out the planned streets and junctions and writes them as OpenDRIVE."""

    def __init__(self, cfg: TownConfig, streets: list[_Street], rng: np.random.Generator):
        self.cfg = cfg
        self.streets = streets
        self.geometry = [_street_geometry(s, cfg) for s in streets]
        self.arms = _arms_by_node(streets)
        self.junction_ids = {node: len(streets) + 1 + i for i, node in enumerate(self.arms)}
        self.connections: dict[Node, list[_Connection]] = {}
        next_id = len(streets) + len(self.arms) + 1
        for node, arms in self.arms.items():
            self.connections[node] = self._connect(node, arms, next_id)
            next_id += len(self.connections[node])
        self.signals: dict[int, list[str]] = defaultdict(list)
        self.controllers: dict[Node, tuple[int, list[int]]] = {}
        self._place_signals(rng, next_id)

    # -- lanes at junction mouths

    def _mouth(self, arm: _Arm) -> _Pose:
        """Pose of the street's reference line where it meets the junction."""
        segments, end = self.geometry[arm.street]
        return end if arm.at_end else segments[0].start

    def _lane_pose(self, arm: _Arm, incoming: bool, index: int) -> tuple[_Pose, int]:
        """Inner (left) border of a lane at the mouth, heading in the driving direction; lane id."""
        cfg = self.cfg
        mouth = self._mouth(arm)
        offset = 0.5 * cfg.lanes_per_direction * cfg.lane_width_m if self.streets[arm.street].one_way else 0.0
        if _lane_side(arm, incoming) == 0:
            x, y = mouth.offset(offset - index * cfg.lane_width_m)
            return _Pose(x, y, mouth.hdg), -(index + 1)
        x, y = mouth.offset(offset + index * cfg.lane_width_m)
        return _Pose(x, y, mouth.hdg + math.pi), index + 1

    def _connect(self, node: Node, arms: list[_Arm], first_id: int) -> list[_Connection]:
        n = self.cfg.lanes_per_direction
        out = []
        for ai, k, bi, j in sorted(_junction_links(arms, self.streets, n)):
            a, b = arms[ai], arms[bi]
            start, in_id = self._lane_pose(a, True, k)
            end, out_id = self._lane_pose(b, False, j)
            turn = (b.direction - a.direction - 2) % 4
            sidewalk = self.cfg.sidewalks and turn == _RIGHT and k == n - 1 and j == n - 1
            speed = min(self.streets[a.street].speed_kmh, self.streets[b.street].speed_kmh)
            out.append(
                _Connection(
                    first_id + len(out),
                    self.junction_ids[node],
                    a,
                    in_id,
                    b,
                    out_id,
                    _connector_geometry(start, end),
                    sidewalk,
                    speed,
                )
            )
        return out

    # -- signals

    def _place_signals(self, rng: np.random.Generator, next_id: int) -> None:
        """Traffic lights on every incoming arm of some 4-way junctions, stop signs on some T stems."""
        for node, arms in self.arms.items():
            draw = rng.random()
            if draw >= self.cfg.signal_fraction:
                continue
            if len(arms) == 4:
                ids = []
                for arm in arms:
                    if _incoming(arm, self.streets):
                        ids.append(next_id)
                        self._add_signal(arm, next_id, light=True)
                        next_id += 1
                self.controllers[node] = (next_id, ids)
                next_id += 1
                continue
            directions = {a.direction for a in arms}
            stem = next((a for a in arms if (a.direction + 2) % 4 not in directions), None)
            if stem is not None and _incoming(stem, self.streets):
                self._add_signal(stem, next_id, light=False)
                next_id += 1

    def _add_signal(self, arm: _Arm, signal_id: int, *, light: bool) -> None:
        cfg, street = self.cfg, self.streets[arm.street]
        n, w = cfg.lanes_per_direction, cfg.lane_width_m
        length = sum(seg.length_m for seg in self.geometry[arm.street][0])
        offset = 0.5 * n * w if street.one_way else 0.0
        edge = n * w + (0.5 * cfg.sidewalk_width_m if cfg.sidewalks else 0.5)
        if arm.at_end:  # traffic drives along the reference line: right side, orientation "+"
            s, t, orient, lanes = length - 1.0, offset - edge, "+", (-n, -1)
        else:
            s, t, orient, lanes = 1.0, offset + edge, "-", (1, n)
        kind = (
            'name="Signal_3Light_Post01" dynamic="yes" type="1000001" height="1.06" width="0.36"'
            if light
            else 'name="Stop" dynamic="no" type="206" height="0.8" width="0.8"'
        )
        self.signals[arm.street].append(
            f'      <signal s="{_num(s)}" t="{_num(t)}" id="{signal_id}" {kind} orientation="{orient}" '
            f'zOffset="2" country="OpenDRIVE" subtype="-1" value="-1" hOffset="0" pitch="0" roll="0">'
            f'<validity fromLane="{lanes[0]}" toLane="{lanes[1]}"/></signal>'
        )

    # -- text

    def _street_xml(self, sid: int) -> list[str]:
        street = self.streets[sid]
        segments, _ = self.geometry[sid]
        length = sum(seg.length_m for seg in segments)
        link = (
            f'<predecessor elementType="junction" elementId="{self.junction_ids[street.path[0]]}"/>'
            f'<successor elementType="junction" elementId="{self.junction_ids[street.path[-1]]}"/>'
        )
        out = _road_head(sid + 1, f"Street {sid + 1}", length, -1, link, street.speed_kmh)
        out += _geometry_xml(segments) + list(_ROAD_FLAT) + _street_lanes_xml(self.cfg, street.one_way)
        if self.signals.get(sid):
            out += ["    <signals>", *self.signals[sid], "    </signals>"]
        out.append("  </road>")
        return out

    def _sidewalk_id(self, arm: _Arm, incoming: bool) -> int:
        n = self.cfg.lanes_per_direction
        return -(n + 1) if _lane_side(arm, incoming) == 0 else n + 1

    def _connection_xml(self, c: _Connection) -> list[str]:
        def contact(arm: _Arm) -> str:
            return "end" if arm.at_end else "start"

        link = (
            f'<predecessor elementType="road" elementId="{c.in_arm.street + 1}" '
            f'contactPoint="{contact(c.in_arm)}"/>'
            f'<successor elementType="road" elementId="{c.out_arm.street + 1}" '
            f'contactPoint="{contact(c.out_arm)}"/>'
        )
        name = f"Connector {c.road_id}"
        length = sum(seg.length_m for seg in c.segments)
        out = _road_head(c.road_id, name, length, c.junction_id, link, c.speed_kmh)
        lane_link = f'<predecessor id="{c.in_lane_id}"/><successor id="{c.out_lane_id}"/>'
        right = [_lane_xml(-1, "driving", self.cfg.lane_width_m, _mark("none"), lane_link)]
        if c.sidewalk:
            walk_link = (
                f'<predecessor id="{self._sidewalk_id(c.in_arm, True)}"/>'
                f'<successor id="{self._sidewalk_id(c.out_arm, False)}"/>'
            )
            right.append(_lane_xml(-2, "sidewalk", self.cfg.sidewalk_width_m, _mark("none"), walk_link))
        out += _geometry_xml(list(c.segments)) + list(_ROAD_FLAT)
        out += [
            "    <lanes>",
            '      <laneSection s="0">',
            "       <center>",
            f'        <lane id="0" type="none" level="false">{_mark("none")}</lane>',
            "       </center>",
            "       <right>",
            *right,
            "       </right>",
            "      </laneSection>",
            "    </lanes>",
            "  </road>",
        ]
        return out

    def _junction_xml(self, node: Node) -> list[str]:
        jid = self.junction_ids[node]
        kind = "4way" if len(self.arms[node]) == 4 else "3way"
        out = [f'  <junction id="{jid}" name="Junction {jid} ({kind} at {node[0]},{node[1]})">']
        for i, c in enumerate(self.connections[node]):
            out.append(
                f'    <connection id="{i}" incomingRoad="{c.in_arm.street + 1}" connectingRoad="{c.road_id}" '
                f'contactPoint="start"><laneLink from="{c.in_lane_id}" to="-1"/></connection>'
            )
        if node in self.controllers:
            out.append(f'    <controller id="{self.controllers[node][0]}" type="0" sequence="0"/>')
        out.append("  </junction>")
        return out

    def _header(self) -> str:
        cfg = self.cfg
        margin = cfg.half_width_m + max((abs(s.bend_m) for s in self.streets), default=0.0) + 1.0
        east = cfg.blocks_x * cfg.block_length_m + margin
        north = cfg.blocks_y * cfg.block_length_m + margin
        return (
            f'  <header revMajor="1" revMinor="4" name="loopdrive_town_{cfg.seed}" version="1" '
            f'north="{_num(north)}" south="{_num(-margin)}" east="{_num(east)}" west="{_num(-margin)}" '
            f'vendor="loopdrive">\n'
            "    <geoReference><![CDATA[+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +datum=WGS84 "
            "+units=m +no_defs]]></geoReference>\n  </header>"
        )

    def xml(self) -> str:
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<OpenDRIVE>", self._header()]
        for sid in range(len(self.streets)):
            lines += self._street_xml(sid)
        for conns in self.connections.values():
            for c in conns:
                lines += self._connection_xml(c)
        for node in self.arms:
            lines += self._junction_xml(node)
        for node, (cid, ids) in self.controllers.items():
            name = f"Controller {self.junction_ids[node]}"
            lines.append(f'  <controller id="{cid}" name="{name}" sequence="0">')
            lines += [f'    <control signalId="{sid}" type="0"/>' for sid in ids]
            lines.append("  </controller>")
        lines.append("</OpenDRIVE>")
        return "\n".join(lines) + "\n"


def generate_town(config: TownConfig) -> str:
    """OpenDRIVE 1.4 text of the town ``config`` describes; the same config gives the same bytes.

    Raises :class:`sim.errors.ConfigError` (from ``TownConfig``) for bad parameters only;
    every valid config gives a map that ``carla.Map`` parses, whose driving-lane graph
    is strongly connected without lane changes, and whose lane joins meet exactly.
    """
    if not isinstance(config, TownConfig):
        raise ConfigError(f"generate_town needs a TownConfig, got {type(config).__name__}")
    rng = np.random.default_rng(config.seed)
    streets = _plan(config, rng)
    return _TownWriter(config, streets, rng).xml()
