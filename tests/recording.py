"""Helpers of the store, takeover and replay tests: small envs and short recordings."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

import envs  # noqa: F401 - registers the env ids
from envs.drivers import AutopilotPolicy, RandomPolicy
from envs.recorder import RecorderWrapper
from envs.takeover import TakeoverWrapper
from envs.world import SharedAssets
from sim.scenario import TrafficConfig

#: tiny cameras, short routes, light traffic: quick to run and to store
SMALL = {
    "camera_width_px": 32,
    "camera_height_px": 16,
    "route_length_m": (120.0, 200.0),
    "traffic": TrafficConfig(vehicle_count=12, walker_count=6),
}


def small_env(assets: SharedAssets, **overrides) -> gym.Env:
    return gym.make("loopdrive/Drive-v0", assets=assets, **{**SMALL, **overrides})


def policy_named(name: str, seed: int = 0):
    if name == "autopilot":
        return AutopilotPolicy()
    if name == "random-forward":
        return RandomPolicy(seed, accel_range=(-0.2, 1.0))
    return RandomPolicy(seed)


def record(
    store: Path,
    assets: SharedAssets,
    *,
    seeds=(0,),
    policy: str = "autopilot",
    gate: str | None = None,
    max_steps: int = 10_000,
    **overrides,
) -> tuple[list[Path], list[list[dict]]]:
    """Record one episode per seed (cut after ``max_steps``); returns the files and the
    observations every episode produced, in order."""
    env = RecorderWrapper(TakeoverWrapper(small_env(assets, **overrides), gate=gate), store, policy_id=policy)
    driver = policy_named(policy)
    seen = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            driver.reset(seed)
            episode = [_copy(obs)]
            for _ in range(max_steps):
                obs, _, terminated, truncated, info = env.step(driver.act(obs, info))
                episode.append(_copy(obs))
                if terminated or truncated:
                    break
            seen.append(episode)
    finally:
        env.close()
    return list(env.paths), seen


def _copy(obs: dict) -> dict:
    return {k: np.copy(v) for k, v in obs.items()}
