"""Junction geometry, traffic lights with safe phase plans, and stop signs.

Junction structure is precomputed once from a :class:`~sim.maps.RoadMap`:

* :class:`JunctionEntry` - a driving lane outside every junction whose successors are
  connecting lanes of a junction; its stop line is the entry lane's end. Its
  :class:`Movement` s are the paths through the junction (the successor connecting
  lane, then any further connecting lanes of the same junction: CARLA's Town03 splits
  connecting roads into lane sections), each classified by heading change.
* :class:`JunctionIndex` - every junction connecting lane numbered 0..L-1, grouped by
  junction, with an (L, L) boolean ``conflicts`` matrix that per-tick code indexes.

Conflict rule (:func:`lanes_conflict`): two connecting lanes of one junction conflict
when, followed through the junction as parts of their paths, their centre lines come
closer than ``clearance_ratio`` x (sum of half widths) - crossing included - or they
merge into the same successor. Paths leaving the same point (the same entry lane)
are compared only after they have separated, so diverging movements do not
conflict, and a lane never conflicts with its own successor.

:class:`TrafficSignals` controls entry lanes:

* Map signals. A traffic light or stop sign governs driving lanes: those of its
  ``<validity>`` on its road and on each road with a ``<signalReference>`` to it,
  else those its ``orientation`` names (read from the OpenDRIVE text; carla's
  landmark yaw and default validity point the wrong way for some files, see
  :func:`_governed_lanes`). It controls an entry lane when (a) it governs a
  connecting lane of the entry's movements, or (b) it faces the entry's traffic:
  it stands on a road of the entry's junction (connecting, entering or leaving),
  within ``SignalConfig.signal_radius_m`` of the stop line, and a lane it governs
  runs within ``signal_max_yaw_rad`` of the entry's direction at the stop line.
  Checked on the maps: Town01 heads stand at the near right corner (0-4 m before
  the stop line, 2.5-3 m right of the lane centre); Town04 heads at the far right
  corner, 14-23 m past the stop line (so the junction, not the nearest stop line,
  decides), Town06 heads up to 34 m away across six lanes, one Town04 head 54 m
  away; all CARLA heads reference the connecting roads, so (a) matches them
  exactly. An entry matched by several signals takes a light before a sign, an (a)
  match before a (b) match, then the nearest.
* A junction is signalised when a map light controls one of its entries, or when
  lights are generated for it (``SignalConfig.generate_lights``). Every entry of a
  signalised junction gets a light (entries no map head faces get a generated one,
  id ``"gen:<junction>:<road>:<section>:<lane>"``), so no movement runs unguarded
  into a green one.
* Phase plan: entries conflict when any of their movements conflict (or share a
  connecting lane); the conflict graph is coloured greedily (largest degree first,
  ties by lane key) into phases. Each phase has ``green_s``, then ``amber_s``, then
  ``all_red_s`` before the next phase starts; a junction's cycle starts at a
  seed-driven offset. Conflicting entries are never green or amber together.
* Stop signs (map signals of kind ``"stop"``) control entries of junctions that are
  not signalised; their state is always ``LightState.STOP``.

Frames: CARLA's world frame (x forward, y right), metres, radians.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numba
import numpy as np

from sim.errors import ConfigError, MapError
from sim.maps.roadmap import LaneKey, RoadMap
from sim.state import LightState, SignalStates

__all__ = [
    "Turn",
    "Movement",
    "JunctionEntry",
    "find_entries",
    "lanes_conflict",
    "JunctionIndex",
    "SignalConfig",
    "PhasePlan",
    "TrafficSignals",
    "CLEARANCE_RATIO",
    "STRAIGHT_MAX_RAD",
]

#: conflict when centre lines come closer than this share of the sum of half widths
CLEARANCE_RATIO = 0.8
#: a movement turning by less than this (either way) is straight
STRAIGHT_MAX_RAD = math.radians(35.0)
#: lane ends and starts closer than this meet (m)
JOIN_TOL_M = 0.5
#: centre lines are compared at points at most this far apart (m); a crossing then
#: always has two points within one step of each other, well inside any clearance
SAMPLE_STEP_M = 0.5
#: junction lanes without a predecessor adopt entry lanes ending at their start
#: within JOIN_TOL_M and heading within this angle (carla drops some incoming links)
_JOIN_MAX_YAW_RAD = math.radians(30.0)
_RED, _YELLOW, _GREEN = int(LightState.RED), int(LightState.YELLOW), int(LightState.GREEN)
#: paths through one junction followed at most (guards against pathological maps)
_MAX_PATHS = 256


class Turn(StrEnum):
    """How a movement leaves the junction, from its heading change."""

    LEFT = "left"
    RIGHT = "right"
    STRAIGHT = "straight"


@dataclass(frozen=True)
class Movement:
    """A path through a junction from one entry lane.

    ``lanes`` are the junction connecting lanes in driving order (the first is the
    entry's successor); ``exit`` the lane after the junction (``None`` at a dead
    end); ``heading_change_rad`` the integrated yaw change from the stop line to the
    junction's far side (positive: right, as CARLA's yaw).
    """

    lanes: tuple[LaneKey, ...]
    exit: LaneKey | None
    turn: Turn
    heading_change_rad: float

    @property
    def lane(self) -> LaneKey:
        """The entry's successor connecting lane."""
        return self.lanes[0]


