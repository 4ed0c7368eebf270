"""Route planning on the driving-lane graph: a dense route with a command per point.

:class:`RoutePlanner` searches the :class:`sim.maps.lanegraph.LaneGraph` of a
:class:`sim.maps.roadmap.RoadMap` for the shortest drive between positions and
returns a :class:`DenseRoute`: a point every ``spacing_m`` along lane centre lines,
with its heading, the lane it lies on and a CARLA-Leaderboard :class:`RoadOption`.

The search graph (``RoutePlanner.search_graph``, a ``networkx.DiGraph``) has three
nodes per lane: ``("in", lane)`` (entered at its start from a predecessor),
``("chg", lane)`` (reached by a lane change) and ``("out", lane)`` (left at its
end). Edge weights are metres driven: ``in/chg -> out`` costs the lane's length,
``out -> in`` of a successor (the lane graph's follow edges) costs nothing, and a
lane change ``in/chg(A) -> chg(B)`` costs ``lane_change_penalty_m``, plus 10 m per
metre that the road ahead on B (before a junction or dead end) falls short of
``min_lane_change_length_m``: the metres of the change itself are driven along B,
whose length already counts them. A change from A to the neighbour B exists where
A's marking allows it at some point (``Lane.lane_change``), never in a junction;
the change starts at the first such point after the route enters A. (The lane
graph's own change edges need the marking to allow it along most of the lane,
which would send, e.g., Town06 road 50 lane -5, broken only along its first 35 m,
on a 700 m detour.) Start and goal are virtual nodes of each query; the search is
Dijkstra over the graph's adjacency.

Key points are projected onto the lanes within ``candidate_margin_m`` of the
nearest lane. For :meth:`RoutePlanner.plan` a yaw rules out lanes heading more than
90 degrees away; for key points it only prefers lanes heading its way (Leaderboard
v1 yaws sometimes point against the lane a key point lies on, and the Leaderboard
ignores them). Where a key point has several candidate lanes (overlapping
connecting lanes at a junction entry, the two lanes of a road without yaw), the
lane is chosen jointly over all key points (a Viterbi pass: the cheapest drive
through all of them), so a key point at a junction entry takes the connecting lane
that leads on to the next key point.

Geometry: a lane change moves the route from the centre of the lane it leaves to
the centre of the target lane as a lateral offset that fades out smoothly (a
half-cosine) over ``lane_change_length_m`` along the target lane. It is shortened
where the road before the goal or the next junction is shorter, and changes across
several lanes follow one another, sharing that road. The polyline is then
resampled by arc length: between two key points the points are equally spaced,
with a step in [0.5, 1.5] x ``spacing_m``, and every projected key point is a
route point (key points closer together than half a step are merged).

Commands (:class:`RoadOption`, the values of the Leaderboard's ``RoadOption``):

* ``LANEFOLLOW`` on ordinary lanes;
* ``CHANGELANELEFT`` / ``CHANGELANERIGHT`` on the points of a lane change;
* inside a junction, ``LEFT``, ``RIGHT`` or ``STRAIGHT`` from the heading change
  through the junction, integrated along the route's connecting lanes in it (so a
  U-turn counts as -180 degrees, a left turn): ``STRAIGHT`` when
  ``|change| < straight_threshold_rad`` (30 degrees by default; the
  ``GlobalRoutePlanner`` of CARLA's agents uses 35), else ``RIGHT`` for a positive
  change (CARLA's y axis points right, so yaw grows turning right) and ``LEFT`` for
  a negative one. The same command is given to the ``approach_m`` (10 m) of route
  before the junction, except to points of a lane change.

Frames and units: CARLA world frame (x forward, y right, z up), metres, radians.
Distances between key points and routes are horizontal (x, y).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import count

import networkx as nx
import numpy as np

from sim.errors import ConfigError, RouteError
from sim.maps.lanegraph import LaneGraph
from sim.maps.leaderboard import RouteSpec
from sim.maps.roadmap import Lane, LaneChange, LaneKey, RoadMap

__all__ = ["RoadOption", "DenseRoute", "PlannedRoute", "PlannerConfig", "RoutePlanner"]


class RoadOption(IntEnum):
    """The route command of a point, with the CARLA Leaderboard's ``RoadOption`` values."""

    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6


@dataclass(frozen=True)
class PlannerConfig:
    """Route planner settings: point spacing, lane changes, commands, key points."""

    spacing_m: float = field(default=1.0, metadata={"help": "distance between route points (m)"})
    lane_change_length_m: float = field(
        default=20.0, metadata={"help": "distance along the road over which a lane change moves across (m)"}
    )
    min_lane_change_length_m: float = field(
        default=8.0,
        metadata={"help": "a lane change with less road than this costs 10 m per metre short (m)"},
    )
    lane_change_penalty_m: float = field(
        default=5.0, metadata={"help": "extra cost of a lane change, in metres of driving"}
    )
    straight_threshold_rad: float = field(
        default=math.radians(30.0),
        metadata={"help": "a junction is STRAIGHT below this heading change (rad)"},
    )
    approach_m: float = field(
        default=10.0, metadata={"help": "route before a junction that gets the junction's command (m)"}
    )
    keypoint_tolerance_m: float = field(
        default=2.0, metadata={"help": "a key point counts as reached within this distance of the route (m)"}
    )
    candidate_margin_m: float = field(
        default=1.0,
        metadata={"help": "lanes this much further than the nearest are also tried for a key point (m)"},
    )

    def __post_init__(self) -> None:
        for name in ("spacing_m", "lane_change_length_m", "min_lane_change_length_m", "keypoint_tolerance_m"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"PlannerConfig.{name} must be a positive number, got {value!r}")
        for name in ("lane_change_penalty_m", "approach_m", "candidate_margin_m"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"PlannerConfig.{name} must be a number >= 0, got {value!r}")
        if self.min_lane_change_length_m > self.lane_change_length_m:
            raise ConfigError(
                f"PlannerConfig.min_lane_change_length_m ({self.min_lane_change_length_m}) must not exceed "
                f"lane_change_length_m ({self.lane_change_length_m})"
            )
        if not 0 < self.straight_threshold_rad < math.pi:
            raise ConfigError(
                "PlannerConfig.straight_threshold_rad must lie in (0, pi), "
                f"got {self.straight_threshold_rad!r}"
            )


