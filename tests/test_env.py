"""The driving env: Gymnasium and SB3 conformance, seeded determinism, actions, endings,
rewards, info and rendering."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import envs
from envs.config import DrivingEnvConfig, RewardConfig
from envs.driving import DrivingEnv
from envs.world import EVENT_TERMS, REWARD_TERMS, DrivingWorld, SharedAssets, TerminationReason
from sim.errors import ConfigError
from sim.infractions import InfractionConfig
from sim.maps.planner import RoadOption
from sim.scenario import TrafficConfig
from sim.scoring import PENALTY
from sim.state import Event, EventKind, WorldState
from tests.conftest import ROUTES, needs_shared

#: small and quick: tiny cameras, short routes, light traffic
SMALL = {
    "camera_width_px": 32,
    "camera_height_px": 16,
    "route_length_m": (150.0, 250.0),
    "traffic": TrafficConfig(vehicle_count=8, walker_count=8),
}


@pytest.fixture(scope="module")
def assets() -> SharedAssets:
    """Map assets shared by every env of this module (a map costs seconds to build)."""
    return SharedAssets()


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


@pytest.fixture(autouse=True, scope="module")
def _one_render_thread():
    """One numba thread for the camera kernel: waking a second thread costs milliseconds
    per call on a busy machine, more than rendering these tiny images."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def make(assets: SharedAssets, env_id: str = "loopdrive/Drive-v0", **kwargs) -> gym.Env:
    return gym.make(env_id, assets=assets, **{**SMALL, **kwargs})


def rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 0):
    """Observations, rewards and flags of ``steps`` random actions after ``reset(seed)``."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        action = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 1.0)], np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- API conformance ------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(envs.ENV_IDS))
def test_gymnasium_check_env_passes(env_id, assets):
    env = make(assets, env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
    complaints = [str(w.message) for w in caught if "gymnasium" in w.filename]
    assert not complaints  # the checker's warnings are failures too
    env.close()


@pytest.mark.parametrize("env_id", sorted(envs.ENV_IDS))
def test_sb3_check_env_passes(env_id, assets):
    from stable_baselines3.common.env_checker import check_env

    env = make(assets, env_id)
    with warnings.catch_warnings():
        # SB3 recommends flattening any 4-D Box; the camera stack is 4-D by design
        warnings.filterwarnings("ignore", message=".*unconventional shape.*")
        check_env(env.unwrapped, warn=True)
    env.close()


def test_spaces_and_observation_layout(assets):
    env = make(assets, "loopdrive/Drive-front3-v0")
    space = env.observation_space
    assert space["camera"].shape == (3, 16, 32, 3) and space["camera"].dtype == np.uint8
    assert space["route"].shape == (64, 64, 2) and space["route"].dtype == np.uint8
    assert space["speed"].shape == (1,) and space["speed"].high[0] == 60.0
    assert space["command"] == gym.spaces.Discrete(7)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    obs, info = env.reset(seed=5)
    assert obs in space
    ego = info["state"].ego
    assert obs["speed"][0] == np.float32(ego.speed_mps)
    assert obs["route"][45:52, 29:36, 1].any()  # the route starts at the ego (row 48, column 32)
    assert obs["command"] in {int(o) for o in RoadOption if o != RoadOption.VOID}
    assert 0 <= obs["command_distance_m"][0] <= 1000
    assert obs["camera"].std() > 5  # a picture, not a blank
    env.close()


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_and_actions_give_bit_identical_observations(assets):
    env = make(assets)
    first = rollout(env, 21, 120)
    again = rollout(env, 21, 120)  # the same env, reset with the same seed
    fresh = make(SharedAssets())  # a new env that built everything itself
    third = rollout(fresh, 21, 120)
    assert len(first) == len(again) == len(third) > 50
    for a, b, c in zip(first, again, third, strict=True):
        assert same(a, b) and same(a, c)
    other = rollout(env, 22, 5)
    assert not same(first[0]["route"], other[0]["route"])
    env.close()
    fresh.close()


def test_seedless_resets_follow_the_first_seed(assets):
    env = make(assets)
    env.reset(seed=3)
    seeds = [env.reset()[1]["episode_seed"] for _ in range(2)]
    env.reset(seed=3)
    assert [env.reset()[1]["episode_seed"] for _ in range(2)] == seeds
    configured = make(assets, seed=3)
    assert configured.reset()[1]["episode_seed"] == 3
    env.close()


# -- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(3, np.float32), "shape"),
        (np.zeros((1, 2), np.float32), "shape"),
        (np.array([0, 1]), "dtype"),
        (np.array([np.nan, 0.0], np.float32), "finite"),
        (np.array([0.0, np.inf]), "finite"),
    ],
)
def test_bad_actions_raise_a_clear_value_error(assets, action, message):
    env = make(assets)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.unwrapped.step(action)
    env.close()


# -- endings and rewards ------------------------------------------------------------------


def drive_autopilot(env: gym.Env, seed: int, limit: int = 4000):
    """Drive the info's autopilot action until the episode ends: (info, term totals, flags)."""
    obs, info = env.reset(seed=seed)
    totals = dict.fromkeys(REWARD_TERMS, 0.0)
    for _ in range(limit):
        obs, reward, terminated, truncated, info = env.step(info["autopilot_action"])
        assert math.isclose(reward, math.fsum(info["reward_terms"].values()), abs_tol=1e-9)
        for name, value in info["reward_terms"].items():
            totals[name] += value
        if terminated or truncated:
            return info, totals, terminated, truncated
    raise AssertionError("the autopilot did not finish its route")


