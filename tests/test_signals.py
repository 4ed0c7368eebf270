"""Junction geometry, traffic-light phase plans and stop signs (sim.signals) on real maps.

The safety checks recompute which entries conflict from lane geometry alone (a
brute-force segment-intersection test over the movements' centre lines), so they do
not trust the conflict matrix they check.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from sim.errors import ConfigError, MapError
from sim.maps import LaneKey, load_map
from sim.maps.roadmap import RoadMap
from sim.signals import (
    JunctionIndex,
    SignalConfig,
    TrafficSignals,
    Turn,
    find_entries,
    lanes_conflict,
)
from sim.state import LightState, SignalStates
from tests.conftest import needs_shared, shared_map

DT_S = 0.05
RED, YELLOW, GREEN, STOP = (
    int(s) for s in (LightState.RED, LightState.YELLOW, LightState.GREEN, LightState.STOP)
)

# -- a minimal T-junction written here, with an optional stop sign ------------------
# OpenDRIVE frame: arms west (road 1), east (2) and south (3) start at the junction
# and point away from it; lane 1 of each arm drives towards the junction.

_STOP_SIGN = (
    '<signals><signal s="2.0" t="3.5" id="900" name="Stop" dynamic="no" orientation="-" zOffset="0" '
    'type="206" subtype="-1" country="OpenDRIVE" value="-1" height="2" width="0.8" hOffset="0"/></signals>'
)
_CONNECT = '<predecessor id="1"/><successor id="-1"/>'


def _lane_xml(lane_id: int, link: str = "") -> str:
    return (
        f'<lane id="{lane_id}" type="driving" level="false"><link>{link}</link>'
        '<width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane>'
    )


def _road_xml(rid, x, y, hdg, length, *, junction=-1, link="", curvature=0.0, connecting=False, extra=""):
    geometry = f'<arc curvature="{curvature}"/>' if curvature else "<line/>"
    lanes = f"<right>{_lane_xml(-1, _CONNECT)}</right>"
    if not connecting:
        lanes = f"<left>{_lane_xml(1)}</left><right>{_lane_xml(-1)}</right>"
    return (
        f'<road name="r{rid}" length="{length}" id="{rid}" junction="{junction}"><link>{link}</link>'
        f'<planView><geometry s="0" x="{x}" y="{y}" hdg="{hdg}" length="{length}">{geometry}</geometry>'
        f'</planView><lanes><laneSection s="0">{lanes}<center><lane id="0" type="none" level="false"/>'
        f"</center></laneSection></lanes>{extra}</road>"
    )


def t_junction_xodr(*, stop_sign: bool) -> str:
    arm_link = '<predecessor elementType="junction" elementId="100"/>'
    roads = [
        _road_xml(1, -10, 0, math.pi, 50, link=arm_link),
        _road_xml(2, 10, 0, 0.0, 50, link=arm_link),
        _road_xml(3, 0, -10, -math.pi / 2, 50, link=arm_link, extra=_STOP_SIGN if stop_sign else ""),
    ]
    quarter = math.pi / 2 * 10
    connectors = [  # id, from arm, to arm, start x, y, heading, length, curvature (radius 10 m)
        (11, 1, 2, -10, 0, 0.0, 20, 0.0),  # west -> east, straight
        (12, 1, 3, -10, 0, 0.0, quarter, -0.1),  # west -> south, right
        (13, 2, 1, 10, 0, math.pi, 20, 0.0),  # east -> west, straight
        (14, 2, 3, 10, 0, math.pi, quarter, 0.1),  # east -> south, left
        (15, 3, 1, 0, -10, math.pi / 2, quarter, 0.1),  # south -> west, left
        (16, 3, 2, 0, -10, math.pi / 2, quarter, -0.1),  # south -> east, right
    ]
    links = []
    for cid, a, b, x, y, hdg, length, k in connectors:
        link = (
            f'<predecessor elementType="road" elementId="{a}" contactPoint="start"/>'
            f'<successor elementType="road" elementId="{b}" contactPoint="start"/>'
        )
        roads.append(_road_xml(cid, x, y, hdg, length, junction=100, link=link, curvature=k, connecting=True))
        links.append(
            f'<connection id="{cid}" incomingRoad="{a}" connectingRoad="{cid}" contactPoint="start">'
            '<laneLink from="1" to="-1"/></connection>'
        )
    return (
        '<?xml version="1.0" standalone="yes"?><OpenDRIVE><header revMajor="1" revMinor="4" name="t" '
        'version="1" north="0" south="0" east="0" west="0"/>'
        + "".join(roads)
        + '<junction id="100" name="t">'
        + "".join(links)
        + "</junction></OpenDRIVE>"
    )


@pytest.fixture(scope="module")
def t_map() -> RoadMap:
    return RoadMap.from_xodr("t_stop", t_junction_xodr(stop_sign=True))


@pytest.fixture(scope="module")
def t_map_plain() -> RoadMap:
    return RoadMap.from_xodr("t_plain", t_junction_xodr(stop_sign=False))


def _jl(road: int) -> LaneKey:
    return LaneKey(road, 0, -1)


# -- independent geometry for the checks --------------------------------------------


def _segments(road_map: RoadMap, keys) -> np.ndarray:
    """(S, 2, 2) centre-line segments of the lanes, from the RoadMap's own points."""
    return np.concatenate(
        [np.stack([road_map.lanes[k].xyz_m[:-1, :2], road_map.lanes[k].xyz_m[1:, :2]], axis=1) for k in keys]
    )