@dataclass(frozen=True)
class JunctionEntry:
    """A lane entering a junction, its stop line (the lane's end) and its movements."""

    lane: LaneKey
    junction_id: int
    stop_xy_m: tuple[float, float]
    stop_yaw_rad: float  # direction of travel over the stop line
    lane_width_m: float
    movements: tuple[Movement, ...]


# -- topology ------------------------------------------------------------------------


def _heads_by_entry(road_map: RoadMap) -> dict[LaneKey, list[LaneKey]]:
    """Entry lane -> the junction connecting lanes it feeds.

    From the map's successors; a connecting lane the map gives no predecessor at all
    (carla drops incoming links of some junctions, e.g. esmini's
    multi_lane_3way_intersection) adopts every non-junction lane that ends at its
    start, heading the same way.
    """
    lanes = road_map.lanes
    feeds: dict[LaneKey, list[LaneKey]] = defaultdict(list)
    for key, lane in lanes.items():
        if lane.in_junction:
            continue
        for succ in lane.successors:
            if lanes[succ].in_junction and succ not in feeds[key]:
                feeds[key].append(succ)
    orphans = [k for k, lane in lanes.items() if lane.in_junction and not lane.predecessors]
    if orphans:
        outside = [k for k, lane in lanes.items() if not lane.in_junction]
        ends = np.array([lanes[k].xyz_m[-1, :2] for k in outside])
        end_yaw = np.array([lanes[k].yaw_rad[-1] for k in outside])
        for key in orphans:
            lane = lanes[key]
            gap = np.hypot(*(ends - lane.xyz_m[0, :2]).T)
            turn = np.abs(np.remainder(end_yaw - lane.yaw_rad[0] + math.pi, 2 * math.pi) - math.pi)
            for i in np.flatnonzero((gap <= JOIN_TOL_M) & (turn <= _JOIN_MAX_YAW_RAD)):
                if key not in feeds[outside[i]]:
                    feeds[outside[i]].append(key)
    return {k: sorted(v) for k, v in sorted(feeds.items()) if v}


def _paths_from(road_map: RoadMap, head: LaneKey) -> list[tuple[LaneKey, ...]]:
    """Every path of connecting lanes from ``head`` through its junction (DFS)."""
    lanes = road_map.lanes
    jid = lanes[head].junction_id
    paths: list[tuple[LaneKey, ...]] = []
    stack: list[tuple[LaneKey, ...]] = [(head,)]
    while stack and len(paths) < _MAX_PATHS:
        path = stack.pop()
        nxt = [s for s in lanes[path[-1]].successors if lanes[s].junction_id == jid and s not in path]
        if not nxt:
            paths.append(path)
        stack.extend(path + (s,) for s in sorted(nxt, reverse=True))
    return paths


def _movement(road_map: RoadMap, entry: LaneKey, path: tuple[LaneKey, ...]) -> Movement:
    lanes = road_map.lanes
    yaws = np.concatenate([[lanes[entry].yaw_rad[-1]], *(lanes[k].yaw_rad for k in path)])
    change = float(np.sum(np.remainder(np.diff(yaws) + math.pi, 2 * math.pi) - math.pi))
    turn = Turn.RIGHT if change > 0 else Turn.LEFT  # CARLA's yaw grows turning right
    if abs(change) < STRAIGHT_MAX_RAD:
        turn = Turn.STRAIGHT
    succ = sorted(lanes[path[-1]].successors)
    return Movement(path, succ[0] if succ else None, turn, change)


