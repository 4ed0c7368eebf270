"""Takeovers: time-to-collision, the autopilot gate's triggers and hand-backs, human
takeovers, shadow mode, and a gated run whose catalog matches the events written."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from envs.catalog import Catalog
from envs.drivers import AutopilotPolicy, RandomPolicy
from envs.recorder import RecorderWrapper
from envs.store import read_header
from envs.takeover import ShadowThresholds, ShadowWrapper, TakeoverWrapper, time_to_collision
from envs.world import SharedAssets
from scripts.cli import main as cli
from sim.errors import ConfigError
from sim.state import Actors, EgoState, SignalStates, WorldState
from tests.recording import SMALL, small_env


@pytest.fixture(scope="module")
def assets() -> SharedAssets:
    return SharedAssets()


def _state(speed_mps: float, actor_xyz, actor_vel=(0.0, 0.0), actor_yaw=0.0) -> WorldState:
    ego = EgoState(0.0, 0.0, 0.0, 0.0, speed_mps, 0.0, 0.0, length_m=4.5, width_m=2.0)
    actors = Actors(
        np.array([1]),
        np.array([0], np.int8),
        np.array([actor_xyz], float),
        np.array([actor_yaw]),
        np.array([[2.25, 1.0, 0.75]]),
        np.array([actor_vel], float),
    )
    return WorldState(0, 0.0, ego, actors, SignalStates.empty())


def test_time_to_collision_of_boxes_at_constant_velocity():
    # ego front (2.25 + 0.3 margin) meets the parked car's rear (20 - 2.25 - 0.3) after 14.9 m at 10 m/s
    assert time_to_collision(_state(10.0, (20.0, 0.0, 0.0)), 3.0) == pytest.approx(1.5)
    assert time_to_collision(_state(10.0, (20.0, 0.0, 0.0), actor_vel=(5.0, 0.0)), 2.9) == math.inf  # 2.98 s
    assert time_to_collision(_state(10.0, (20.0, 0.0, 0.0), actor_vel=(5.0, 0.0)), 4.0) == pytest.approx(3.0)
    assert time_to_collision(_state(10.0, (-20.0, 0.0, 0.0)), 3.0) == math.inf  # behind
    assert time_to_collision(_state(10.0, (20.0, 4.0, 0.0)), 3.0) == math.inf  # the next lane
    assert time_to_collision(_state(10.0, (20.0, 0.0, 6.0)), 3.0) == math.inf  # a bridge above
    # a car crossing from the right reaches the ego's path as the ego gets there
    crossing = _state(10.0, (15.0, 15.0, 0.0), actor_vel=(0.0, -10.0), actor_yaw=-math.pi / 2)
    assert 0.8 < time_to_collision(crossing, 3.0) < 1.6


def _drive(env, policy, seed: int, max_steps: int):
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    infos, prev = [], info
    for _ in range(max_steps):
        obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
        infos.append((prev, info))
        prev = info
        if terminated or truncated:
            break
    return infos


def test_the_autopilot_itself_triggers_no_takeover(assets):
    env = TakeoverWrapper(small_env(assets), gate="autopilot")
    for seed in (3, 5):
        infos = _drive(env, AutopilotPolicy(), seed, 3000)
        assert infos[-1][1]["termination_reason"].value == "route_completed"
        assert all(i["driver"] == "policy" and "intervention" not in i for _, i in infos)
    env.close()


def test_gate_takes_over_from_a_random_policy_and_hands_back(assets):
    env = TakeoverWrapper(small_env(assets), gate="autopilot", context_s=2.0)
    infos = _drive(env, RandomPolicy(0, accel_range=(-0.2, 1.0)), 1, 1500)
    starts = [i["intervention"] for _, i in infos if "intervention" in i]
    backs = [i["hand_back"] for _, i in infos if "hand_back" in i]
    assert starts and backs
    for start in starts:
        assert start["driver"] == "autopilot" and start["trigger"] in (
            "ttc",
            "red_light",
            "route_deviation",
            "lane_departure",
        )
        assert start["context_start_step"] == max(0, start["step"] - 40)
    assert backs[0]["start_step"] == starts[0]["step"] < backs[0]["step"]
    for k, (before, info) in enumerate(infos):
        if info["driver"] == "autopilot":  # the autopilot's action for the state acted in
            assert np.array_equal(info["executed_action"], before["autopilot_action"])
        else:
            assert np.array_equal(info["executed_action"], info["policy_action"])
        assert info["executed_action"].dtype == np.float32
        if "intervention" in info:
            assert info["intervention"]["step"] == k
    assert len(env.recent()) == 41
    env.close()


def test_a_human_takes_over_and_hands_back(assets):
    env = TakeoverWrapper(small_env(assets))
    obs, info = env.reset(seed=2)
    for _ in range(5):
        obs, _, _, _, info = env.step(np.array([0.0, 0.5], np.float32))
    env.take_over("human", "button")
    with pytest.raises(RuntimeError, match="set_override"):
        env.step(np.array([0.0, 0.5], np.float32))
    env.set_override([0.2, -1.0])
    _, _, _, _, info = env.step(np.array([0.0, 0.5], np.float32))
    assert info["driver"] == "human" and info["intervention"]["trigger"] == "button"
    assert info["intervention"]["step"] == 5 and info["intervention"]["context_start_step"] == 0
    assert info["executed_action"].tolist() == pytest.approx([0.2, -1.0])
    assert info["policy_action"].tolist() == [0.0, 0.5]
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert "intervention" not in info and info["executed_action"].tolist() == pytest.approx([0.2, -1.0])
    env.hand_back()
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["driver"] == "policy" and info["hand_back"] == {
        "step": 7,
        "start_step": 5,
        "trigger": "button",
    }
    with pytest.raises(ConfigError, match="autopilot' or 'human"):
        env.take_over("robot", "x")
    with pytest.raises(ValueError, match="finite"):
        env.set_override([math.nan, 0.0])
    with pytest.raises(ConfigError, match="gate"):
        TakeoverWrapper(small_env(assets), gate="pedestrian")
    env.close()


def test_shadow_mode_logs_disagreements_as_events(assets, tmp_path):
    base = small_env(assets)
    env = RecorderWrapper(ShadowWrapper(base, RandomPolicy(0)), tmp_path, policy_id="random-shadow")
    pilot = AutopilotPolicy()
    obs, info = env.reset(seed=3)
    starts = 0
    for _ in range(60):
        obs, _, _, _, info = env.step(pilot.act(obs, info))
        starts += "disagreement" in info
        assert np.array_equal(info["executed_action"], info["executed_action"].astype(np.float32))
    env.close()
    events = read_header(env.last_path)["events"]
    assert starts >= 1 and len(events) == starts
    assert all(
        e["kind"] == "disagreement" and e["trigger"] in ("shadow_steer", "shadow_accel") for e in events
    )
    # a shadow that agrees never disagrees
    agree = ShadowWrapper(small_env(assets), AutopilotPolicy(), ShadowThresholds(steer=1e-6, accel=1e-6))
    obs, info = agree.reset(seed=3)
    for _ in range(30):
        obs, _, _, _, info = agree.step(pilot.act(obs, info))
        assert not info["shadow_disagrees"]
    agree.close()


@pytest.mark.slow
def test_gated_random_run_catalog_matches_the_events_written(assets, tmp_path, capsys):
    from scripts.run_cmd import run_episodes

    kwargs = {**SMALL, "assets": assets, "route_length_m": (80.0, 120.0)}
    out = run_episodes(
        kwargs, policy_spec="random-forward", takeover="autopilot", episodes=5, seed=10, store=tmp_path,
        progress=False,
    )  # fmt: skip
    written = out["interventions_written"]
    assert sum(written.values()) >= 1
    assert out["interventions_in_catalog"] == written and out["files_in_catalog"] == 5
    catalog = Catalog.scan(tmp_path)
    for trigger, count in written.items():
        events = catalog.interventions(trigger)
        assert len(events) == count
        assert all(e["end_step"] >= e["step"] for e in events)
    assert cli(["store", "summary", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 5 and summary["interventions"] == written


def test_run_command_rejects_bad_input_in_one_line(tmp_path, capsys):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("map: generated:0\nroute: {random_length_m: -5}\n")
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"map": "generated:0", "wheels": 3}')
    cases = [
        (["--scenario", str(tmp_path / "missing.yaml")], "missing.yaml"),
        (["--scenario", str(bad_yaml)], "random_length_m"),
        (["--scenario", str(unknown)], "wheels"),
        (["--episodes", "0"], "--episodes"),
        (["--route-length", "200", "100"], "--route-length"),
        (["--policy", "nonsense"], "unknown policy"),
        (["--policy", str(tmp_path / "missing.ckpt")], "no such checkpoint"),
    ]
    for extra, needle in cases:
        assert cli(["run", "--store", str(tmp_path / "s"), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("loopdrive: error:") and needle in err and "Traceback" not in err


def test_on_map_replans_a_keypoint_route_as_a_random_one():
    from scripts.run_cmd import on_map
    from sim.scenario import RouteRequest, Scenario

    sc = Scenario(
        "Town01.xodr", RouteRequest(((0.0, 0.0, 0.0), (30.0, 40.0, 0.0), (30.0, 100.0, 0.0))), name="x"
    )
    moved = on_map(sc, "generated:4")
    assert moved.map == "generated:4" and moved.route.is_random and moved.route.random_length_m == 110.0
    assert moved.name == "x" and moved.traffic == sc.traffic