def _cross(o, a, b):
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (
        b[..., 0] - o[..., 0]
    )


def _polylines_meet(sa: np.ndarray, sb: np.ndarray, touch_m: float = 0.05) -> bool:
    """Whether two sets of segments properly intersect or touch at an end point."""
    a0, a1 = sa[:, None, 0], sa[:, None, 1]
    b0, b1 = sb[None, :, 0], sb[None, :, 1]
    d1, d2 = _cross(a0, a1, b0), _cross(a0, a1, b1)
    d3, d4 = _cross(b0, b1, a0), _cross(b0, b1, a1)
    if np.any((d1 * d2 < 0) & (d3 * d4 < 0)):
        return True
    ends_a, ends_b = sa.reshape(-1, 2), sb.reshape(-1, 2)
    gap = np.hypot(ends_a[:, None, 0] - ends_b[None, :, 0], ends_a[:, None, 1] - ends_b[None, :, 1])
    return bool(gap.min() < touch_m)


def brute_force_entry_conflicts(road_map: RoadMap, entries) -> set[tuple[LaneKey, LaneKey]]:
    """Entry pairs whose movements' centre lines cross, touch or share a lane."""
    segs = {e.lane: _segments(road_map, [k for m in e.movements for k in m.lanes]) for e in entries}
    lanes = {e.lane: {k for m in e.movements for k in m.lanes} for e in entries}
    out = set()
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            if lanes[a.lane] & lanes[b.lane] or _polylines_meet(segs[a.lane], segs[b.lane]):
                out.add((a.lane, b.lane))
                out.add((b.lane, a.lane))
    return out


def _state_table(signals: TrafficSignals, duration_s: float) -> np.ndarray:
    ticks = int(round(duration_s / DT_S)) + 1
    return np.stack([signals.states(k * DT_S) for k in range(ticks)])