def test_autopilot_completes_a_route_terminated_with_its_progress_rewarded(assets):
    # 400 m: the autopilot halts ~2.5 m before the goal, and completion needs 99 %
    env = make(assets, route_length_m=(400.0, 400.0), traffic=TrafficConfig(vehicle_count=0, walker_count=0))
    info, totals, terminated, truncated = drive_autopilot(env, seed=4)
    assert terminated and not truncated
    assert info["termination_reason"] is TerminationReason.ROUTE_COMPLETED
    assert info["score"]["route_completion"] == 100.0 and info["score"]["driving_score"] > 90
    monitor = env.unwrapped.world.backend.monitor
    assert totals["progress"] == pytest.approx(monitor.progress_m)  # 1 per metre
    assert monitor.progress_m > 0.99 * monitor.length_m
    assert -0.05 * monitor.length_m < totals["jerk"] + totals["steer_rate"] < 0.0  # comfort: small
    env.close()


def run_until_end(env: gym.Env, action: np.ndarray, limit: int):
    """Steps (counted) of one action until the episode ends: (steps, info, terminated, truncated)."""
    for step in range(1, limit + 1):
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return step, info, terminated, truncated
    raise AssertionError(f"the episode did not end within {limit} steps")


def test_time_limit_and_standing_still_truncate(assets):
    brake = np.array([0.0, -1.0], np.float32)
    env = make(assets, infractions=InfractionConfig(timeout_base_s=2.0, timeout_s_per_m=0.0))
    env.reset(seed=1)
    steps, info, terminated, truncated = run_until_end(env, brake, 100)
    assert truncated and not terminated and steps == 40  # 2 s at 20 Hz
    assert info["termination_reason"] is TerminationReason.TIME_LIMIT
    assert info["reward_terms"]["route_timeout"] == RewardConfig().route_timeout
    blocked = make(assets, infractions=InfractionConfig(blocked_s=1.0))
    blocked.reset(seed=1)
    steps, info, terminated, truncated = run_until_end(blocked, brake, 100)
    assert truncated and not terminated and steps == 20
    assert info["termination_reason"] is TerminationReason.AGENT_BLOCKED
    env.close()
    blocked.close()


def test_leaving_the_route_terminates(assets):
    env = make(assets, traffic=TrafficConfig(vehicle_count=0, walker_count=0))
    env.reset(seed=2)
    for _ in range(30):  # turn off the road, then drive straight away from the route
        env.step(np.array([0.6, 0.5], np.float32))
    _, info, terminated, _ = run_until_end(env, np.array([0.0, 0.6], np.float32), 2000)
    assert terminated and info["termination_reason"] is TerminationReason.ROUTE_DEVIATION
    assert info["state"].ego.speed_mps > 1.0
    env.close()


def _collision_state(world: DrivingWorld) -> WorldState:
    state = world.backend.state()
    hit = Event(EventKind.COLLISION_VEHICLE, state.time_s, (0.0, 0.0, 0.0), 7, 0)
    return WorldState(state.tick, state.time_s, state.ego, state.actors, state.signals, (hit,))


@pytest.mark.parametrize("terminate", [True, False])
def test_a_collision_terminates_when_configured_and_costs_its_penalty(assets, terminate):
    world = DrivingWorld(DrivingEnvConfig(**SMALL, terminate_on_collision=terminate), assets)
    world.reset(5, np.random.default_rng(0))
    state = _collision_state(world)
    expected = TerminationReason.COLLISION if terminate else TerminationReason.NONE
    assert world._termination(state) is expected
    assert world._reward_terms(state)["collision_vehicle"] == RewardConfig().collision_vehicle