@dataclass(frozen=True, eq=False)
class DenseRoute:
    """A route as dense points along lane centres, in driving order.

    ``xyz_m`` (N, 3) CARLA world frame; ``yaw_rad`` (N,) heading of the route at each
    point; ``command`` (N,) int8 :class:`RoadOption` values; ``lane_keys`` the lane
    each point lies on (during a lane change: the lane being left until half-way,
    then the target lane); ``s_m`` (N,) cumulative horizontal distance from the
    first point. Consecutive points are 0.5 to 1.5 x the planner's spacing apart
    (a route shorter than half the spacing has its two end points only, or one).
    """

    xyz_m: np.ndarray
    yaw_rad: np.ndarray
    command: np.ndarray
    lane_keys: tuple[LaneKey, ...]
    s_m: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.s_m)
        shapes = (self.xyz_m.shape, self.yaw_rad.shape, self.command.shape, len(self.lane_keys))
        if shapes != ((n, 3), (n,), (n,), n) or n == 0:
            raise ValueError(f"DenseRoute arrays disagree in length: {shapes} for {n} points")

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    def __len__(self) -> int:
        return len(self.s_m)

    def command_counts(self) -> dict[str, int]:
        """Number of points per command name, for reports."""
        values, counts = np.unique(self.command, return_counts=True)
        return {RoadOption(int(v)).name: int(c) for v, c in zip(values, counts, strict=True)}


@dataclass(frozen=True, eq=False)
class PlannedRoute:
    """A route planned through key points.

    ``keypoint_distances_m`` (K,): horizontal distance from each key point to the
    nearest route point; ``keypoint_indices`` (K,): the route point where the route
    passes the key point (its projection onto the lane; for a key point merged with
    one less than half a step away, the nearest point); ``reached_all``: every
    distance within the planner's ``keypoint_tolerance_m`` (2 m); ``warnings``: one
    line per key point further than that from every driving lane.
    ``plan_time_s``: the wall time the planning took.
    """

    route: DenseRoute
    keypoint_distances_m: np.ndarray
    keypoint_indices: np.ndarray
    reached_all: bool
    warnings: list[str]
    plan_time_s: float = 0.0


# -- internal records --------------------------------------------------------------------

_LEFT, _RIGHT = 1, 2  # lane-change sides
_SIDE_FLAG = {_LEFT: int(LaneChange.LEFT), _RIGHT: int(LaneChange.RIGHT)}
_CHANGE_COMMAND = {_LEFT: RoadOption.CHANGELANELEFT, _RIGHT: RoadOption.CHANGELANERIGHT}
_CANDIDATE_WEIGHT = 10.0  # metres of driving that one metre of projection distance is worth
_HEADING_MISMATCH_M = 20.0  # metres of driving that a lane against the key point's yaw is worth
_SHORT_CHANGE_COST = 10.0  # metres of driving per metre a lane change falls short of the minimum
_MAX_CANDIDATES = 4
_FORWARD_EPS_M = 1e-3
_SAME_POINT_M = 0.01  # vertices closer than this are one point (lane joins)


@dataclass(frozen=True)
class _Candidate:
    """A key point projected onto one lane."""

    key: LaneKey
    s_m: float
    distance_m: float
    heading_ok: bool


@dataclass(frozen=True)
class _Step:
    """A lane change made from the start point: onto ``key``, beginning abreast of ``s_m``."""

    key: LaneKey
    side: int
    s_m: float


@dataclass(frozen=True)
class _Start:
    """A way to leave a start candidate: a search node, its cost, the lane changes on the way."""

    node: tuple
    cost: float
    chain: tuple[_Step, ...]
    base: float  # penalties of the chain, without the last change's shortness
    s_start: float  # the start point's position along the node's lane


@dataclass
class _Leg:
    """Lanes driven one after the other, entered by a lane change (``change_in``) or not."""

    keys: list[LaneKey]
    change_in: int = 0


@dataclass
class _Polyline:
    """The centre line of a leg's lanes; ``u`` is the horizontal distance along it."""

    xyz: np.ndarray  # (M, 3)
    yaw: np.ndarray  # (M,), unwrapped
    u: np.ndarray  # (M,)
    owner: np.ndarray  # (M,) index of the vertex's lane in the leg
    lane_s: np.ndarray  # (M,) the vertex's distance along its own lane


@dataclass
class _Raw:
    """Route geometry with per-vertex labels (lane, lane-change side), before resampling."""

    xyz: list[np.ndarray] = field(default_factory=list)
    keys: list[LaneKey] = field(default_factory=list)
    change: list[int] = field(default_factory=list)

    def add(self, xyz, keys: Sequence[LaneKey], change: Sequence[int]) -> None:
        self.xyz.extend(xyz)
        self.keys.extend(keys)
        self.change.extend(change)


def _wrap(angle: float) -> float:
    return math.remainder(angle, 2.0 * math.pi)