def find_entries(road_map: RoadMap) -> list[JunctionEntry]:
    """Every junction entry of the map, sorted by (junction id, entry lane)."""
    entries = []
    for key, heads in _heads_by_entry(road_map).items():
        lane = road_map.lanes[key]
        by_junction: dict[int, list[LaneKey]] = defaultdict(list)
        for head in heads:
            by_junction[road_map.lanes[head].junction_id].append(head)
        for jid, jheads in by_junction.items():
            moves = tuple(_movement(road_map, key, p) for h in jheads for p in _paths_from(road_map, h))
            entries.append(
                JunctionEntry(
                    lane=key,
                    junction_id=jid,
                    stop_xy_m=(float(lane.xyz_m[-1, 0]), float(lane.xyz_m[-1, 1])),
                    stop_yaw_rad=float(lane.yaw_rad[-1]),
                    lane_width_m=float(lane.width_m[-1]),
                    movements=moves,
                )
            )
    entries.sort(key=lambda e: (e.junction_id, e.lane))
    return entries


# -- conflict geometry ---------------------------------------------------------------


@dataclass(frozen=True)
class _Track:
    """A maximal path of connecting lanes through one junction, densely sampled."""

    lanes: tuple[LaneKey, ...]
    xy: np.ndarray  # (n, 2) points at most SAMPLE_STEP_M apart; joins appear twice
    half_width: np.ndarray  # (n,)
    owner: np.ndarray  # (n,) position in ``lanes`` of the lane each point lies on
    exit: frozenset  # successors of the last lane
    lo: np.ndarray  # (2,) bounding box
    hi: np.ndarray


def _sample_lane(lane) -> tuple[np.ndarray, np.ndarray]:
    n = max(1, math.ceil(lane.length_m / SAMPLE_STEP_M))
    grid = np.linspace(0.0, lane.length_m, n + 1)
    xy = np.stack([np.interp(grid, lane.s_m, lane.xyz_m[:, k]) for k in (0, 1)], axis=1)
    return xy, 0.5 * np.interp(grid, lane.s_m, lane.width_m)


def _track(road_map: RoadMap, path: tuple[LaneKey, ...]) -> _Track:
    parts = [_sample_lane(road_map.lanes[k]) for k in path]
    xy = np.concatenate([p[0] for p in parts])
    owner = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)])
    exit_ = frozenset(road_map.lanes[path[-1]].successors)
    return _Track(
        path, xy, np.concatenate([p[1] for p in parts]), owner, exit_, xy.min(axis=0), xy.max(axis=0)
    )


def _junction_tracks(road_map: RoadMap, lane_keys) -> list[_Track]:
    """Tracks from every connecting lane without a predecessor in its junction."""
    lanes = road_map.lanes
    members = set(lane_keys)
    heads = sorted(
        k
        for k in members
        if not any(
            p in members and lanes[p].junction_id == lanes[k].junction_id for p in lanes[k].predecessors
        )
    )
    tracks = [_track(road_map, p) for h in heads for p in _paths_from(road_map, h)]
    covered = {k for t in tracks for k in t.lanes}
    # lanes only reachable around a cycle inside the junction: each its own track
    tracks += [_track(road_map, (k,)) for k in sorted(members - covered)]
    return tracks


def _leading_run(mask: np.ndarray) -> np.ndarray:
    """The initial run of True values of ``mask`` (False from the first False on)."""
    first_false = int(np.argmin(mask)) if not mask.all() else len(mask)
    run = np.zeros(len(mask), bool)
    run[:first_false] = True
    return run


def _track_conflicts(a: _Track, b: _Track, ratio: float) -> set[tuple[int, int]]:
    """Pairs (lane position in a, lane position in b) that conflict."""
    reach = ratio * (a.half_width.max() + b.half_width.max())
    if np.any(a.lo > b.hi + reach) or np.any(b.lo > a.hi + reach):
        return set()
    d = np.hypot(a.xy[:, None, 0] - b.xy[None, :, 0], a.xy[:, None, 1] - b.xy[None, :, 1])
    near = d < ratio * (a.half_width[:, None] + b.half_width[None, :])
    if math.dist(a.xy[0], b.xy[0]) <= JOIN_TOL_M:
        # diverging paths touch at their shared start: compare only after they separate
        shared_a, shared_b = _leading_run(near.any(axis=1)), _leading_run(near.any(axis=0))
        near &= ~shared_a[:, None] & ~shared_b[None, :]
    ia, ib = np.nonzero(near)
    pairs = set(zip(a.owner[ia].tolist(), b.owner[ib].tolist(), strict=True))
    if a.exit & b.exit or math.dist(a.xy[-1], b.xy[-1]) <= JOIN_TOL_M:
        pairs.add((len(a.lanes) - 1, len(b.lanes) - 1))  # merging into the same lane
    return pairs


