"""The batched worlds: Gymnasium's VectorEnv (both autoreset modes), equality with the
single env world by world, one render call per step (or render threads drawing while
the worlds step, image for image the same), and the SB3 adapter under PPO."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs
from envs.driving import DrivingEnv
from envs.sb3 import DrivingSB3VecEnv
from envs.vector import DrivingVectorEnv
from envs.world import SharedAssets, TerminationReason
from sim.infractions import InfractionConfig
from sim.scenario import TrafficConfig
from tests.test_env import SMALL, same

#: episodes of 1 s (20 steps) at most, so autoresets happen within a short test
SHORT = {**SMALL, "infractions": InfractionConfig(timeout_base_s=1.0, timeout_s_per_m=0.0)}


@pytest.fixture(scope="module")
def assets() -> SharedAssets:
    return SharedAssets()


@pytest.fixture(autouse=True, scope="module")
def _one_render_thread():
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def actions_for(steps: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.empty((steps, n, 2), np.float32)
    a[..., 0] = rng.uniform(-0.3, 0.3, (steps, n))
    a[..., 1] = rng.uniform(-0.2, 1.0, (steps, n))
    return a


def world(obs: dict, k: int) -> dict:
    return {key: value[k] for key, value in obs.items()}


# -- Gymnasium's VectorEnv ---------------------------------------------------------------


def test_make_vec_builds_the_batched_env_for_every_id(assets):
    for env_id in sorted(envs.ENV_IDS):
        venv = gym.make_vec(env_id, num_envs=2, assets=assets, **SMALL)
        assert isinstance(venv, DrivingVectorEnv)
        assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
        obs, info = venv.reset(seed=1)
        assert obs in venv.observation_space
        assert obs["camera"].shape[:2] == (2, {"front": 1, "front3": 3, "surround8": 8}[envs.ENV_IDS[env_id]])
        assert info["_state"].all() and info["score"]["route_completion"].shape == (2,)
        venv.close()


def test_world_k_equals_the_single_env_with_seed_plus_k_across_autoresets(assets):
    n, seed, steps = 3, 40, 50
    venv = DrivingVectorEnv(n, assets=assets, **SHORT)
    singles = [DrivingEnv(assets=assets, **SHORT) for _ in range(n)]
    actions = actions_for(steps, n)
    obs, _ = venv.reset(seed=seed)
    single_obs = [env.reset(seed=seed + k)[0] for k, env in enumerate(singles)]
    single_done = [False] * n
    resets = 0
    for t in range(steps):
        for k in range(n):
            assert same(world(obs, k), single_obs[k]), (t, k)
        obs, rewards, terminated, truncated, info = venv.step(actions[t])
        for k, env in enumerate(singles):
            if single_done[k]:  # NEXT_STEP: the vector env resets world k on this step
                single_obs[k], _ = env.reset()
                single_done[k] = False
                assert rewards[k] == 0.0 and not terminated[k] and not truncated[k]
                resets += 1
                continue
            single_obs[k], reward, term, trunc, single_info = env.step(actions[t, k])
            assert rewards[k] == reward and terminated[k] == term and truncated[k] == trunc
            assert info["termination_reason"][k] is single_info["termination_reason"]
            single_done[k] = term or trunc
    assert resets >= n  # every world went through at least one autoreset
    venv.close()


def test_same_step_autoreset_returns_the_final_observation_in_info(assets):
    venv = DrivingVectorEnv(2, assets=assets, autoreset_mode=AutoresetMode.SAME_STEP, **SHORT)
    single = DrivingEnv(assets=assets, **SHORT)
    venv.reset(seed=7)
    single.reset(seed=8)  # world 1
    brake = np.tile(np.array([0.0, -1.0], np.float32), (2, 1))
    for _ in range(19):
        _, _, terminated, truncated, info = venv.step(brake)
        single_last = single.step(brake[1])[0]
        assert not (terminated | truncated).any() and "final_obs" not in info
    obs, _, terminated, truncated, info = venv.step(brake)
    single_last, _, _, single_trunc, _ = single.step(brake[1])
    assert truncated.all() and not terminated.any() and single_trunc
    assert info["_final_obs"].all()
    assert same(info["final_obs"][1], single_last)
    assert (info["final_info"]["termination_reason"] == TerminationReason.TIME_LIMIT).all()
    single_first, _ = single.reset()
    assert same(world(obs, 1), single_first)  # already the next episode's first observation
    venv.close()


def render_calls(venv) -> list[int]:
    """The number of states of each render call the env's renderer gets from now on."""
    renderer = venv.batch.cameras.renderer_for(venv.batch.worlds[0])
    calls: list[int] = []
    original = renderer.render_batch

    def counting(states):
        calls.append(len(states))
        return original(states)

    renderer.render_batch = counting
    return calls