def _cumulative(xy: np.ndarray) -> np.ndarray:
    """Cumulative horizontal distance along a polyline, starting at 0."""
    if len(xy) == 0:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def _blend(t: np.ndarray) -> np.ndarray:
    """0 -> 1 half-cosine over t in [0, 1]: a lane change that starts and ends gently."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def _forward_only(xyz: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Indices of the vertices that advance from the last kept one, along its heading
    or along their own.

    Lane joins in some maps overlap (a successor starting a little behind its
    predecessor's end, both heading the same way); dropping the vertices that step
    back in both frames keeps the route from folding on itself, while a sharp kink
    between lanes (a vertex ahead along its own heading) is kept.
    """
    if len(xyz) > 1:
        step = np.diff(xyz[:, :2], axis=0)
        advance = step[:, 0] * np.cos(yaw[:-1]) + step[:, 1] * np.sin(yaw[:-1])
        if np.all(advance > _FORWARD_EPS_M):
            return np.arange(len(xyz))
    keep = [0]
    for i in range(1, len(xyz)):
        last = keep[-1]
        dx, dy = xyz[i, 0] - xyz[last, 0], xyz[i, 1] - xyz[last, 1]
        ahead = max(
            dx * math.cos(yaw[last]) + dy * math.sin(yaw[last]), dx * math.cos(yaw[i]) + dy * math.sin(yaw[i])
        )
        if ahead > _FORWARD_EPS_M:
            keep.append(i)
    return np.asarray(keep)