def _check_ratio(clearance_ratio: float) -> None:
    if not (0.0 < clearance_ratio <= 2.0):
        raise ConfigError(f"clearance_ratio must be in (0, 2], got {clearance_ratio}")


def lanes_conflict(
    road_map: RoadMap, a: LaneKey, b: LaneKey, *, clearance_ratio: float = CLEARANCE_RATIO
) -> bool:
    """Whether junction connecting lanes ``a`` and ``b`` conflict (see the module rule).

    Lanes of different junctions, a lane with itself and a lane with its own successor
    never conflict. Raises :class:`MapError` when either is not a connecting lane.
    Builds the junction's geometry on every call: per-tick code indexes
    :attr:`JunctionIndex.conflicts` instead, which holds the same answers.
    """
    _check_ratio(clearance_ratio)
    for key in (a, b):
        if key not in road_map.lanes or not road_map.lanes[key].in_junction:
            raise MapError(f"{road_map.name}: {key} is not a junction connecting lane")
    la, lb = road_map.lanes[a], road_map.lanes[b]
    if a == b or la.junction_id != lb.junction_id or b in la.successors or a in lb.successors:
        return False
    jlanes = road_map.junctions[la.junction_id].lanes
    tracks = _junction_tracks(road_map, jlanes)
    for ta in (t for t in tracks if a in t.lanes):
        for tb in (t for t in tracks if b in t.lanes and t is not ta):
            for i, j in _track_conflicts(ta, tb, clearance_ratio):
                if (ta.lanes[i], tb.lanes[j]) == (a, b):
                    return True
    return False


class JunctionIndex:
    """Every junction connecting lane of a map numbered 0..L-1, and which pairs conflict.

    Lanes are grouped by junction (ascending id, then lane key), so junction ``j``'s
    lanes are ``lanes[junction_range[j][0]:junction_range[j][1]]`` and its conflict
    matrix the matching diagonal block of ``conflicts``; pairs across junctions are
    False. ``entry_of_lane[i]`` indexes ``entries`` (the entry whose movements use
    lane i first; -1 for a lane no entry reaches), ``junction_of_lane[i]`` is its
    junction id. All arrays are read-only.
    """

    def __init__(self, road_map: RoadMap, *, clearance_ratio: float = CLEARANCE_RATIO):
        _check_ratio(clearance_ratio)
        self.road_map = road_map
        self.clearance_ratio = clearance_ratio
        self.entries: list[JunctionEntry] = find_entries(road_map)
        keys: list[LaneKey] = []
        self.junction_range: dict[int, tuple[int, int]] = {}
        for jid in sorted(road_map.junctions):
            start = len(keys)
            keys.extend(sorted(road_map.junctions[jid].lanes))
            self.junction_range[jid] = (start, len(keys))
        self.lanes: tuple[LaneKey, ...] = tuple(keys)
        self.lane_index: dict[LaneKey, int] = {k: i for i, k in enumerate(keys)}
        self.junction_of_lane = np.array([road_map.lanes[k].junction_id for k in keys], np.int64)
        self.entry_of_lane = np.full(len(keys), -1, np.int64)
        for e, entry in reversed(list(enumerate(self.entries))):
            for move in entry.movements:
                for key in move.lanes:
                    self.entry_of_lane[self.lane_index[key]] = e
        self.conflicts = self._conflict_matrix()
        for arr in (self.junction_of_lane, self.entry_of_lane, self.conflicts):
            arr.flags.writeable = False

    def _conflict_matrix(self) -> np.ndarray:
        n = len(self.lanes)
        conflicts = np.zeros((n, n), bool)
        for lo, hi in self.junction_range.values():
            tracks = _junction_tracks(self.road_map, self.lanes[lo:hi])
            for ia, ta in enumerate(tracks):
                ga = [self.lane_index[k] for k in ta.lanes]
                for tb in tracks[ia + 1 :]:
                    gb = [self.lane_index[k] for k in tb.lanes]
                    for i, j in _track_conflicts(ta, tb, self.clearance_ratio):
                        conflicts[ga[i], gb[j]] = conflicts[gb[j], ga[i]] = True
        np.fill_diagonal(conflicts, False)
        for i, key in enumerate(self.lanes):  # a lane and its successor follow, not cross
            for succ in self.road_map.lanes[key].successors:
                j = self.lane_index.get(succ, -1)
                if j >= 0:
                    conflicts[i, j] = conflicts[j, i] = False
        return conflicts

    def entry_lane_indices(self, entry: JunctionEntry) -> np.ndarray:
        """Indices (into ``lanes``) of every connecting lane of the entry's movements."""
        keys = sorted({k for m in entry.movements for k in m.lanes})
        return np.array([self.lane_index[k] for k in keys], np.int64)

    def entries_conflict(self, a: JunctionEntry, b: JunctionEntry) -> bool:
        """Whether any movement of ``a`` conflicts with, or shares a lane with, any of ``b``."""
        if a.junction_id != b.junction_id or a.lane == b.lane:
            return False
        ia, ib = self.entry_lane_indices(a), self.entry_lane_indices(b)
        return bool(self.conflicts[np.ix_(ia, ib)].any() or np.intersect1d(ia, ib).size)

    def entry_roads(self, junction_id: int) -> int:
        """How many distinct roads enter the junction."""
        return len({e.lane.road_id for e in self.entries if e.junction_id == junction_id})