def _runs(column: np.ndarray) -> list[tuple[int, int]]:
    """(state, length in ticks) of each run of equal states."""
    edges = np.flatnonzero(np.diff(column)) + 1
    bounds = np.concatenate([[0], edges, [len(column)]])
    return [(int(column[a]), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# -- conflict geometry ---------------------------------------------------------------


def test_t_junction_entries_movements_and_stop_lines(t_map):
    entries = find_entries(t_map)
    assert [e.lane for e in entries] == [LaneKey(1, 0, 1), LaneKey(2, 0, 1), LaneKey(3, 0, 1)]
    turns = {e.lane.road_id: {m.lane.road_id: m.turn for m in e.movements} for e in entries}
    assert turns == {
        1: {11: Turn.STRAIGHT, 12: Turn.RIGHT},
        2: {13: Turn.STRAIGHT, 14: Turn.LEFT},
        3: {15: Turn.LEFT, 16: Turn.RIGHT},
    }
    west = entries[0]
    # CARLA frame flips OpenDRIVE y: the west arm's inbound lane ends at (-10, +1.75), heading +x
    assert west.junction_id == 100
    assert west.stop_xy_m == pytest.approx((-10.0, 1.75), abs=1e-3)
    assert west.stop_yaw_rad == pytest.approx(0.0, abs=1e-6)
    assert west.lane_width_m == pytest.approx(3.5)
    right = next(m for m in west.movements if m.turn == Turn.RIGHT)
    assert right.heading_change_rad == pytest.approx(math.pi / 2, abs=0.02)
    assert right.exit == LaneKey(3, 0, -1)


def test_t_junction_conflicts_by_hand(t_map):
    # W straight x E left, W straight x S left (cross); W straight x S right (merge east);
    # W right x E left (merge south); E straight x S left (merge west); E left x S left (cross)
    expected = {(11, 14), (11, 15), (11, 16), (12, 14), (13, 15), (14, 15)}
    roads = [11, 12, 13, 14, 15, 16]
    found = {
        (a, b) for i, a in enumerate(roads) for b in roads[i + 1 :] if lanes_conflict(t_map, _jl(a), _jl(b))
    }
    assert found == expected
    index = JunctionIndex(t_map)
    assert index.lanes == tuple(_jl(r) for r in roads)
    pairs = {(roads[i], roads[j]) for i, j in zip(*np.nonzero(np.triu(index.conflicts)), strict=True)}
    assert pairs == expected


@needs_shared
def test_fabriksgatan_conflicts_by_hand():
    road_map = shared_map("esmini/fabriksgatan_traffic_lights.xodr")
    entries = {e.lane: e for e in find_entries(road_map)}
    movements = {k: {m.lane.road_id: m.turn.value for m in e.movements} for k, e in entries.items()}
    assert movements == {
        LaneKey(0, 0, 1): {8: "right", 9: "straight", 10: "left"},
        LaneKey(1, 0, 1): {5: "left", 6: "right", 7: "straight"},
        LaneKey(2, 0, -1): {14: "straight", 15: "left", 16: "right"},
        LaneKey(3, 0, -1): {11: "right", 12: "straight", 13: "left"},
    }
    # entries 3/-1 (heading east) and 1/1 (west) face each other, as do 0/1 and 2/-1
    assert lanes_conflict(road_map, _jl(13), _jl(7))  # left turn x opposite straight
    assert lanes_conflict(road_map, _jl(10), _jl(14))
    assert not lanes_conflict(road_map, _jl(11), _jl(6))  # opposite right turns
    assert not lanes_conflict(road_map, _jl(8), _jl(16))
    assert not lanes_conflict(road_map, _jl(11), _jl(13))  # diverging from one entry lane
    assert lanes_conflict(road_map, _jl(11), _jl(14))  # right turn merges with a straight
    with pytest.raises(MapError, match="not a junction connecting lane"):
        lanes_conflict(road_map, LaneKey(3, 0, -1), _jl(7))


@needs_shared
def test_lanes_conflict_agrees_with_the_index_matrix():
    road_map = shared_map("esmini/fabriksgatan_traffic_lights.xodr")
    index = JunctionIndex(road_map)
    got = np.array([[lanes_conflict(road_map, a, b) for b in index.lanes] for a in index.lanes])
    np.testing.assert_array_equal(got, index.conflicts)
    assert got.sum() == 2 * 29


@needs_shared
@pytest.mark.parametrize(
    "relpath, junctions, lanes, entries, pairs",
    [
        ("carla/Town01.xodr", 12, 72, 36, 72),  # 12 T-junctions of 6 lanes, 6 conflicting pairs each
        ("carla/Town03.xodr", 34, 683, 142, 817),
        ("esmini/multi_lane_3way_intersection.xodr", 1, 18, 9, 54),
    ],
)
def test_junction_index_structure(relpath, junctions, lanes, entries, pairs):
    road_map = shared_map(relpath)
    index = JunctionIndex(road_map)
    c = index.conflicts
    assert len(index.junction_range) == junctions
    assert len(index.lanes) == lanes == c.shape[0] == c.shape[1]
    assert len(index.entries) == entries
    assert int(c.sum()) == 2 * pairs
    assert not c.flags.writeable
    np.testing.assert_array_equal(c, c.T)
    assert not c.diagonal().any()
    same_junction = index.junction_of_lane[:, None] == index.junction_of_lane[None, :]
    assert not (c & ~same_junction).any()
    for jid, (lo, hi) in index.junction_range.items():
        assert (index.junction_of_lane[lo:hi] == jid).all()
    for i, key in enumerate(index.lanes):
        assert index.lane_index[key] == i
        for succ in road_map.lanes[key].successors:
            if succ in index.lane_index:
                assert not c[i, index.lane_index[succ]]  # a lane and its successor follow
    reached = index.entry_of_lane >= 0
    assert reached.mean() > 0.9
    for i in np.flatnonzero(reached):
        entry = index.entries[index.entry_of_lane[i]]
        assert entry.junction_id == index.junction_of_lane[i]
        assert any(index.lanes[i] in m.lanes for m in entry.movements)


@needs_shared
@pytest.mark.parametrize("relpath", ["carla/Town03.xodr", "carla/Town04.xodr"])
def test_every_crossing_of_lanes_from_different_entries_is_a_conflict(relpath):
    road_map = shared_map(relpath)
    index = JunctionIndex(road_map)
    crossings = 0
    for lo, hi in index.junction_range.values():
        keys = index.lanes[lo:hi]
        segs = [_segments(road_map, [k]) for k in keys]
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                ei, ej = index.entry_of_lane[lo + i], index.entry_of_lane[lo + j]
                if ei < 0 or ej < 0 or ei == ej:
                    continue
                a, b = segs[i], segs[j]
                d1, d2 = (
                    _cross(a[:, None, 0], a[:, None, 1], b[None, :, 0]),
                    _cross(a[:, None, 0], a[:, None, 1], b[None, :, 1]),
                )
                d3, d4 = (
                    _cross(b[None, :, 0], b[None, :, 1], a[:, None, 0]),
                    _cross(b[None, :, 0], b[None, :, 1], a[:, None, 1]),
                )
                if np.any((d1 * d2 < 0) & (d3 * d4 < 0)):
                    crossings += 1
                    assert index.conflicts[lo + i, lo + j], (keys[i], keys[j])
    assert crossings > 100


@needs_shared
def test_entries_inferred_where_carla_drops_incoming_links():
    # carla's topology gives this junction's connecting lanes no predecessors at all
    road_map = shared_map("esmini/multi_lane_3way_intersection.xodr")
    assert all(not road_map.lanes[k].predecessors for j in road_map.junctions.values() for k in j.lanes)
    entries = find_entries(road_map)
    assert [e.lane for e in entries[:3]] == [LaneKey(0, 0, -3), LaneKey(0, 0, -2), LaneKey(0, 0, -1)]
    first = entries[0]
    assert {m.lane: m.turn for m in first.movements} == {
        LaneKey(100, 0, -3): Turn.RIGHT,
        LaneKey(101, 0, -3): Turn.LEFT,
    }
    assert first.stop_xy_m == pytest.approx((100.0, 7.5), abs=1e-3)


# -- lights: safety, liveness, timing ---------------------------------------------------

SAFETY_MAPS = [
    "carla/Town01.xodr",
    "carla/Town04.xodr",
    "carla/Town03.xodr",
    "esmini/fabriksgatan_traffic_lights.xodr",
    "esmini/multi_lane_3way_intersection.xodr",
]


def assert_safe_plans(road_map: RoadMap, signals: TrafficSignals) -> None:
    """Two full cycles at 20 Hz: conflicting entries never green/amber together, every
    entry green once per cycle, GREEN -> YELLOW -> RED with the configured durations,
    and the whole junction red for all_red_s before any green."""
    cfg = signals.config
    assert signals.plans, "no signalised junction"
    longest = max(p.cycle_s for p in signals.plans.values())
    table = _state_table(signals, 2 * longest)
    active = (table == GREEN) | (table == YELLOW)
    entries = {e.lane: e for e in signals.junctions.entries}
    for jid, plan in signals.plans.items():
        rows = np.flatnonzero(signals.junction_of_row == jid)
        members = [entries[signals.lanes[r]] for r in rows]
        assert sorted(k for phase in plan.phases for k in phase) == sorted(e.lane for e in members)
        conflicts = brute_force_entry_conflicts(road_map, members)
        for ra in rows:
            for rb in rows:
                if (signals.lanes[ra], signals.lanes[rb]) in conflicts:
                    assert not (active[:, ra] & active[:, rb]).any(), (
                        jid,
                        signals.lanes[ra],
                        signals.lanes[rb],
                    )
        _assert_row_timing(table, rows, plan.cycle_s, cfg)
        _assert_all_red_before_green(table, rows, cfg)


def _assert_row_timing(table, rows, cycle_s, cfg) -> None:
    per_cycle = int(round(cycle_s / DT_S))
    for r in rows:
        column = table[:, r]
        for c in range(2):  # liveness: green at least once in each cycle
            assert (column[c * per_cycle : (c + 1) * per_cycle] == GREEN).any()
        runs = _runs(column)[1:-1]  # the first and last runs are cut by the window
        expected = {GREEN: cfg.green_s, YELLOW: cfg.amber_s, RED: cycle_s - cfg.green_s - cfg.amber_s}
        following = {GREEN: YELLOW, YELLOW: RED, RED: GREEN}
        assert len(runs) >= 3
        for (state, ticks), (nxt, _) in zip(runs, runs[1:] + [(None, 0)], strict=True):
            assert abs(ticks * DT_S - expected[state]) <= DT_S + 1e-9, (state, ticks)
            assert nxt is None or nxt == following[state]


def _assert_all_red_before_green(table, rows, cfg) -> None:
    block = table[:, rows]
    onsets = np.argwhere((block[1:] == GREEN) & (block[:-1] != GREEN)) + [1, 0]
    need = int(round(cfg.all_red_s / DT_S)) - 1  # one tick of slack for float rounding
    checked = 0
    for tick, _ in onsets:
        if tick - need - 1 < 0:
            continue
        assert (block[tick - need - 1 : tick - 1] == RED).all(), tick
        checked += 1
    assert checked > 0


@needs_shared
@pytest.mark.parametrize("relpath", SAFETY_MAPS)
def test_phase_plans_are_safe_live_and_timed(relpath):
    road_map = shared_map(relpath)
    assert_safe_plans(road_map, TrafficSignals(road_map, SignalConfig(), seed=3))


@needs_shared
def test_phase_timing_follows_the_config():
    road_map = shared_map("esmini/fabriksgatan_traffic_lights.xodr")
    cfg = SignalConfig(green_s=5.0, amber_s=2.0, all_red_s=1.5)
    signals = TrafficSignals(road_map, cfg, seed=0)
    assert signals.plans[4].cycle_s == pytest.approx(4 * 8.5)  # four entries, all conflicting
    assert_safe_plans(road_map, signals)


def test_generated_town_plans_are_safe():
    pytest.importorskip("sim.maps.generator")
    road_map = load_map("generated:1")
    signals = TrafficSignals(road_map, SignalConfig(), seed=0)
    assert signals.light_count > 0
    assert not any(s.startswith("gen:") for s in signals.signal_id)  # every head of the town is found
    assert_safe_plans(road_map, signals)


# -- where lights and signs come from -------------------------------------------------


@needs_shared
def test_town01_map_lights_face_their_entries():
    road_map = shared_map("carla/Town01.xodr")
    signals = TrafficSignals(road_map, SignalConfig(), seed=0)
    assert len(signals) == signals.light_count == 36
    assert len(signals.plans) == 12
    assert all(len(p.phases) == 3 for p in signals.plans.values())  # T-junctions: each pair conflicts
    assert not any(s.startswith("gen:") for s in signals.signal_id)
    assert len(set(signals.signal_id)) == 36
    # heads on the near right corner, 0-4 m before the stop line
    for sid, lane in [("393", LaneKey(9, 0, -1)), ("395", LaneKey(10, 0, 1)), ("394", LaneKey(25, 0, -1))]:
        assert signals.signal_id[signals.controlled_index[lane]] == sid


@needs_shared
def test_town04_far_side_heads_control_their_own_junction():
    road_map = shared_map("carla/Town04.xodr")
    signals = TrafficSignals(road_map, SignalConfig(), seed=0)
    # head 1614 stands 17 m past the stop line of (1, 0, -1) at junction 335, and 7 m
    # before the stop line of (2, 0, -1) at junction 459: it controls the first only
    assert signals.signal_id[signals.controlled_index[LaneKey(1, 0, -1)]] == "1614"
    assert LaneKey(2, 0, -1) not in signals.controlled_index
    assert signals.signal_id[signals.controlled_index[LaneKey(3, 0, -1)]] == "1621"
    # head 1647 stands 54 m from its stop lines, past a wide junction: its signal
    # references on the through lanes' connecting road tie it to their entries
    for lane_id in (3, 4, 5, 6):
        assert signals.signal_id[signals.controlled_index[LaneKey(41, 0, lane_id)]] == "1647"
    assert len(signals.plans) == 12
    assert len(signals) == 50
    assert not any(s.startswith("gen:") for s in signals.signal_id)


@needs_shared
def test_town03_without_signals_gets_generated_lights():
    road_map = shared_map("carla/Town03.xodr")
    assert not road_map.signals
    signals = TrafficSignals(road_map, SignalConfig(), seed=0)
    assert len(signals) == signals.light_count == 99
    assert len(signals.plans) == 20
    assert all(s.startswith("gen:") for s in signals.signal_id)
    for jid in signals.plans:
        assert signals.junctions.entry_roads(jid) >= 3
    fewer = TrafficSignals(
        road_map, SignalConfig(min_entries_for_light=4), seed=0, junctions=signals.junctions
    )
    assert 0 < len(fewer.plans) < len(signals.plans)
    never = TrafficSignals(
        road_map, SignalConfig(generate_lights="never"), seed=0, junctions=signals.junctions
    )
    assert len(never) == 0
    assert never.states(1.0).shape == (0,) and never.states(1.0).dtype == np.int8


@needs_shared
def test_fabriksgatan_one_map_head_signalises_the_whole_junction():
    road_map = shared_map("esmini/fabriksgatan_traffic_lights.xodr")
    signals = TrafficSignals(road_map, SignalConfig(), seed=0)
    assert signals.signal_id[signals.controlled_index[LaneKey(3, 0, -1)]] == "1"
    assert sorted(signals.signal_id) == ["1", "gen:4:0:0:1", "gen:4:1:0:1", "gen:4:2:0:-1"]
    assert len(signals.plans[4].phases) == 4


def test_stop_sign_controls_its_entry(t_map):
    assert [(s.id, s.kind) for s in t_map.signals] == [("900", "stop")]
    signals = TrafficSignals(t_map, SignalConfig(), seed=0)
    assert signals.signal_id == ("900",)
    assert signals.lanes == (LaneKey(3, 0, 1),)
    assert signals.controlled_index == {LaneKey(3, 0, 1): 0}
    assert signals.light_count == 0 and not signals.plans
    for t in (0.0, 7.3, 1234.5):
        np.testing.assert_array_equal(signals.states(t), [STOP])
    state = signals.signal_states(3.0)
    assert isinstance(state, SignalStates)
    np.testing.assert_allclose(state.stop_xy_m, [[1.75, 10.0]], atol=1e-3)
    assert state.stop_yaw_rad[0] == pytest.approx(-math.pi / 2, abs=1e-6)
    # lights are never generated where the map has a stop sign
    always = TrafficSignals(t_map, SignalConfig(generate_lights="always"), seed=0)
    assert always.signal_id == ("900",)


def test_generated_lights_at_a_plain_t_junction(t_map_plain):
    signals = TrafficSignals(t_map_plain, SignalConfig(), seed=0)
    assert signals.light_count == 3
    assert len(signals.plans[100].phases) == 3  # every pair of the T's entries conflicts
    assert_safe_plans(t_map_plain, signals)
    assert len(TrafficSignals(t_map_plain, SignalConfig(min_entries_for_light=4), seed=0)) == 0


# -- determinism, config, API, speed -------------------------------------------------


@needs_shared
def test_seeded_offsets():
    road_map = shared_map("carla/Town01.xodr")
    index = JunctionIndex(road_map)
    a = TrafficSignals(road_map, SignalConfig(), seed=7, junctions=index)
    b = TrafficSignals(road_map, SignalConfig(), seed=7, junctions=index)
    c = TrafficSignals(road_map, SignalConfig(), seed=8, junctions=index)
    times = np.arange(0.0, 120.0, 0.35)
    ta, tb, tc = (np.stack([s.states(t) for t in times]) for s in (a, b, c))
    np.testing.assert_array_equal(ta, tb)
    assert not np.array_equal(ta, tc)
    assert len({round(p.offset_s, 6) for p in a.plans.values()}) == len(a.plans)
    flat = TrafficSignals(road_map, SignalConfig(random_offsets=False), seed=7, junctions=index)
    assert all(p.offset_s == 0.0 for p in flat.plans.values())
    assert (flat.states(0.0)[flat.phase_of_row == 0] == GREEN).all()
    assert (flat.states(0.0)[flat.phase_of_row > 0] == RED).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"green_s": -1.0}, "green_s must not be negative"),
        ({"green_s": 0.0}, "green_s must be positive"),
        ({"amber_s": -0.5}, "amber_s must not be negative"),
        ({"all_red_s": -2.0}, "all_red_s must not be negative"),
        ({"all_red_s": float("nan")}, "all_red_s must be a finite number"),
        ({"generate_lights": "sometimes"}, "generate_lights must be one of auto, always, never"),
        ({"min_entries_for_light": 0}, "min_entries_for_light must be an integer >= 1"),
        ({"min_entries_for_light": 2.5}, "min_entries_for_light must be an integer >= 1"),
        ({"random_offsets": "yes"}, "random_offsets must be True or False"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SignalConfig(**kwargs)


def test_bad_seed_and_ratio_raise(t_map):
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        TrafficSignals(t_map, SignalConfig(), seed=-1)
    with pytest.raises(ConfigError, match="clearance_ratio"):
        JunctionIndex(t_map, clearance_ratio=0.0)


@needs_shared
def test_signal_states_rows_and_states_per_tick_cost():
    road_map = shared_map("carla/Town03.xodr")
    signals = TrafficSignals(road_map, SignalConfig(), seed=0)
    state = signals.signal_states(12.34)
    assert len(state) == len(signals) == 99
    np.testing.assert_array_equal(state.state, signals.states(12.34))
    for row, key in enumerate(state.lanes):
        lane = road_map.lanes[key]
        np.testing.assert_allclose(state.stop_xy_m[row], lane.xyz_m[-1, :2])
        assert state.stop_yaw_rad[row] == pytest.approx(lane.yaw_rad[-1])
    out = signals.states(5.0)
    out[:] = STOP  # callers own the array they get
    assert (signals.states(5.0) != STOP).all()
    calls = 5000
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for k in range(calls):
            signals.states(k * DT_S)
        best = min(best, (time.perf_counter() - start) / calls)
    assert best < 20e-6, f"states() took {best * 1e6:.1f} us for 99 rows"
