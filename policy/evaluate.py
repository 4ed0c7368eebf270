"""Closed-loop evaluation of any policy through the env, with the Leaderboard's scores.

A camera policy needs observations, so it is evaluated through :class:`envs.DrivingEnv`:
each :class:`~sim.evaluation.RouteJob` becomes an env with that fixed scenario, reset with
the job's seed, stepped until the route ends (completed, deviated, blocked or timed
out; collisions do not end it, as on the Leaderboard), and scored from the env's
infraction monitor with :func:`sim.scoring.score_route`. The world is the one
:func:`sim.evaluation.run_route` builds for the same job and seed, so the autopilot
driven through this path scores exactly as through that one (a test checks it), and
every policy is comparable on the same jobs and seeds.

Policies (:func:`make_policy`): ``autopilot`` (the privileged action in ``info``),
``random`` (uniform actions from a generator seeded per route), a checkpoint folder,
or ``default`` (the shipped checkpoint).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from envs.config import DrivingEnvConfig
from policy.network import ObservationLayout
from sim.errors import LoopdriveError, RouteError
from sim.evaluation import RouteJob
from sim.scoring import RouteResult, score_route

__all__ = ["Policy", "AutopilotPolicy", "RandomPolicy", "make_policy", "rig_for", "run_job", "evaluate_jobs"]


class Policy(Protocol):
    """A driver of the env: ``reset(seed)`` before each route, then ``act(obs, info)``."""

    name: str

    def reset(self, seed: int) -> None: ...

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray: ...


class AutopilotPolicy:
    """The privileged autopilot, read from ``info["autopilot_action"]``."""

    name = "autopilot"
    needs_autopilot = True

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        return np.asarray(info["autopilot_action"], np.float32)


class RandomPolicy:
    """Uniform ``[steer, accel]`` from a generator seeded with ``seed`` at every route
    (the actions :class:`sim.evaluation.RandomDriver` draws)."""

    name = "random"
    needs_autopilot = False

    def __init__(self, seed: int):
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(self.seed)

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, 2).astype(np.float32)


class NetworkPolicy:
    """A checkpoint (:class:`policy.checkpoint.CheckpointPolicy`) as an env driver."""

    needs_autopilot = False

    def __init__(self, path: str):
        from policy.checkpoint import CheckpointPolicy

        self.inner = CheckpointPolicy(path)
        self.name = str(self.inner.path)

    @property
    def camera_count(self) -> int:
        return self.inner.layout.camera_count

    def check(self, layout: ObservationLayout) -> None:
        self.inner.check_layout(layout)

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        return self.inner.act(obs)


def make_policy(spec: str, seed: int = 0) -> Any:
    """``autopilot``, ``random``, ``default`` or a checkpoint folder."""
    if spec == "autopilot":
        return AutopilotPolicy()
    if spec == "random":
        return RandomPolicy(seed)
    try:
        return NetworkPolicy(spec)
    except LoopdriveError as exc:
        raise LoopdriveError(f"--policy {spec}: {exc} (or use autopilot, random, default)") from None


def rig_for(policy: Any, scenario_rig: str) -> str:
    """The scenario's camera rig, unless ``policy`` is a checkpoint made for another camera
    count: then the first rig with its count (the world and its scores do not depend on
    the cameras, so scores stay comparable)."""
    from sim.render.camera import RIG_NAMES, rig

    count = getattr(policy, "camera_count", None)
    if count is None or len(rig(scenario_rig)) == count:
        return scenario_rig
    return next((name for name in RIG_NAMES if len(rig(name)) == count), scenario_rig)


def _env_for(base: DrivingEnvConfig, job: RouteJob, assets: Any, rig: str | None, policy: Any) -> Any:
    from envs.driving import DrivingEnv

    chosen = rig_for(policy, job.scenario.rig) if rig is None else rig
    scenario = dataclasses.replace(job.scenario, rig=chosen)
    return DrivingEnv(base.replace(map=scenario.map, scenario=scenario), assets=assets)


def run_job(env: Any, job: RouteJob, policy: Any) -> RouteResult:
    """Drive one job through ``env`` (whose config holds the job's scenario) and score it."""
    obs, info = env.reset(seed=job.seed)
    policy.reset(job.seed)
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
        if terminated or truncated:
            break
    return score_route(env.world.backend.monitor, route_id=job.route_id, town=job.town)


def evaluate_jobs(
    jobs: list[RouteJob],
    policy: Any,
    env_config: DrivingEnvConfig | None = None,
    *,
    rig: str | None = None,
    skip_unplannable: bool = False,
) -> Iterator[tuple[RouteJob, RouteResult | None, str]]:
    """Drive every job with ``policy`` through the env; yields (job, result, message) as
    each ends (``None`` and the reason for an unplannable route when ``skip_unplannable``).
    ``env_config`` sets the camera size and route map (its map and scenario are the jobs');
    the camera rig is the scenario's unless ``rig`` names another (or the scenario's does
    not fit a checkpoint's camera count: :func:`rig_for`)."""
    from envs.world import SharedAssets

    base = (env_config or DrivingEnvConfig()).replace(
        terminate_on_collision=False, autopilot_in_info=bool(getattr(policy, "needs_autopilot", True))
    )
    assets = SharedAssets()  # maps, coarse roads and camera scenes are built once per town
    for job in jobs:
        env = None
        try:
            env = _env_for(base, job, assets, rig, policy)
            if hasattr(policy, "check"):
                policy.check(ObservationLayout.from_space(env.observation_space))
            yield job, run_job(env, job, policy), ""
        except RouteError as exc:
            if not skip_unplannable:
                raise
            yield job, None, str(exc)
        finally:
            if env is not None:
                env.close()