# -- signals -------------------------------------------------------------------------

GenerateLights = Literal["auto", "always", "never"]
_GENERATE_CHOICES = ("auto", "always", "never")


@dataclass(frozen=True)
class SignalConfig:
    """Traffic-light timing and where lights come from.

    ``generate_lights``: ``"auto"`` uses the map's lights when the map has any
    traffic-light or stop signal, else generates lights at every junction with at
    least ``min_entries_for_light`` entry roads; ``"always"`` generates them there
    in addition to the map's; ``"never"`` uses the map's alone. Generated lights skip
    junctions with a map stop sign. ``random_offsets``: each junction's cycle starts
    at a seed-driven offset (else all junctions start together at t = 0).
    """

    green_s: float = 12.0
    amber_s: float = 3.0
    all_red_s: float = 2.0
    generate_lights: GenerateLights = "auto"
    min_entries_for_light: int = 3
    random_offsets: bool = True
    signal_radius_m: float = 35.0  # a map head farther from the stop line controls nothing
    signal_max_yaw_rad: float = math.pi / 4  # ... as does one facing other traffic

    def __post_init__(self) -> None:
        for name in ("green_s", "amber_s", "all_red_s", "signal_radius_m", "signal_max_yaw_rad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"SignalConfig.{name} must be a finite number, got {value!r}")
            if value < 0:
                raise ConfigError(f"SignalConfig.{name} must not be negative, got {value}")
        if self.green_s <= 0:
            raise ConfigError(
                f"SignalConfig.green_s must be positive (every entry needs green), got {self.green_s}"
            )
        if self.generate_lights not in _GENERATE_CHOICES:
            choices = ", ".join(_GENERATE_CHOICES)
            raise ConfigError(
                f"SignalConfig.generate_lights must be one of {choices}, got {self.generate_lights!r}"
            )
        n = self.min_entries_for_light
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"SignalConfig.min_entries_for_light must be an integer >= 1, got {n!r}")
        if not isinstance(self.random_offsets, bool):
            raise ConfigError(
                f"SignalConfig.random_offsets must be True or False, got {self.random_offsets!r}"
            )

    @property
    def phase_s(self) -> float:
        """One phase: green, amber and all-red."""
        return self.green_s + self.amber_s + self.all_red_s


@dataclass(frozen=True)
class PhasePlan:
    """The light cycle of one signalised junction.

    Phase ``p`` is green during ``[p * phase_s, p * phase_s + green_s)`` of the
    junction's cycle, amber for ``amber_s`` after that, then every light of the
    junction is red for ``all_red_s`` before phase ``p + 1``. Cycle time
    ``local = (time_s + offset_s) mod cycle_s``.
    """

    junction_id: int
    phases: tuple[tuple[LaneKey, ...], ...]  # entry lanes green together
    offset_s: float
    cycle_s: float


@dataclass(frozen=True)
class _MapSignal:
    id: str
    kind: str
    xy: tuple[float, float]
    yaw_rad: tuple[float, ...]  # directions of travel of the traffic it governs
    road_ids: frozenset
    lanes: frozenset  # LaneKeys of the driving lanes it governs (at its s)


def _tag(element) -> str:
    return element.tag.rsplit("}", 1)[-1]  # drop an XML namespace


def _validity(element) -> list[int] | None:
    """Lane ids of an element's ``<validity>`` ranges (None without any)."""
    ranges = [v for v in element if _tag(v) == "validity"]
    if not ranges:
        return None
    ids: list[int] = []
    for v in ranges:
        try:
            lo, hi = sorted((int(v.get("fromLane", "0")), int(v.get("toLane", "0"))))
        except ValueError:
            continue
        ids += [i for i in range(lo, hi + 1) if i != 0]
    return ids