class RoutePlanner:
    """Shortest routes on a :class:`RoadMap`'s lane graph, as :class:`DenseRoute`.

    ``config`` gives every setting; ``spacing_m`` and ``lane_change_length_m``, when
    given, replace the config's values. Building one takes tens of milliseconds on a
    CARLA town (plus the map's point index, once); it keeps no state between queries,
    only caches of the map, so one planner serves any number of them.
    """

    def __init__(
        self,
        road_map: RoadMap,
        *,
        spacing_m: float | None = None,
        lane_change_length_m: float | None = None,
        config: PlannerConfig | None = None,
    ):
        config = config or PlannerConfig()
        overrides: dict[str, float] = {}
        if spacing_m is not None:
            overrides["spacing_m"] = spacing_m
        if lane_change_length_m is not None:
            overrides["lane_change_length_m"] = lane_change_length_m
            overrides["min_lane_change_length_m"] = min(config.min_lane_change_length_m, lane_change_length_m)
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self.road_map = road_map
        self.lane_graph = LaneGraph(road_map, lane_changes=False)
        self._lanes = road_map.lanes
        _ = road_map._kdtree  # build the map's point index now, not in the first query
        self._allowed: dict[tuple[LaneKey, int], np.ndarray] = {}
        self._run_m: dict[LaneKey, float] = {}
        self.search_graph = self._build_search_graph()
        self._adj: dict[tuple, list[tuple[tuple, float]]] = {
            u: [(v, float(d["w"])) for v, d in nbrs.items()] for u, nbrs in self.search_graph.adjacency()
        }

    # -- lane changes ----------------------------------------------------------------------

    def _neighbour(self, key: LaneKey, side: int) -> LaneKey | None:
        lane = self._lanes[key]
        if lane.in_junction:
            return None  # never change lanes inside a junction
        nb = lane.left if side == _LEFT else lane.right
        return nb if nb in self._lanes else None

    def _allowed_s(self, key: LaneKey, side: int) -> np.ndarray:
        """Positions along ``key`` (its centre-line points) where its marking allows a change to ``side``."""
        if (key, side) not in self._allowed:
            lane = self._lanes[key]
            self._allowed[(key, side)] = lane.s_m[(lane.lane_change.astype(int) & _SIDE_FLAG[side]) != 0]
        return self._allowed[(key, side)]

    def _first_allowed(self, key: LaneKey, side: int, s_from: float) -> float | None:
        allowed = self._allowed_s(key, side)
        i = int(np.searchsorted(allowed, s_from - 1e-6))
        return float(max(allowed[i], s_from)) if i < len(allowed) else None

    def _abreast(self, key: LaneKey, s_m: float, other: LaneKey) -> float:
        """Position along ``other`` abreast of distance ``s_m`` along ``key``."""
        xyz, _ = self._lanes[key].point_at(s_m)
        return self._project_on_lane(self._lanes[other], xyz[0], xyz[1])[0]

    def _free_run_m(self, key: LaneKey, depth: int = 0) -> float:
        """Road ahead from the start of ``key`` before a junction or dead end, capped at a change length."""
        cap = self.config.lane_change_length_m
        if key in self._run_m:
            return self._run_m[key]
        lane = self._lanes[key]
        if lane.in_junction:
            return 0.0
        self._run_m[key] = cap  # guards ring roads without junctions
        ahead = 0.0
        if depth < 200 and lane.length_m < cap:
            ahead = min((self._free_run_m(s, depth + 1) for s in lane.successors), default=0.0)
        self._run_m[key] = min(cap, lane.length_m + ahead)
        return self._run_m[key]

    def _run_after(self, key: LaneKey) -> float:
        return min((self._free_run_m(s) for s in self._lanes[key].successors), default=0.0)

    def _room(self, key: LaneKey, s_m: float) -> float:
        """Road ahead of ``s_m`` along ``key`` before a junction or dead end, capped."""
        return min(self.config.lane_change_length_m, self._lanes[key].length_m - s_m + self._run_after(key))

    def _short_cost(self, room_m: float) -> float:
        return _SHORT_CHANGE_COST * max(0.0, self.config.min_lane_change_length_m - room_m)

    def _change_side(self, from_key: LaneKey, to_key: LaneKey) -> int:
        return _LEFT if self._lanes[from_key].left == to_key else _RIGHT

    # -- the search graph ----------------------------------------------------------------

    def _build_search_graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for key, lane in self._lanes.items():
            g.add_edge(("in", key), ("out", key), w=lane.length_m)
            g.add_edge(("chg", key), ("out", key), w=lane.length_m)
        for a, b in self.lane_graph.graph.edges():
            g.add_edge(("out", a), ("in", b), w=0.0)
        for key in self._lanes:
            for side in (_LEFT, _RIGHT):
                nb = self._neighbour(key, side)
                s_c = None if nb is None else self._first_allowed(key, side, 0.0)
                if s_c is None:
                    continue
                w = self.config.lane_change_penalty_m + self._short_cost(
                    self._room(nb, self._abreast(key, s_c, nb))
                )
                g.add_edge(("in", key), ("chg", nb), w=w, side=side)
                g.add_edge(("chg", key), ("chg", nb), w=w, side=side)
        return g

    # -- projection ------------------------------------------------------------------------

    @staticmethod
    def _project_on_lane(lane: Lane, x: float, y: float) -> tuple[float, float, int]:
        """(s along the lane, horizontal distance, nearest vertex) of (x, y) on ``lane``."""
        pts = lane.xyz_m[:, :2]
        if len(pts) == 1:
            return 0.0, math.hypot(x - pts[0, 0], y - pts[0, 1]), 0
        p0, d = pts[:-1], np.diff(pts, axis=0)
        ll = np.einsum("ij,ij->i", d, d)
        t = np.clip(np.einsum("ij,ij->i", np.array([x, y]) - p0, d) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
        foot = p0 + t[:, None] * d
        dist = np.hypot(foot[:, 0] - x, foot[:, 1] - y)
        i = int(np.argmin(dist))
        return float(lane.s_m[i] + t[i] * math.sqrt(ll[i])), float(dist[i]), i + int(t[i] >= 0.5)

    def _candidates(self, x: float, y: float, yaw_rad: float | None, *, strict: bool) -> list[_Candidate]:
        """Lanes a position may lie on: those within ``candidate_margin_m`` of the nearest.

        With ``strict`` and a yaw, lanes heading more than 90 degrees away from it are
        left out whenever one that heads that way is among the 64 nearest lane points;
        otherwise the yaw only orders the candidates (matching heading first).
        """
        rm = self.road_map
        _, owner, _ = rm._points
        _, idx = rm._kdtree.query((x, y), k=min(64, len(owner)))
        found: dict[LaneKey, _Candidate] = {}
        for i in np.atleast_1d(idx):
            key = rm._keys[owner[i]]
            if key in found:
                continue
            lane = self._lanes[key]
            s, dist, j = self._project_on_lane(lane, x, y)
            ok = yaw_rad is None or abs(_wrap(lane.yaw_rad[j] - yaw_rad)) <= math.pi / 2
            found[key] = _Candidate(key, s, dist, ok)
        cands = sorted(found.values(), key=lambda c: c.distance_m)
        if strict and any(c.heading_ok for c in cands):
            cands = [c for c in cands if c.heading_ok]
        limit = cands[0].distance_m + self.config.candidate_margin_m
        near = [c for c in cands if c.distance_m <= limit]
        return sorted(near, key=lambda c: (not c.heading_ok, c.distance_m))[:_MAX_CANDIDATES]

    @staticmethod
    def _candidate_cost(cand: _Candidate) -> float:
        return _CANDIDATE_WEIGHT * cand.distance_m + (0.0 if cand.heading_ok else _HEADING_MISMATCH_M)

    # -- search ------------------------------------------------------------------------------

    def _starts(self, cand: _Candidate, xy: np.ndarray) -> list[_Start]:
        """Ways to leave a start: to the end of its lane, or first across lane changes.

        The start may change lanes where its marking allows, at or after the start
        point, one lane after the other.
        """
        lane = self._lanes[cand.key]
        out = [_Start(("out", cand.key), lane.length_m - cand.s_m, (), 0.0, cand.s_m)]
        frontier = [(cand.key, cand.s_m, (), 0.0)]
        seen = {cand.key}
        while frontier:
            key, s_here, chain, base = frontier.pop()
            for side in (_LEFT, _RIGHT):
                nb = self._neighbour(key, side)
                s_c = None if nb is None or nb in seen else self._first_allowed(key, side, s_here)
                if s_c is None:
                    continue
                seen.add(nb)
                step = _Step(nb, side, self._abreast(key, s_c, nb))
                new_base = base + self.config.lane_change_penalty_m
                s_start = self._project_on_lane(self._lanes[nb], float(xy[0]), float(xy[1]))[0]
                cost = (
                    new_base + self._short_cost(self._room(nb, step.s_m)) + self._lanes[nb].length_m - s_start
                )
                out.append(_Start(("out", nb), cost, (*chain, step), new_base, s_start))
                frontier.append((nb, step.s_m, (*chain, step), cost - self._lanes[nb].length_m + s_start))
        return out

    def _direct_cost(self, start: _Start, goal: _Candidate) -> float | None:
        """Cost of reaching ``goal`` on the lane a start leaves from, when it lies ahead."""
        if start.node[1] != goal.key:
            return None
        if not start.chain:
            return goal.s_m - start.s_start if goal.s_m >= start.s_start - 1e-6 else None
        s_change = start.chain[-1].s_m
        if goal.s_m < s_change:
            return None
        return start.base + self._short_cost(goal.s_m - s_change) + goal.s_m - start.s_start

    def _goal_edges(self, goals: list[_Candidate]) -> dict[tuple, list[tuple[tuple, float]]]:
        edges: dict[tuple, list[tuple[tuple, float]]] = {}
        for j, goal in enumerate(goals):
            edges.setdefault(("in", goal.key), []).append((("kp", j), goal.s_m))
            edges.setdefault(("chg", goal.key), []).append((("kp", j), goal.s_m + self._short_cost(goal.s_m)))
        return edges

    def _search(self, sources: list[tuple[float, _Candidate, np.ndarray]], goals: list[_Candidate]):
        """Dijkstra from several starts (each with its cost so far) to every goal candidate.

        Returns (cost, predecessor) maps; goal j is the node ``("kp", j)``, and a
        start's predecessor entry is ``("src", source index, lane-change chain)``.
        """
        best: dict = {}
        pred: dict = {}
        heap: list = []
        tie = count()

        def push(node, cost, via):
            if cost < best.get(node, math.inf):
                best[node] = cost
                pred[node] = via
                heapq.heappush(heap, (cost, next(tie), node))

        for i, (base, cand, xy) in enumerate(sources):
            for start in self._starts(cand, xy):
                push(start.node, base + start.cost, ("src", i, start.chain))
                for j, goal in enumerate(goals):
                    direct = self._direct_cost(start, goal)
                    if direct is not None:
                        push(("kp", j), base + direct, ("src", i, start.chain))
        goal_edges = self._goal_edges(goals)
        done: dict = {}
        remaining = {("kp", j) for j in range(len(goals))}
        while heap and remaining:
            cost, _, node = heapq.heappop(heap)
            if node in done:
                continue
            done[node] = cost
            remaining.discard(node)
            for nxt, w in (*self._adj.get(node, ()), *goal_edges.get(node, ())):
                push(nxt, cost + w, node)
        return done, pred

    @staticmethod
    def _backtrack(pred: dict, goal_node: tuple) -> tuple[int, tuple, list[tuple]]:
        """(source index, the start's lane-change chain, search nodes up to the goal)."""
        nodes = []
        node = goal_node
        while node[0] != "src":
            nodes.append(node)
            node = pred[node]
        nodes.reverse()
        return node[1], node[2], nodes

    def _viterbi(self, xyz: np.ndarray, layers: list[list[_Candidate]], unreachable):
        """The cheapest candidate per key point, and the (chain, nodes) search path into each."""
        costs = [self._candidate_cost(c) for c in layers[0]]
        back: list[list] = []
        for k in range(1, len(layers)):
            index = [i for i, c in enumerate(costs) if math.isfinite(c)]
            sources = [(costs[i], layers[k - 1][i], xyz[k - 1, :2]) for i in index]
            done, pred = self._search(sources, layers[k])
            costs, links = [], []
            for j, cand in enumerate(layers[k]):
                if ("kp", j) not in done:
                    costs.append(math.inf)
                    links.append(None)
                    continue
                src, chain, nodes = self._backtrack(pred, ("kp", j))
                costs.append(done[("kp", j)] + self._candidate_cost(cand))
                links.append((index[src], chain, nodes))
            if not any(math.isfinite(c) for c in costs):
                raise RouteError(unreachable(k - 1, k))
            back.append(links)
        j = int(np.argmin(costs))
        picks, paths = [j], []
        for k in range(len(layers) - 1, 0, -1):
            link = back[k - 1][j]
            paths.append(link[1:])
            j = link[0]
            picks.append(j)
        return picks[::-1], paths[::-1]

    # -- geometry of one segment ---------------------------------------------------------------

    def _to_legs(self, start: _Candidate, chain: tuple[_Step, ...], nodes: list[tuple]) -> list[_Leg]:
        legs = [_Leg([start.key])]
        legs += [_Leg([step.key], step.side) for step in chain]
        for kind, key in nodes:
            if kind == "in":
                legs[-1].keys.append(key)
            elif kind == "chg":
                legs.append(_Leg([key], self._change_side(legs[-1].keys[-1], key)))
        return legs

    def _polyline(self, keys: list[LaneKey]) -> _Polyline:
        lanes = [self._lanes[k] for k in keys]
        xyz = np.concatenate([lane.xyz_m for lane in lanes])
        yaw = np.concatenate([lane.yaw_rad for lane in lanes])
        owner = np.concatenate([np.full(len(lane.s_m), i) for i, lane in enumerate(lanes)])
        lane_s = np.concatenate([lane.s_m for lane in lanes])
        # at a join, keep the vertex of the lane that starts there, then drop any step back
        first = np.flatnonzero(
            np.concatenate([np.hypot(*np.diff(xyz[:, :2], axis=0).T) > _SAME_POINT_M, [True]])
        )
        keep = first[_forward_only(xyz[first], yaw[first])]
        xyz, yaw, owner, lane_s = xyz[keep], yaw[keep], owner[keep], lane_s[keep]
        return _Polyline(xyz, np.unwrap(yaw), _cumulative(xyz[:, :2]), owner, lane_s)

    @staticmethod
    def _u_at(poly: _Polyline, i: int, s_m: float) -> float:
        """Distance along the leg of position ``s_m`` on the leg's lane ``i``."""
        mask = poly.owner == i
        if not mask.any():  # a lane shorter than the overlap at its joins
            return float(poly.u[min(int(np.searchsorted(poly.owner, i)), len(poly.u) - 1)])
        ls, us = poly.lane_s[mask], poly.u[mask]
        u = (
            us[0] + s_m - ls[0]
            if s_m <= ls[0]
            else (us[-1] + s_m - ls[-1] if s_m >= ls[-1] else np.interp(s_m, ls, us))
        )
        return float(np.clip(u, 0.0, poly.u[-1]))

    @staticmethod
    def _sample(poly: _Polyline, us: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xyz = np.stack([np.interp(us, poly.u, poly.xyz[:, i]) for i in range(3)], axis=1)
        yaw = np.interp(us, poly.u, poly.yaw)
        vertex = np.clip(np.searchsorted(poly.u, us, side="right") - 1, 0, len(poly.u) - 1)
        return xyz, yaw, poly.owner[vertex]

    def _foot(self, poly: _Polyline, key: LaneKey, xy: np.ndarray) -> tuple[float, float]:
        """(u on the leg, signed lateral offset, + right) of a point beside the leg's first lane."""
        s, _, _ = self._project_on_lane(self._lanes[key], float(xy[0]), float(xy[1]))
        u = self._u_at(poly, 0, s)
        p, yaw, _ = self._sample(poly, np.array([u]))
        normal = np.array([-math.sin(yaw[0]), math.cos(yaw[0])])
        return u, float((xy - p[0, :2]) @ normal)

    def _junction_u(self, poly: _Polyline, keys: list[LaneKey], u0: float) -> float:
        for i, key in enumerate(keys):
            if self._lanes[key].in_junction:
                us = poly.u[(poly.owner == i) & (poly.u > u0 + 1e-6)]
                if len(us):
                    return float(us[0])
        return math.inf

    def _change_start_u(self, poly: _Polyline, leg: _Leg, side: int, u_from: float) -> float:
        """Where on a leg the next lane change (to ``side``) begins: the first point at
        or after ``u_from`` on the leg's last lane whose marking allows it."""
        last = len(leg.keys) - 1
        u_last = self._u_at(poly, last, 0.0)
        u_from = max(u_from, u_last)
        s_from = (
            float(np.interp(u_from, poly.u[poly.owner == last], poly.lane_s[poly.owner == last]))
            if np.any(poly.owner == last)
            else 0.0
        )
        s_c = self._first_allowed(leg.keys[-1], side, s_from)
        return u_from if s_c is None else max(u_from, self._u_at(poly, last, s_c))

    def _emit_leg(
        self, raw: _Raw, leg: _Leg, poly: _Polyline, span: tuple[float, float], d0: float, l_eff: float
    ):
        """Append the leg's centre line over ``span`` (u0, u_end), offset by d0 fading over l_eff."""
        u0, u_end = span
        inner = poly.u[(poly.u > u0 + 1e-6) & (poly.u < u_end - 1e-6)]
        extra = np.arange(u0, min(u0 + l_eff, u_end), 0.5) if leg.change_in else np.zeros(0)
        us = np.unique(np.concatenate([[u0], inner, extra, [u_end]]))
        xyz, yaw, owner = self._sample(poly, us)
        keys = [leg.keys[i] for i in owner]
        change = np.zeros(len(us), dtype=int)
        if leg.change_in and l_eff > 2e-3:  # else no road is left: straight across
            t = (us - u0) / l_eff
            offset = d0 * (1.0 - _blend(t))
            xyz[:, 0] -= offset * np.sin(yaw)
            xyz[:, 1] += offset * np.cos(yaw)
            during = t < 1.0 - 1e-6
            change[during] = leg.change_in
            for i in np.flatnonzero(during & (_blend(t) < 0.5)):
                keys[i] = self._source_side(keys[i], leg.change_in)
        # the previous leg already ends at this point (unless a change with no road left jumps)
        first = 1 if raw.xyz and np.hypot(*(xyz[0, :2] - raw.xyz[-1][:2])) <= _SAME_POINT_M else 0
        if raw.xyz and leg.change_in:
            raw.change[-1] = leg.change_in  # ... where the change begins
        raw.add(xyz[first:], keys[first:], change[first:])

    def _source_side(self, key: LaneKey, side: int) -> LaneKey:
        """The lane beside ``key`` that a change to ``side`` comes from."""
        lane = self._lanes[key]
        neighbour = lane.right if side == _LEFT else lane.left
        return neighbour if neighbour is not None else key

    def _deadline_u(self, poly: _Polyline, goal_xy: np.ndarray, changes_after: int) -> float:
        """Distance along a leg abreast of the goal, when the goal lies beside the leg.

        Lane changes still to come must all fit before it; ``inf`` when the goal is
        further than ``changes_after`` lanes (4 m each) from the leg.
        """
        xy = poly.xyz[:, :2]
        if len(xy) < 2:
            return math.inf
        p0, d = xy[:-1], np.diff(xy, axis=0)
        ll = np.maximum(np.einsum("ij,ij->i", d, d), 1e-12)
        t = np.clip(np.einsum("ij,ij->i", goal_xy - p0, d) / ll, 0.0, 1.0)
        dist = np.hypot(*(p0 + t[:, None] * d - goal_xy).T)
        i = int(np.argmin(dist))
        if dist[i] > 4.0 * changes_after + 1.0:
            return math.inf
        return float(poly.u[i] + t[i] * math.sqrt(ll[i]))

    def _junction_xy(self, poly: _Polyline, keys: list[LaneKey]) -> np.ndarray | None:
        u = self._junction_u(poly, keys, -1.0)
        return None if not math.isfinite(u) else poly.xyz[int(np.searchsorted(poly.u, u)), :2]

    def _leg_span(self, polys: list[_Polyline], legs: list[_Leg], i: int, u0: float, limits: list[list]):
        """(u_end, l_eff) of leg ``i``: where it hands over to the next lane change, and
        the length of its own incoming change.

        The changes still to come share the road left before the first of
        ``limits[i + 1]`` beside the leg (the goal, where a later leg enters a junction).
        """
        leg, poly = legs[i], polys[i]
        after = len(legs) - 1 - i
        ahead = limits[i + 1] if after else []
        deadline = min((self._deadline_u(poly, xy, after) for xy in ahead), default=math.inf)
        room = min(self._junction_u(poly, leg.keys, u0), deadline, float(poly.u[-1])) - u0
        changes = after + (1 if leg.change_in else 0)
        share = room / max(changes, 1) if math.isfinite(deadline) else room
        l_eff = max(min(self.config.lane_change_length_m, share), 1e-3) if leg.change_in else 0.0
        if not after:
            return u0, l_eff
        u_end = self._change_start_u(poly, leg, legs[i + 1].change_in, u0 + l_eff)
        if math.isfinite(deadline):
            latest = deadline - after * min(self.config.lane_change_length_m, max(share, 0.0))
            u_end = max(min(u_end, latest), u0 + l_eff, self._u_at(poly, len(leg.keys) - 1, 0.0))
        return min(u_end, float(poly.u[-1])), l_eff

    def _segment_geometry(self, start: _Candidate, goal: _Candidate, chain, nodes) -> _Raw:
        """Raw geometry of one search path from ``start`` to ``goal``."""
        legs = self._to_legs(start, chain, nodes)
        polys = [self._polyline(leg.keys) for leg in legs]
        # limits[j]: points a change before leg j must not pass (leg j's junction entry, the goal)
        limits: list[list[np.ndarray]] = [[] for _ in legs]
        for j, (leg, poly) in enumerate(zip(legs, polys, strict=True)):
            xy = self._junction_xy(poly, leg.keys)
            limits[j] = [] if xy is None else [xy]
        limits[-1].append(self._lanes[goal.key].point_at(goal.s_m)[0][:2])
        flat = [[xy for group in limits[j:] for xy in group] for j in range(len(legs))]
        raw = _Raw()
        raw.add([self._lanes[start.key].point_at(start.s_m)[0]], [start.key], [0])
        for i, (leg, poly) in enumerate(zip(legs, polys, strict=True)):
            if i == 0:
                u0, d0 = self._u_at(poly, 0, start.s_m), 0.0
            else:
                u0, d0 = self._foot(poly, leg.keys[0], raw.xyz[-1][:2])
            u_end, l_eff = self._leg_span(polys, legs, i, u0, flat)
            if i == len(legs) - 1:
                u_goal = self._u_at(poly, len(leg.keys) - 1, goal.s_m)
                u0 = min(u0, u_goal)  # never run past the goal
                l_eff = max(min(l_eff, u_goal - u0), 1e-3) if leg.change_in else 0.0
                u_end = u_goal
            self._emit_leg(raw, leg, poly, (u0, u_end), d0, l_eff)
        # where lanes overlap at a join, the goal may lie on a stretch the centre line skips
        goal_xyz = self._lanes[goal.key].point_at(goal.s_m)[0]
        if np.hypot(*(goal_xyz[:2] - raw.xyz[-1][:2])) > _SAME_POINT_M:
            raw.add([goal_xyz], [goal.key], [0])
        return raw

    # -- resampling and commands ---------------------------------------------------------

    def _resample(self, raw: _Raw, knots_u: list[float]):
        """Points at equal steps between knots (a knot closer than half a step to the
        previous one, or to the end, is merged); returns points, lanes, change sides and
        the point index of every knot."""
        xyz = np.asarray(raw.xyz)
        u = _cumulative(xyz[:, :2])
        total = float(u[-1])
        spacing = self.config.spacing_m
        kept = [0.0]
        for k in knots_u[1:]:
            if k - kept[-1] >= 0.5 * spacing and total - k >= 0.5 * spacing:
                kept.append(k)
        kept.append(total)
        samples = [np.array([0.0])]
        for a, b in zip(kept[:-1], kept[1:], strict=True):
            if b - a > 1e-9:
                samples.append(np.linspace(a, b, max(1, int(round((b - a) / spacing))) + 1)[1:])
        us = np.concatenate(samples)
        out = np.stack([np.interp(us, u, xyz[:, i]) for i in range(3)], axis=1)
        vertex = np.clip(np.searchsorted(u, us + 1e-6, side="right") - 1, 0, len(u) - 1)
        knot_index = np.array([int(np.argmin(np.abs(us - k))) for k in knots_u])
        keep = self._thin(out, set(knot_index.tolist()))
        keys = [raw.keys[vertex[i]] for i in keep]
        return out[keep], keys, np.asarray(raw.change)[vertex[keep]], np.searchsorted(keep, knot_index)

    def _thin(self, xyz: np.ndarray, protected: set[int]) -> np.ndarray:
        """Indices of the points to keep so no two neighbours are closer than half a step.

        Equal arc-length steps make shorter chords round a sharp corner (a hairpin
        join in a converted OpenStreetMap road); such a point is dropped, or its
        predecessor when the point itself is a key point or the end.
        """
        least = 0.5 * self.config.spacing_m - 1e-9
        if len(xyz) < 3 or np.linalg.norm(np.diff(xyz, axis=0), axis=1).min() >= least:
            return np.arange(len(xyz))
        keep = [0]
        for i in range(1, len(xyz)):
            if np.linalg.norm(xyz[i] - xyz[keep[-1]]) >= least:
                keep.append(i)
            elif i in protected or i == len(xyz) - 1:
                if len(keep) > 1 and keep[-1] not in protected:
                    keep.pop()
                keep.append(i)
        return np.asarray(keep)

    def _turn(self, keys: list[LaneKey]) -> RoadOption:
        """LEFT / RIGHT / STRAIGHT from the heading change along a junction's connecting lanes."""
        total = 0.0
        previous = None
        for key in keys:
            yaw = self._lanes[key].yaw_rad
            if previous is not None:
                total += _wrap(yaw[0] - previous)
            total += float(np.sum(np.remainder(np.diff(yaw) + math.pi, 2.0 * math.pi) - math.pi))
            previous = yaw[-1]
        if abs(total) < self.config.straight_threshold_rad:
            return RoadOption.STRAIGHT
        return RoadOption.RIGHT if total > 0 else RoadOption.LEFT

    def _commands(self, keys: list[LaneKey], change: np.ndarray, s: np.ndarray) -> np.ndarray:
        command = np.full(len(keys), RoadOption.LANEFOLLOW, dtype=np.int8)
        for side, option in _CHANGE_COMMAND.items():
            command[change == side] = option
        junction = np.array([self._lanes[k].junction_id for k in keys])
        starts = np.flatnonzero((junction >= 0) & np.concatenate([[True], junction[1:] != junction[:-1]]))
        for i in starts:
            j = i + int(np.argmax(np.append(junction[i:] != junction[i], True)))
            option = self._turn(list(dict.fromkeys(keys[i:j])))
            command[i:j] = option
            near = (s >= s[i] - self.config.approach_m - 1e-6) & (s < s[i])
            command[near & (junction < 0) & (change == 0)] = option
        return command

    @staticmethod
    def _yaws(xyz: np.ndarray, fallback: float) -> np.ndarray:
        """Heading of the route at each point (central differences)."""
        if len(xyz) < 2:
            return np.array([fallback])
        d = np.empty((len(xyz), 2))
        d[1:-1] = xyz[2:, :2] - xyz[:-2, :2]
        d[0] = xyz[1, :2] - xyz[0, :2]
        d[-1] = xyz[-1, :2] - xyz[-2, :2]
        return np.arctan2(d[:, 1], d[:, 0])

    # -- public API -----------------------------------------------------------------------------

    def plan(
        self,
        start_xyz: Sequence[float],
        goal_xyz: Sequence[float],
        *,
        start_yaw_rad: float | None = None,
        goal_yaw_rad: float | None = None,
    ) -> DenseRoute:
        """The shortest route from ``start_xyz`` to ``goal_xyz`` (CARLA frame, metres).

        Both are projected onto the nearest driving lane (whose heading is within 90
        degrees of the yaw, when one is given). A goal behind the start on the same
        lane is reached by driving round. Raises :class:`RouteError` ("unreachable: no
        lane path from (x, y) to (x, y)") when no lane path exists.
        """
        xyz = np.zeros((2, 3))
        for row, point in enumerate((start_xyz, goal_xyz)):
            values = np.asarray(point, dtype=float).ravel()
            xyz[row, : min(3, len(values))] = values[:3]
        yaw = None
        if start_yaw_rad is not None or goal_yaw_rad is not None:
            yaw = np.array([math.nan if v is None else float(v) for v in (start_yaw_rad, goal_yaw_rad)])
        return self._plan(xyz, yaw, numbered=False).route

    def plan_keypoints(
        self, keypoints_xyz: np.ndarray, *, keypoint_yaw_rad: np.ndarray | None = None
    ) -> PlannedRoute:
        """One route through all key points (K, 3) in order, e.g. a Leaderboard route.

        Each key point goes to a lane within ``candidate_margin_m`` of its nearest lane;
        its yaw, if given, only prefers lanes heading its way among those (Leaderboard
        v1 yaws sometimes point against the lane the key point lies on, and the
        Leaderboard itself ignores them). A key point further than
        ``keypoint_tolerance_m`` from every lane gives a warning naming its index and
        distance, and the route passes through the lane point nearest to it. Raises
        :class:`RouteError` when two consecutive key points have no lane path between
        them.
        """
        xyz = np.asarray(keypoints_xyz, dtype=float)
        if xyz.ndim != 2 or len(xyz) == 0 or xyz.shape[1] not in (2, 3):
            raise RouteError(
                f"key points must be an array of shape (K, 3) with K >= 1, got shape {xyz.shape}"
            )
        if xyz.shape[1] == 2:
            xyz = np.column_stack([xyz, np.zeros(len(xyz))])
        yaw = None if keypoint_yaw_rad is None else np.asarray(keypoint_yaw_rad, dtype=float).ravel()
        if yaw is not None and len(yaw) != len(xyz):
            raise RouteError(f"{len(yaw)} key point yaws for {len(xyz)} key points")
        return self._plan(xyz, yaw, numbered=True)

    def plan_route(self, route: RouteSpec) -> PlannedRoute:
        """:meth:`plan_keypoints` for a Leaderboard route; its errors and warnings name it."""
        try:
            planned = self.plan_keypoints(route.keypoints_xyz_m, keypoint_yaw_rad=route.keypoint_yaw_rad)
        except RouteError as exc:
            raise RouteError(f"{route.describe()}: {exc}") from None
        warnings = [f"route {route.route_id}: {w}" for w in planned.warnings]
        return dataclasses.replace(planned, warnings=warnings)

    def _plan(self, xyz: np.ndarray, yaw: np.ndarray | None, *, numbered: bool) -> PlannedRoute:
        t0 = time.perf_counter()

        def unreachable(a: int, b: int) -> str:
            text = (
                f"unreachable: no lane path from ({xyz[a, 0]:.1f}, {xyz[a, 1]:.1f}) "
                f"to ({xyz[b, 0]:.1f}, {xyz[b, 1]:.1f})"
            )
            return text + (f" (key point {a} to {b})" if numbered else "")

        yaws = [None] * len(xyz) if yaw is None else [None if math.isnan(v) else float(v) for v in yaw]
        layers = [
            self._candidates(p[0], p[1], yaws[i], strict=not numbered) for i, p in enumerate(xyz.tolist())
        ]
        picks, paths = self._viterbi(xyz, layers, unreachable)
        chosen = [layers[k][j] for k, j in enumerate(picks)]
        raw = _Raw()
        knots = [0.0]
        for k in range(1, len(chosen)):
            seg = self._segment_geometry(chosen[k - 1], chosen[k], *paths[k - 1])
            first = 1 if raw.xyz else 0
            raw.add(seg.xyz[first:], seg.keys[first:], seg.change[first:])
            knots.append(knots[-1] + float(_cumulative(np.asarray(seg.xyz)[:, :2])[-1]))
        if not raw.xyz:  # a single key point
            p, _ = self._lanes[chosen[0].key].point_at(chosen[0].s_m)
            raw.add([p], [chosen[0].key], [0])
        route, indices = self._dense(raw, knots, chosen[0])
        distances = np.array(
            [np.min(np.hypot(route.xyz_m[:, 0] - p[0], route.xyz_m[:, 1] - p[1])) for p in xyz]
        )
        return PlannedRoute(
            route=route,
            keypoint_distances_m=distances,
            keypoint_indices=indices,
            reached_all=bool(np.all(distances <= self.config.keypoint_tolerance_m)),
            warnings=self._far_warnings(xyz, layers),
            plan_time_s=time.perf_counter() - t0,
        )

    def _dense(self, raw: _Raw, knots: list[float], first: _Candidate) -> tuple[DenseRoute, np.ndarray]:
        xyz, keys, change, knot_index = self._resample(raw, knots)
        s = _cumulative(xyz[:, :2])
        _, yaw0 = self._lanes[first.key].point_at(first.s_m)
        route = DenseRoute(
            xyz_m=xyz,
            yaw_rad=self._yaws(xyz, yaw0),
            command=self._commands(keys, change, s),
            lane_keys=tuple(keys),
            s_m=s,
        )
        return route, knot_index

    def _far_warnings(self, xyz: np.ndarray, layers: list[list[_Candidate]]) -> list[str]:
        out = []
        for k, cands in enumerate(layers):
            nearest = min(c.distance_m for c in cands)
            if nearest > self.config.keypoint_tolerance_m:
                out.append(
                    f"key point {k} at ({xyz[k, 0]:.1f}, {xyz[k, 1]:.1f}) is {nearest:.2f} m from "
                    "the nearest driving lane; the route passes through the nearest lane point instead"
                )
        return out