def test_reward_terms_are_named_and_weighted():
    assert set(EVENT_TERMS) == set(PENALTY)  # every Leaderboard penalty has its term
    named = set(EVENT_TERMS.values()) | {"progress", "outside_lanes", "jerk", "steer_rate"}
    assert set(REWARD_TERMS) == named
    default = RewardConfig()
    for kind, name in EVENT_TERMS.items():  # -100 x (1 - Leaderboard factor)
        assert getattr(default, name) == pytest.approx(-100.0 * (1.0 - PENALTY[kind]))
    with pytest.raises(ConfigError):
        RewardConfig(collision_walker=5.0)
    with pytest.raises(ConfigError):
        RewardConfig(progress_per_m=math.nan)


def test_reward_weights_scale_their_terms(assets):
    base = make(assets)
    doubled = make(assets, reward=RewardConfig(progress_per_m=2.0, jerk=0.0))
    action = np.array([0.0, 1.0], np.float32)
    base.reset(seed=8)
    doubled.reset(seed=8)
    for _ in range(30):
        _, _, _, _, a = base.step(action)
        _, _, _, _, b = doubled.step(action)
    assert a["reward_terms"]["progress"] > 0
    assert b["reward_terms"]["progress"] == pytest.approx(2.0 * a["reward_terms"]["progress"])
    assert a["reward_terms"]["jerk"] <= 0.0 and b["reward_terms"]["jerk"] == 0.0
    base.close()
    doubled.close()


# -- info --------------------------------------------------------------------------------


def test_info_has_the_privileged_state_autopilot_score_and_reason(assets):
    env = make(assets)
    _, info = env.reset(seed=6)
    _, _, _, _, info = env.step(np.array([0.0, 0.5], np.float32))
    assert isinstance(info["state"], WorldState) and info["state"].tick == 1
    action = info["autopilot_action"]
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
    assert set(info["score"]) == {"route_completion", "infraction_penalty", "driving_score"}
    assert info["termination_reason"] is TerminationReason.NONE
    assert list(info["reward_terms"]) == list(REWARD_TERMS)
    fast = make(assets, autopilot_in_info=False)
    _, info = fast.reset(seed=6)
    assert "autopilot_action" not in info
    env.close()
    fast.close()


# -- rendering --------------------------------------------------------------------------


def test_rgb_array_frame_shows_cameras_route_map_and_hud(assets):
    env = make(assets, "loopdrive/Drive-surround8-v0", render_mode="rgb_array")
    env.reset(seed=3)
    env.step(np.array([0.0, 0.5], np.float32))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[1] >= 640 and frame.std() > 10
    inset = frame[-192:, -192:]
    assert (inset == (64, 160, 255)).all(axis=-1).any()  # the route line in the inset
    env.close()


def test_human_mode_opens_a_window(assets):
    env = make(assets, render_mode="human")
    env.reset(seed=3)
    assert env.render() is None
    env.step(np.array([0.0, 0.5], np.float32))
    env.close()


# -- configuration -----------------------------------------------------------------------


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown DrivingEnvConfig field"):
        DrivingEnvConfig().replace(camera_widht_px=3)
    with pytest.raises(ConfigError, match="camera_width_px"):
        DrivingEnvConfig(camera_width_px=4)
    with pytest.raises(ConfigError, match="route_length_m"):
        DrivingEnvConfig(route_length_m=(500.0, 100.0))
    with pytest.raises(ConfigError, match="render_device"):
        DrivingEnvConfig(render_device="tpu")
    with pytest.raises(ConfigError, match="rig"):
        DrivingEnv(DrivingEnvConfig(rig="front9"))


@needs_shared
def test_leaderboard_routes_are_drawn_by_the_reset_seed():
    from tests.conftest import MAPS

    config = DrivingEnvConfig(
        **{**SMALL, "traffic": TrafficConfig(vehicle_count=0, walker_count=0)},
        map=str(MAPS / "carla" / "Town01.xodr"),
        routes_file=str(ROUTES / "v1" / "routes_training.xml"),
    )
    world = DrivingWorld(config, SharedAssets())
    ids = {world.scenario_for(seed).route.route_id for seed in range(12)}
    assert len(ids) > 1 and all(ids)
    assert world.scenario_for(5) is world.scenario_for(5)
    result = world.reset(5, np.random.default_rng(0))
    assert result.state.tick == 0 and world.backend.route.length_m > 100