def _signal_references(xodr_text: str) -> dict[str, list[tuple[int, float, str, list[int] | None]]]:
    """Signal id -> (road id, s, orientation, validity lanes) of the signal and of each
    ``<signalReference>`` to it, read from the OpenDRIVE text.

    Read here, not from carla: carla reports a default validity of lanes (1, 3) for a
    ``+`` signal without ``<validity>`` (esmini's fabriksgatan), the opposite side.
    """
    try:
        root = ET.fromstring(xodr_text)
    except ET.ParseError:
        return {}
    refs: dict[str, list] = defaultdict(list)
    for road in (r for r in root if _tag(r) == "road"):
        try:
            road_id = int(road.get("id", ""))
        except ValueError:
            continue
        for group in (g for g in road if _tag(g) == "signals"):
            for sig in (g for g in group if _tag(g) in ("signal", "signalReference")):
                try:
                    s_m = float(sig.get("s", "0"))
                except ValueError:
                    continue
                refs[str(sig.get("id"))].append(
                    (road_id, s_m, sig.get("orientation", "none"), _validity(sig))
                )
    return refs


def _governed_lanes(road_map: RoadMap, ids) -> dict[str, list[tuple[LaneKey, float]]]:
    """Signal id -> each driving lane it governs, with its direction of travel (rad) at
    the signal's ``s``.

    Governed lanes: the ``<validity>`` lanes where given (Town01's references say
    ``orientation="-"`` with validity lane -1, which drives along +s: validity wins),
    else the lanes of the ``orientation`` (``+``: negative ids, ``-``: positive ids).
    carla's landmark yaw is not used: for a signal beside the road it is the road's
    heading whatever the orientation (the generated towns' ``-`` heads, 8 m left).
    """
    lane_ids: dict[int, set[int]] = defaultdict(set)
    for key in road_map.lanes:
        lane_ids[key.road_id].add(key.lane_id)
    cmap = road_map.carla_map
    governed: dict[str, list[tuple[LaneKey, float]]] = defaultdict(list)
    for sid, refs in _signal_references(road_map.xodr_text).items():
        if sid not in ids:
            continue
        for road_id, s_m, orientation, validity in refs:
            on_road = lane_ids.get(road_id, set())
            if validity is None:
                sign = {"+": -1, "-": 1}.get(orientation.strip(), 0)
                validity = [i for i in on_road if sign == 0 or i * sign > 0]
            for lane_id in sorted(set(validity) & on_road):
                wp = cmap.get_waypoint_xodr(road_id, lane_id, s_m)
                if wp is not None:  # degrees from carla, in CARLA's frame like RoadMap
                    yaw = math.remainder(math.radians(wp.transform.rotation.yaw), 2 * math.pi)
                    governed[sid].append((LaneKey(road_id, int(wp.section_id), lane_id), yaw))
    return governed


def _map_signals(road_map: RoadMap) -> list[_MapSignal]:
    """Traffic lights and stop signs, one per signal id (carla lists one landmark per
    road that references the signal). A signal without governed driving lanes faces
    the direction of its landmark yaw."""
    first: dict[str, object] = {}
    roads: dict[str, set[int]] = defaultdict(set)
    for sig in road_map.signals:
        if sig.kind in ("traffic_light", "stop"):
            first.setdefault(sig.id, sig)
            roads[sig.id].add(sig.road_id)
    governed = _governed_lanes(road_map, set(first)) if first else {}
    out = []
    for sid, sig in sorted(first.items()):
        lanes = governed.get(sid, [])
        yaws = tuple(y for _, y in lanes) or (sig.yaw_rad,)
        xy = (sig.xyz_m[0], sig.xyz_m[1])
        out.append(_MapSignal(sid, sig.kind, xy, yaws, frozenset(roads[sid]), frozenset(k for k, _ in lanes)))
    return out


def _junction_roads(index: JunctionIndex) -> dict[int, set[int]]:
    """Road ids per junction: connecting roads and roads entering or leaving it."""
    roads: dict[int, set[int]] = defaultdict(set)
    for key, jid in zip(index.lanes, index.junction_of_lane.tolist(), strict=True):
        roads[jid].add(key.road_id)
    for entry in index.entries:
        roads[entry.junction_id].add(entry.lane.road_id)
        roads[entry.junction_id].update(m.exit.road_id for m in entry.movements if m.exit is not None)
    return roads


