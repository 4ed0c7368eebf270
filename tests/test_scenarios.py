"""The scenario library: files, loader errors, suites, scripted events and closed-loop runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim.embedded import EmbeddedBackend
from sim.errors import ConfigError
from sim.scenario import (
    EVENT_TYPES,
    EventSpec,
    EventTrigger,
    RouteRequest,
    Scenario,
    TrafficConfig,
    scenario_from_dict,
    scenario_to_dict,
)
from sim.scenarios import MissingData, library_names, load_scenario, load_suite, scenario_unavailable
from sim.state import ActorType, EventKind, LightState

QUIET = TrafficConfig(vehicle_count=0, walker_count=0)


@pytest.fixture(scope="module")
def backend():
    return EmbeddedBackend()


# -- files ----------------------------------------------------------------------------


def test_library_has_at_least_20_scenarios_covering_every_event_type():
    names = library_names()
    assert len(names) >= 20
    used = set()
    for name in names:
        try:
            scenario = load_scenario(name)
        except MissingData:
            continue
        used |= {e.type for e in scenario.events}
    assert used == set(EVENT_TYPES)


@pytest.mark.parametrize("name", library_names())
def test_every_library_file_loads_and_round_trips(name):
    try:
        scenario = load_scenario(name)
    except MissingData as exc:
        pytest.skip(str(exc))
    assert scenario.name == name and scenario.description
    assert scenario_from_dict(json.loads(json.dumps(scenario_to_dict(scenario)))) == scenario


def test_suites_list_library_scenarios_and_seeds():
    names = set(library_names())
    train, ev = load_suite("train"), load_suite("eval")
    for suite in (train, ev):
        assert suite.entries and all(n in names and seed >= 0 for n, seed in suite.entries)
    assert not {s for _, s in train.entries} & {s for _, s in ev.entries}  # held-out seeds


def test_carla_town_scenarios_say_why_they_are_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPDRIVE_SHARED", str(tmp_path))
    reason = scenario_unavailable(load_scenario("town03_cut_in"))
    assert reason is not None and "carla:Town03" in reason and str(tmp_path) in reason
    with pytest.raises(MissingData, match="routes_devtest.xml"):
        load_scenario("town01_leaderboard_lead_brake")


# -- bad input: one clear line naming the file and the key ------------------------------

GOOD = """
map: generated:1
route: {random_length_m: 500}
traffic: {vehicles_per_km: 1.0}
events:
  - type: lead_brake
    trigger: {route_m: 50}
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("map: generated:1", "map: nowhere/town.xodr"), "map: no such map file"),
        (
            ("type: lead_brake", "type: lead_brak"),
            "events[0].type: unknown event type 'lead_brak'; valid types: ",
        ),
        (("vehicles_per_km: 1.0", "vehicles_per_km: -1"), "traffic.vehicles_per_km: must be >= 0, got -1"),
        (("traffic:", "trafic:"), "unknown key(s) trafic; allowed: "),
        (
            ("random_length_m: 500", "random_lenght_m: 500"),
            "route: unknown key(s) random_lenght_m; allowed: ",
        ),
        (("route_m: 50", "time_s: -5"), "events[0].trigger.time_s: must be >= 0 (or -1 for none), got -5"),
        (
            ("{route_m: 50}", "{route_m: 50}\n    params: {decel_mps2: 40}"),
            "events[0].params.decel_mps2: must lie",
        ),
    ],
)
def test_bad_files_get_one_line_naming_file_and_key(tmp_path, change, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_time_trigger_is_refused_for_events_at_a_place(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("map: generated:1\nevents:\n  - {type: cut_in, trigger: {time_s: 5}}\n")
    with pytest.raises(ConfigError, match=r"events\[0\]\.trigger\.time_s: cut_in happens at a place"):
        load_scenario(path)


def test_check_command_reports_each_file_and_exits_2(tmp_path, capsys):
    from scripts.cli import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("lead_brake", "teleport"))
    assert main(["scenarios", "check", str(good)]) == 0
    assert main(["scenarios", "check", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert f"{good}: ok" in out and f"{bad}: error:" in out and "unknown event type 'teleport'" in err


def test_list_json_gives_name_and_description(capsys):
    from scripts.cli import main

    assert main(["scenarios", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(library_names())
    assert all(r["description"] for r in rows)


# -- scripted events do what they say -------------------------------------------------------


def _scenario(kind: str, route_m: float = 40.0, length_m: float = 600.0, **params) -> Scenario:
    cls = EVENT_TYPES[kind]
    return Scenario(
        "generated:1",
        route=RouteRequest(random_length_m=length_m),
        traffic=QUIET,
        events=(EventSpec(kind, EventTrigger(route_m=route_m), cls(**params)),),
        name=kind,
    )


def _drive(backend, scenario, seed=0, ticks=2400, until=None):
    """Drive the autopilot; yields states. Stops at the route's end or when ``until`` holds."""
    state = backend.reset(scenario, seed)
    autopilot = backend.make_autopilot()
    yield state
    for _ in range(ticks):
        if backend.monitor.done:
            return
        backend.apply_control(autopilot.act(state))
        state = backend.tick()
        yield state
        if until is not None and until(state):
            return


def _fired(state) -> bool:
    return any(e.kind == EventKind.SCRIPTED for e in state.events)


def _speed_of(state, actor_id) -> float:
    k = np.flatnonzero(state.actors.id == actor_id)
    return float(np.hypot(*state.actors.velocity_mps[k[0]])) if len(k) else math.nan


def _lead_speeds(backend, scenario, seconds_after: float):
    """Speeds of the scripted lead vehicle from when its event fires."""
    speeds, fired_at = [], None
    for state in _drive(backend, scenario):
        if fired_at is None and _fired(state):
            fired_at = state.time_s
            lead = int(backend.traffic.ids[backend.events.scripts[0].i])
            before = _speed_of(state, lead)
        if fired_at is not None:
            speeds.append(_speed_of(state, lead))
            if state.time_s - fired_at > seconds_after:
                break
    assert fired_at is not None, "the event never fired"
    return before, np.array(speeds)


def test_lead_brake_stops_the_lead_vehicle_hard(backend):
    before, speeds = _lead_speeds(backend, _scenario("lead_brake", 80.0, speed_mps=8.0, decel_mps2=7.0), 3.0)
    assert before > 5.0
    stop_tick = int(np.argmax(speeds < 0.05))
    assert speeds[stop_tick] < 0.05 and stop_tick * 0.05 <= before / 7.0 + 0.2  # 7 m/s^2, not comfort braking


def test_slow_lead_crawls(backend):
    before, speeds = _lead_speeds(backend, _scenario("slow_lead", 80.0, speed_mps=2.0, duration_s=20.0), 12.0)
    assert before > 4.0 and speeds[-1] < 2.3


def test_stop_and_go_stops_and_starts_again(backend):
    sc = _scenario("stop_and_go", 60.0, speed_mps=7.0, go_s=4.0, stop_s=3.0, cycles=3)
    _, speeds = _lead_speeds(backend, sc, 12.0)
    stopped = np.flatnonzero(speeds < 0.05)
    assert len(stopped) and speeds[stopped[0] :].max() > 2.0


def test_cut_in_vehicle_moves_from_the_neighbour_lane_into_the_egos(backend):
    offsets, ahead = [], []
    script = None
    for _state in _drive(backend, _scenario("cut_in", 30.0, length_m=700.0)):
        script = script or backend.events.scripts[0]
        if script.phase in ("overtaking", "cutting"):
            offsets.append(float(backend.traffic.offset_m[script.i]))
        if script.phase == "done":
            ahead.append(script.follower.route_s(script_ctx(backend)) - backend.route.s_m[backend.route_hint])
            break
    assert offsets and abs(offsets[0]) > 2.5 and offsets[-1] == pytest.approx(0.0, abs=0.3)
    assert ahead and ahead[0] > 4.0  # in front of the ego, in its lane


def script_ctx(backend):
    return backend.events.ctx


@pytest.mark.parametrize("kind", ["pedestrian_from_occluder", "jaywalker"])
def test_walker_steps_into_the_egos_lane(backend, kind):
    sc = _scenario(kind, 60.0, distance_m=25.0, speed_mps=1.6)
    laterals, collisions = [], 0
    script = None
    for state in _drive(backend, sc):
        script = script or backend.events.scripts[0]
        collisions += sum(e.kind == EventKind.COLLISION_WALKER for e in state.events)
        if script.fired:
            laterals.append(script.lat)
            if script.lat == script.lat1:
                break
    assert laterals and min(abs(v) for v in laterals) < 0.5  # crossed the ego's lane centre
    assert collisions == 0  # and the autopilot let it
    if kind == "pedestrian_from_occluder":
        assert backend.traffic.parked[script.car] and backend.traffic.type[script.car] == ActorType.CAR


def test_lane_obstacle_blocks_the_lane_and_the_autopilot_goes_around(backend):
    states = list(_drive(backend, _scenario("lane_obstacle", 60.0, length_m=400.0)))
    first = states[0]
    static = np.flatnonzero(first.actors.type == ActorType.STATIC)
    assert len(static) == 1
    obstacle = first.actors.xyz_m[static[0], :2]
    route = backend.route.xyz_m[:, :2]
    assert np.min(np.hypot(*(route - obstacle).T)) < 0.5  # in the ego's lane
    kinds = [e.kind for s in states for e in s.events]
    assert EventKind.ROUTE_COMPLETED in kinds and EventKind.COLLISION_STATIC not in kinds


def test_red_light_runner_crosses_on_red_while_the_ego_has_green(backend):
    sc = _scenario("red_light_runner", 40.0, length_m=700.0)
    seen = None
    for state in _drive(backend, sc):
        script = backend.events.scripts[0]
        if script.fired and getattr(script, "phase", "") == "crossing":
            t = backend.traffic
            lane_key = backend.assets.table.keys[int(t.lane[script.i])]
            if lane_key == backend.assets.table.keys[script.lane]:  # inside the junction
                sig = state.signals
                entry = backend.route_view.lane[script.entry_i - 1]
                ego_row = sig.lanes.index(backend.assets.table.keys[entry])
                runner_row = sig.lanes.index(backend.assets.table.keys[script.entry])
                seen = (int(sig.state[ego_row]), int(sig.state[runner_row]), float(t.speed[script.i]))
                break
    assert seen is not None, "the runner never entered the junction"
    assert seen[0] == LightState.GREEN and seen[1] == LightState.RED and seen[2] > 5.0


def test_turn_across_path_vehicle_turns_on_a_lane_conflicting_with_the_egos(backend):
    sc = _scenario("turn_across_path", 40.0, length_m=700.0)
    for _state in _drive(backend, sc):
        script = backend.events.scripts[0]
        if getattr(script, "phase", "") == "crossing" and backend.traffic.lane[script.i] == script.lane:
            break
    else:
        pytest.fail("the turning vehicle never entered the junction")
    jl = backend.assets.junction_lanes
    ego_lanes = {int(j) for j in backend.route_view.jl if j >= 0}
    assert any(jl.conflict[jl.jl_index[script.lane], e] for e in ego_lanes)
    table = backend.assets.table
    yaw = table.yaw[table.pt_off[script.lane] : table.pt_off[script.lane + 1]]
    assert abs(math.remainder(yaw[-1] - yaw[0], 2 * math.pi)) > 0.8  # a turn
    assert backend.traffic.ignore_rules[script.i] and backend.traffic.speed[script.i] > 3.0


def test_dark_light_is_dark_and_the_autopilot_stops_there(backend):
    states = list(_drive(backend, _scenario("dark_light", 20.0, length_m=500.0)))
    script = backend.events.scripts[0]
    assert all((s.signals.state[script.rows] == LightState.OFF).all() for s in states)
    assert script.rows.size and (states[0].signals.state != LightState.OFF).any()  # only that junction
    kinds = [e.kind for s in states for e in s.events]
    assert EventKind.ROUTE_COMPLETED in kinds
    assert script.rows.size and any(s.ego.speed_mps < 0.05 for s in states[100:])  # a full stop


def test_events_are_deterministic(backend):
    sc = _scenario("cut_in", 30.0, length_m=500.0)
    runs = []
    for _ in range(2):
        runs.append([(s.ego.x_m, s.ego.y_m, len(s.actors)) for s in _drive(backend, sc, seed=3, ticks=400)])
    assert runs[0] == runs[1]


# -- closed loop on library scenarios ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lead_brake_town1", "pedestrian_occluder_town2"])
def test_autopilot_drives_library_scenarios_well(backend, name):
    from sim.evaluation import RouteJob, run_route

    scenario = load_scenario(name)
    result = run_route(backend, RouteJob(name, scenario.map, scenario, 0), lambda b: b.make_autopilot())
    assert result.driving_score >= 90.0
    assert not any(
        result.infractions.get(k) for k in ("collision_walker", "collision_vehicle", "collision_static")
    )


@pytest.mark.slow
def test_random_policy_runs_a_library_scenario_to_its_end(backend):
    from sim.evaluation import RandomDriver, RouteJob, run_route

    scenario = load_scenario("cut_in_town1")
    run_route(backend, RouteJob("r", scenario.map, scenario, 0), lambda b: RandomDriver(0))
    assert backend.monitor.done and backend.monitor.end_reason is not None


def test_env_takes_rig_weather_and_seed_from_the_scenario():
    from envs.config import DrivingEnvConfig

    scenario = load_scenario("night_walkers_front3")
    config = DrivingEnvConfig(scenario=scenario)
    assert (config.rig, config.weather, config.seed) == ("front3", "night", scenario.seed)