def test_one_render_call_per_step_for_all_worlds(assets):
    venv = DrivingVectorEnv(4, assets=assets, **SMALL)
    venv.reset(seed=0)
    calls = render_calls(venv)
    for t in range(3):
        venv.step(actions_for(1, 4, t)[0])
    assert calls == [4, 4, 4]
    venv.close()


def test_same_step_final_observations_are_in_the_step_s_one_render_call(assets):
    venv = DrivingVectorEnv(3, assets=assets, autoreset_mode=AutoresetMode.SAME_STEP, **SHORT)
    venv.reset(seed=1)
    calls = render_calls(venv)
    finals = []
    for t, act in enumerate(actions_for(30, 3, seed=2)):
        _, _, _, _, info = venv.step(act)
        finals.append(int(info["_final_obs"].sum()) if "final_obs" in info else 0)
        assert len(calls) == t + 1
    assert sum(finals) > 0 and calls == [3 + f for f in finals]
    venv.close()


@pytest.fixture
def two_threads():
    """numba at 2 threads for one test: the vector env then draws on a render thread."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("render threads need numba with 2 threads or more (NUMBA_NUM_THREADS)")
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(1)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_cameras_drawn_while_worlds_step_equal_one_batched_call(assets, two_threads, mode):
    """5 worlds handed to a render thread as they step, across autoresets (SAME_STEP: final
    observations too): the same images as one kernel call per step, with the render thread
    drawing worlds of its own on most steps."""
    import numba

    threaded = DrivingVectorEnv(5, assets=assets, autoreset_mode=mode, **SHORT)
    one_call = DrivingVectorEnv(5, assets=assets, autoreset_mode=mode, **SHORT)
    a, _ = threaded.reset(seed=3)
    numba.set_num_threads(1)
    b, _ = one_call.reset(seed=3)
    assert same(a, b)
    finals = 0
    drawn_by_thread = 0
    for step, act in enumerate(actions_for(25, 5, seed=4)):
        numba.set_num_threads(2)
        a, _, ta, ua, ia = threaded.step(act)
        workers = threaded.batch.cameras.workers(threaded.batch.worlds)  # one render thread
        assert workers.threads == 1 and workers.alive
        drawn_by_thread += workers.claimed
        numba.set_num_threads(1)
        b, _, tb, ub, ib = one_call.step(act)
        assert same(a, b) and (ta == tb).all() and (ua == ub).all(), step
        if "final_obs" in ia:
            finals += 1
            for k in np.flatnonzero(ia["_final_obs"]):
                assert same(ia["final_obs"][k], ib["final_obs"][k])
    assert mode is AutoresetMode.NEXT_STEP or finals > 0
    assert drawn_by_thread > 0
    threaded.close()
    one_call.close()
    assert not workers.alive


def test_a_render_thread_error_reaches_the_step_and_the_next_step_draws_again(
    assets, two_threads, monkeypatch
):
    import sim.render.workers as workers_module

    serve = workers_module.serve_slots

    def broken(*args):
        if args[-1]:  # a render thread's loop
            raise MemoryError("out of memory in the camera kernel")
        return serve(*args)

    venv = DrivingVectorEnv(3, assets=assets, **SMALL)
    venv.reset(seed=0)
    with monkeypatch.context() as patch:
        patch.setattr(workers_module, "serve_slots", broken)
        workers = venv.batch.cameras.workers(venv.batch.worlds)
        for thread in workers._threads:
            thread.join(timeout=10)
        with pytest.raises(MemoryError, match="camera kernel"):
            venv.step(actions_for(1, 3)[0])
    obs, _, _, _, info = venv.step(actions_for(1, 3)[0])  # new render threads
    assert venv.batch.cameras.workers(venv.batch.worlds) is not workers
    assert np.array_equal(
        obs["camera"], venv.batch.cameras.render_batch(venv.batch.worlds, list(info["state"]))
    )
    venv.close()


def test_render_threads_of_an_env_never_closed_end_when_it_is_collected(assets, two_threads):
    import gc

    venv = DrivingVectorEnv(2, assets=assets, **SMALL)
    venv.reset(seed=0)
    venv.step(actions_for(1, 2)[0])
    workers = venv.batch.cameras.workers(venv.batch.worlds)
    assert workers.alive
    del venv
    gc.collect()
    for thread in workers._threads:
        thread.join(timeout=10)
    assert not workers.alive


def test_bad_action_batches_raise(assets):
    venv = DrivingVectorEnv(2, assets=assets, **SMALL)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="finite"):
        venv.step(np.array([[0.0, 0.0], [np.nan, 0.0]], np.float32))
    venv.close()


def test_vector_render_gives_a_frame_per_world(assets):
    venv = DrivingVectorEnv(2, assets=assets, render_mode="rgb_array", **SMALL)
    venv.reset(seed=0)
    frames = venv.render()
    assert len(frames) == 2 and all(f.ndim == 3 and f.std() > 5 for f in frames)
    venv.close()


# -- Stable-Baselines3 ----------------------------------------------------------------------


def test_sb3_vec_env_steps_and_autoresets_as_sb3_expects(assets):
    venv = DrivingSB3VecEnv(2, assets=assets, **SHORT)
    venv.seed(5)
    obs = venv.reset()
    assert obs["camera"].shape == (2, 1, 16, 32, 3) and obs["command"].shape == (2,)
    assert [info["episode_seed"] for info in venv.reset_infos] == [5, 6]
    brake = np.tile(np.array([0.0, -1.0], np.float32), (2, 1))
    for _ in range(19):
        obs, rewards, dones, infos = venv.step(brake)
        assert not dones.any() and rewards.dtype == np.float32
    obs, rewards, dones, infos = venv.step(brake)
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        terminal = info["terminal_observation"]
        assert terminal["route"].shape == (64, 64, 2) and terminal["camera"].shape == (1, 16, 32, 3)
    assert venv.get_attr("render_mode") == [None, None]
    assert venv.env_is_wrapped(gym.Wrapper) == [False, False]
    venv.close()


def test_ppo_learns_for_a_few_hundred_steps_on_the_sb3_adapter(assets):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        venv = VecMonitor(DrivingSB3VecEnv(2, assets=assets, **SHORT))
        model = PPO("MultiInputPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=256)
        assert model.num_timesteps == 256
        action, _ = model.predict(venv.reset(), deterministic=True)
        assert action.shape == (2, 2)
        venv.close()
    finally:
        torch.set_num_threads(threads)


def test_traffic_config_reaches_every_world(assets):
    traffic = TrafficConfig(vehicle_count=3, walker_count=0)
    venv = DrivingVectorEnv(2, assets=assets, **{**SMALL, "traffic": traffic})
    venv.reset(seed=0)
    assert [len(w.backend.traffic) for w in venv.batch.worlds] == [3, 3]
    venv.close()


# -- the benchmark command -------------------------------------------------------------


@pytest.mark.parametrize("extra", [["--num-envs", "2"], ["--memory", "--steps", "20", "--warmup", "0"]])
def test_bench_env_prints_its_json(capsys, extra):
    import argparse
    import json

    from scripts.bench_env import register_env_bench

    parser = argparse.ArgumentParser()
    register_env_bench(parser.add_subparsers())
    args = parser.parse_args(
        ["env", "--map", "generated:0", "--camera", "16x8", "--actors", "5", "--steps", "20", "--warmup", "4"]
        + extra
    )
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["peak_rss_mb"] > 0 and result["camera"] == "16x8" and result["vehicles"] == 3
    if "--memory" in extra:
        assert result["memory_steps"] == 20 and "rss_growth_after_warmup_mb" in result
    else:
        assert result["steps"] == 60 and result["steps_per_second"] > 0 and result["frames_per_second"] > 0
        assert set(result["profile_us_per_step"]) >= {"tick", "route_map", "autopilot", "render", "other"}