def _match_signals(
    entries: list[JunctionEntry], signals: list[_MapSignal], roads: dict[int, set[int]], config: SignalConfig
) -> dict[int, _MapSignal]:
    """Entry position -> the map signal controlling it (module rule): one governing a
    lane of the entry's movements first, then the nearest; a light before a sign."""
    if not signals or not entries:
        return {}
    sig_xy = np.array([s.xy for s in signals])
    stop_xy = np.array([e.stop_xy_m for e in entries])
    stop_yaw = np.array([e.stop_yaw_rad for e in entries])
    dist = np.hypot(stop_xy[:, None, 0] - sig_xy[None, :, 0], stop_xy[:, None, 1] - sig_xy[None, :, 1])
    dyaw = np.stack(
        [
            np.min(
                np.abs(np.remainder(np.subtract.outer(stop_yaw, s.yaw_rad) + math.pi, 2 * math.pi) - math.pi),
                axis=1,
            )
            for s in signals
        ],
        axis=1,
    )
    on_junction = np.array(
        [[bool(s.road_ids & roads.get(e.junction_id, set())) for s in signals] for e in entries]
    )
    moves = [{k for m in e.movements for k in m.lanes} for e in entries]
    governs = np.array([[bool(s.lanes & lanes) for s in signals] for lanes in moves])
    near = on_junction & (dist <= config.signal_radius_m) & (dyaw <= config.signal_max_yaw_rad)
    ok = governs | near
    sign = np.array([0.0 if s.kind == "traffic_light" else 1e6 for s in signals])
    rank = np.where(ok, sign[None, :] + np.where(governs, 0.0, 1e4) + dist, np.inf)
    best = np.argmin(rank, axis=1)
    return {e: signals[int(best[e])] for e in np.flatnonzero(ok.any(axis=1)).tolist()}


def _colour(n: int, conflict: np.ndarray, order_keys: list) -> list[int]:
    """Greedy graph colouring: largest degree first, ties by ``order_keys``."""
    degree = conflict.sum(axis=1)
    order = sorted(range(n), key=lambda i: (-int(degree[i]), order_keys[i]))
    colour = [-1] * n
    for i in order:
        used = {colour[j] for j in np.flatnonzero(conflict[i]).tolist()}
        colour[i] = next(c for c in range(n + 1) if c not in used)
    return colour


def _junction_offset(seed: int, junction_id: int, cycle_s: float) -> float:
    rng = np.random.default_rng(np.random.SeedSequence([seed, junction_id]))
    return float(rng.uniform(0.0, cycle_s))


@numba.njit(cache=True)
def _light_states(time_s, shift, cycle, green_s, amber_end_s, out):
    """Write the light state of rows 0..len(shift)-1 into ``out`` (RED, YELLOW, GREEN)."""
    for i in range(shift.shape[0]):
        local = (time_s + shift[i]) % cycle[i]  # Python modulo: in [0, cycle)
        if local < green_s:
            out[i] = _GREEN
        elif local < amber_end_s:
            out[i] = _YELLOW
        else:
            out[i] = _RED


class TrafficSignals:
    """Traffic lights and stop signs of a map, one row per controlled entry lane.

    Rows (M): the lights of signalised junctions (by junction id, phase, entry lane),
    then the stop-signed entries. Per row: ``signal_id``, ``lanes`` (the entry lane),
    ``stop_xy_m`` (M, 2), ``stop_yaw_rad``, ``junction_of_row``, ``phase_of_row``
    (-1 for a stop sign); rows ``0..light_count-1`` are lights.
    ``controlled_index[lane]`` is the row controlling an entry lane; ``plans`` holds
    each signalised junction's :class:`PhasePlan`.

    :meth:`states` is the per-tick call: one compiled loop over the rows, no Python
    loop, no work that depends on the map. Pass a prebuilt :class:`JunctionIndex` as
    ``junctions`` to share it with other components (NPC traffic).
    """

    def __init__(
        self, road_map: RoadMap, config: SignalConfig, seed: int, *, junctions: JunctionIndex | None = None
    ):
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"TrafficSignals seed must be a non-negative integer, got {seed!r}")
        self.road_map = road_map
        self.config = config
        self.seed = int(seed)
        self.junctions = junctions if junctions is not None else JunctionIndex(road_map)
        entries = self.junctions.entries
        map_signals = _map_signals(road_map)
        matched = _match_signals(entries, map_signals, _junction_roads(self.junctions), config)
        lit = self._signalised_junctions(entries, map_signals, matched)
        self.plans: dict[int, PhasePlan] = {}
        rows: list[tuple[JunctionEntry, str, int]] = []  # entry, signal id, phase (-1: stop)
        for jid in sorted(lit):
            members = [(e, matched.get(i)) for i, e in enumerate(entries) if e.junction_id == jid]
            rows += self._plan_junction(jid, members)
        for i, entry in enumerate(entries):
            sig = matched.get(i)
            if entry.junction_id not in lit and sig is not None and sig.kind == "stop":
                rows.append((entry, sig.id, -1))
        self._build_rows(rows)

    def _signalised_junctions(self, entries, map_signals, matched) -> set[int]:
        lit = {entries[i].junction_id for i, s in matched.items() if s.kind == "traffic_light"}
        stopped = {entries[i].junction_id for i, s in matched.items() if s.kind == "stop"}
        mode = self.config.generate_lights
        if mode == "never" or (mode == "auto" and map_signals):
            return lit
        for jid in self.junctions.junction_range:
            if jid not in stopped and self.junctions.entry_roads(jid) >= self.config.min_entries_for_light:
                lit.add(jid)
        return lit

    def _plan_junction(self, jid: int, members: list[tuple[JunctionEntry, _MapSignal | None]]):
        n = len(members)
        conflict = np.zeros((n, n), bool)
        for i in range(n):
            for j in range(i + 1, n):
                hit = self.junctions.entries_conflict(members[i][0], members[j][0])
                conflict[i, j] = conflict[j, i] = hit
        colour = _colour(n, conflict, [e.lane for e, _ in members])
        phases = tuple(
            tuple(sorted(e.lane for (e, _), c in zip(members, colour, strict=True) if c == p))
            for p in range(max(colour) + 1)
        )
        cycle = len(phases) * self.config.phase_s
        offset = _junction_offset(self.seed, jid, cycle) if self.config.random_offsets else 0.0
        self.plans[jid] = PhasePlan(jid, phases, offset, cycle)
        rows = []
        for (entry, sig), c in sorted(zip(members, colour, strict=True), key=lambda m: (m[1], m[0][0].lane)):
            lane = entry.lane
            sid = f"gen:{jid}:{lane.road_id}:{lane.section_id}:{lane.lane_id}"
            if sig is not None and sig.kind == "traffic_light":
                sid = sig.id
            rows.append((entry, sid, c))
        return rows

    def _build_rows(self, rows: list[tuple[JunctionEntry, str, int]]) -> None:
        cfg = self.config
        self.signal_id: tuple[str, ...] = tuple(r[1] for r in rows)
        self.lanes: tuple[LaneKey, ...] = tuple(r[0].lane for r in rows)
        self.controlled_index: dict[LaneKey, int] = {k: i for i, k in enumerate(self.lanes)}
        self.junction_of_row = np.array([r[0].junction_id for r in rows], np.int64)
        self.phase_of_row = np.array([r[2] for r in rows], np.int64)
        self.stop_xy_m = np.array([r[0].stop_xy_m for r in rows], np.float64).reshape(-1, 2)
        self.stop_yaw_rad = np.array([r[0].stop_yaw_rad for r in rows], np.float64)
        self.light_count = int(np.count_nonzero(self.phase_of_row >= 0))  # lights come first
        plans = [self.plans[entry.junction_id] for entry, _, _ in rows[: self.light_count]]
        phases = self.phase_of_row[: self.light_count]
        # local phase time of row i: (t + shift[i]) mod cycle[i]; green below green_s
        self._shift = np.array([p.offset_s for p in plans], np.float64) - phases * cfg.phase_s
        self._cycle = np.array([p.cycle_s for p in plans], np.float64)
        self._green_s = cfg.green_s
        self._amber_end_s = cfg.green_s + cfg.amber_s
        self._template = np.full(len(rows), int(LightState.STOP), np.int8)
        self.states(0.0)  # compile (or load) the kernel now, not on the first tick
        for arr in (self.junction_of_row, self.phase_of_row, self.stop_xy_m, self.stop_yaw_rad):
            arr.flags.writeable = False

    def __len__(self) -> int:
        return len(self.signal_id)

    def states(self, time_s: float) -> np.ndarray:
        """(M,) int8 :class:`LightState` per row at simulation time ``time_s``."""
        out = self._template.copy()
        _light_states(float(time_s), self._shift, self._cycle, self._green_s, self._amber_end_s, out)
        return out

    def signal_states(self, time_s: float, states: np.ndarray | None = None) -> SignalStates:
        """The rows and their states at ``time_s`` as the backend seam's :class:`SignalStates`
        (``states``: :meth:`states` of that time when the caller has it already)."""
        state = self.states(time_s) if states is None else states
        return SignalStates(self.signal_id, state, self.stop_xy_m, self.stop_yaw_rad, self.lanes)
