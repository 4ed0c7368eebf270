"""Collection: drive the env, label every state with the privileged autopilot's action.

:func:`rollout` runs one episode with any *driver* and keeps every ``every``-th frame
with ``info["autopilot_action"]`` as its label, whoever drove. Drivers:

* :class:`NoisyAutopilot`: the autopilot with injected perturbations (a steering
  offset held for a moment, now and then, and some throttle noise). The perturbed
  action is executed but the label stays the autopilot's corrective action, so the
  policy learns to recover from states the clean autopilot never visits.
* DAgger's gated policy driver (:mod:`policy.dagger`) uses the same loop.

:func:`collect` spreads episodes over towns and routes (random routes of
:attr:`CollectConfig.route_length_m` on each of :attr:`CollectConfig.maps`), each
episode seeded from :attr:`CollectConfig.seed`, and returns :class:`~policy.data.Samples`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from envs.config import DrivingEnvConfig
from policy.data import Samples, future_waypoints
from sim.errors import ConfigError

__all__ = [
    "PerturbationConfig",
    "CollectConfig",
    "Driver",
    "NoisyAutopilot",
    "EpisodeLog",
    "rollout",
    "collect",
    "training_maps",
]


def training_maps(first: int, count: int) -> tuple[str, ...]:
    """``generated:first`` ... ``generated:first+count-1``."""
    return tuple(f"generated:{first + k}" for k in range(count))


@dataclass(frozen=True)
class PerturbationConfig:
    """Perturbations injected while the autopilot drives (its label stays clean): now and
    then, a steering and an accel offset held for a moment."""

    rate_per_s: float = field(default=0.25, metadata={"help": "perturbations started per second"})
    steer_max: float = field(default=0.6, metadata={"help": "largest steering offset of a perturbation"})
    duration_s: tuple[float, float] = field(
        default=(0.3, 1.0), metadata={"help": "how long one perturbation is held (min, max)"}
    )
    accel_max: float = field(default=0.3, metadata={"help": "largest accel offset of a perturbation"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "duration_s", tuple(float(v) for v in self.duration_s))
        values = (self.rate_per_s, self.steer_max, self.accel_max, *self.duration_s)
        if any(not math.isfinite(v) or v < 0 for v in values) or len(self.duration_s) != 2:
            raise ConfigError(f"PerturbationConfig: values must be finite and >= 0, got {self}")
        if self.duration_s[0] > self.duration_s[1] or self.steer_max > 2:
            raise ConfigError(f"PerturbationConfig: duration_s must be (min, max), steer_max <= 2: {self}")


@dataclass(frozen=True)
class CollectConfig:
    """What collection drives: towns, episodes, routes, the frames kept."""

    maps: tuple[str, ...] = field(default=training_maps(100, 20), metadata={"help": "towns to drive in"})
    episodes: int = field(default=20, metadata={"help": "episodes in all, spread over the towns"})
    route_length_m: tuple[float, float] = field(
        default=(300.0, 600.0), metadata={"help": "random route length (min, max)"}
    )
    every: int = field(default=2, metadata={"help": "keep every k-th frame"})
    max_steps: int = field(default=3000, metadata={"help": "steps per episode at most"})
    seed: int = field(default=0, metadata={"help": "seed of the first episode; episode k uses seed + k"})
    perturb: PerturbationConfig = field(default_factory=PerturbationConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "maps", tuple(self.maps))
        object.__setattr__(self, "route_length_m", tuple(float(v) for v in self.route_length_m))
        if not self.maps:
            raise ConfigError("CollectConfig.maps: name at least one map")
        for name in ("episodes", "every", "max_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"CollectConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"CollectConfig.seed must be >= 0, got {self.seed}")


class Driver(Protocol):
    """Chooses the executed action; ``expert`` says whether it is the autopilot's own."""

    def reset(self, seed: int) -> None: ...

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> tuple[np.ndarray, bool]: ...


class NoisyAutopilot:
    """The autopilot with perturbations (:class:`PerturbationConfig`), seeded per episode."""

    def __init__(self, config: PerturbationConfig, dt_s: float):
        self.config, self.dt_s = config, dt_s
        self._rng = np.random.default_rng(0)
        self._left = 0
        self._offset = np.zeros(2, np.float32)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 7])
        self._left = 0

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> tuple[np.ndarray, bool]:
        c, rng = self.config, self._rng
        label = np.asarray(info["autopilot_action"], np.float32)
        if self._left == 0 and rng.random() < c.rate_per_s * self.dt_s:
            self._left = max(1, round(rng.uniform(*c.duration_s) / self.dt_s))
            self._offset = np.array(
                [rng.uniform(-c.steer_max, c.steer_max), rng.uniform(-c.accel_max, c.accel_max)], np.float32
            )
        if self._left == 0:
            return label, True
        self._left -= 1
        return np.clip(label + self._offset, -1.0, 1.0).astype(np.float32), False


@dataclass
class EpisodeLog:
    """What :func:`rollout` saw in one episode, besides the kept frames."""

    steps: int = 0
    score: dict[str, float] = field(default_factory=dict)
    termination: str = ""
    takeovers: int = 0
    expert_share: float = 0.0


def _keep(obs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        "camera": np.array(obs["camera"], copy=True),
        "route": np.array(obs["route"], copy=True),
        "speed": np.asarray(obs["speed"], np.float32).reshape(1),
        "command": np.int64(obs["command"]),
        "command_distance_m": np.asarray(obs["command_distance_m"], np.float32).reshape(1),
    }


def rollout(
    env: Any,
    driver: Driver,
    seed: int,
    *,
    every: int = 1,
    max_steps: int = 3000,
    takeover_weight: float = 1.0,
) -> tuple[Samples, EpisodeLog]:
    """One episode of ``env`` (reset with ``seed``) driven by ``driver``; every ``every``-th
    frame is kept with the autopilot's action as its label. Frames where the driver
    reports a takeover start (``driver.takeover_started``) weigh ``takeover_weight``."""
    obs, info = env.reset(seed=seed)
    driver.reset(seed)
    frames, labels, weights, keep_steps = [], [], [], []
    pose, expert = [], []
    log = EpisodeLog()
    for t in range(max_steps):
        action, is_expert = driver.act(obs, info)
        if t % every == 0:
            frames.append(_keep(obs))
            labels.append(np.asarray(info["autopilot_action"], np.float32))
            started = bool(getattr(driver, "takeover_started", False))
            weights.append(takeover_weight if started else 1.0)
            keep_steps.append(t)
        ego = info["state"].ego
        pose.append((ego.x_m, ego.y_m, ego.yaw_rad))
        expert.append(is_expert)
        log.takeovers += int(bool(getattr(driver, "takeover_started", False)))
        obs, _, terminated, truncated, info = env.step(action)
        log.steps = t + 1
        if terminated or truncated:
            break
    log.score = dict(info["score"])
    log.termination = info["termination_reason"].value
    log.expert_share = float(np.mean(expert)) if expert else 0.0
    wp, valid = future_waypoints(np.asarray(pose, np.float64), np.asarray(expert), env.config.world.dt_s)
    idx = np.asarray(keep_steps, np.int64)
    samples = Samples(
        camera=np.stack([f["camera"] for f in frames]),
        route=np.stack([f["route"] for f in frames]),
        speed=np.stack([f["speed"] for f in frames]),
        command=np.array([f["command"] for f in frames], np.int64),
        command_distance_m=np.stack([f["command_distance_m"] for f in frames]),
        action=np.stack(labels),
        waypoints=wp[idx],
        waypoints_valid=valid[idx],
        weight=np.asarray(weights, np.float32),
    )
    return samples, log


class EnvPool:
    """One :class:`envs.DrivingEnv` per town, sharing map assets; built on first use."""

    def __init__(self, base: DrivingEnvConfig):
        from envs.world import SharedAssets

        self.base = base
        self.assets = SharedAssets()
        self._envs: dict[str, Any] = {}

    def get(self, map_spec: str, **changes: Any) -> Any:
        from envs.driving import DrivingEnv

        key = map_spec + repr(sorted(changes.items()))
        if key not in self._envs:
            self._envs[key] = DrivingEnv(self.base.replace(map=map_spec, **changes), assets=self.assets)
        return self._envs[key]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def episode_plan(maps: tuple[str, ...], episodes: int, seed: int) -> list[tuple[str, int]]:
    """(town, episode seed) of each episode: towns in turn, seeds ``seed + k``."""
    return [(maps[k % len(maps)], seed + k) for k in range(episodes)]


@dataclass(frozen=True)
class DriverSpec:
    """How to build a driver in any process: ``noisy`` (the autopilot with ``perturb``) or
    ``gated`` (the checkpoint at ``checkpoint`` under the autopilot gate ``gate``)."""

    kind: str = "noisy"
    perturb: PerturbationConfig = field(default_factory=PerturbationConfig)
    checkpoint: str = ""
    gate: Any = None
    takeover_weight: float = 1.0

    def build(self, dt_s: float) -> Driver:
        if self.kind == "noisy":
            return NoisyAutopilot(self.perturb, dt_s)
        if self.kind == "gated":
            from policy.checkpoint import CheckpointPolicy
            from policy.dagger import GatedPolicy

            return GatedPolicy(CheckpointPolicy(self.checkpoint), self.gate, dt_s)
        raise ConfigError(f"DriverSpec.kind must be noisy or gated, got {self.kind!r}")


def _episodes(
    plan: list[tuple[str, int]], spec: DriverSpec, base: DrivingEnvConfig, every: int, max_steps: int
) -> Iterator[tuple[str, int, Samples, EpisodeLog]]:
    pool = EnvPool(base)
    driver = spec.build(base.world.dt_s)
    try:
        for town, seed in plan:
            samples, log = rollout(
                pool.get(town),
                driver,
                seed,
                every=every,
                max_steps=max_steps,
                takeover_weight=spec.takeover_weight,
            )
            yield town, seed, samples, log
    finally:
        pool.close()


def _worker(args: tuple) -> list[tuple[str, int, str, dict]]:
    """Run a share of the plan in a child process; frames go to .npz files (no pickle)."""
    plan, spec, base, every, max_steps, folder = args
    import torch

    torch.set_num_threads(1)
    out = []
    for town, seed, samples, log in _episodes(plan, spec, base, every, max_steps):
        path = Path(folder) / f"episode_{seed}.npz"
        samples.save_npz(path)
        out.append((town, seed, str(path), dataclasses.asdict(log)))
    return out


def run_episodes(
    plan: list[tuple[str, int]],
    spec: DriverSpec,
    base: DrivingEnvConfig,
    *,
    every: int,
    max_steps: int,
    workers: int = 1,
) -> Iterator[tuple[str, int, Samples, EpisodeLog]]:
    """Drive each (town, seed) of ``plan``; yields (town, seed, samples, log) per episode,
    in plan order. ``workers`` > 1 spreads the towns over that many processes (each
    keeps its towns' assets; results are the same as in one process)."""
    if workers <= 1 or len(plan) <= 1:
        yield from _episodes(plan, spec, base, every, max_steps)
        return
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    towns = sorted({t for t, _ in plan}, key=[t for t, _ in plan].index)
    shares = [[p for p in plan if towns.index(p[0]) % workers == w] for w in range(workers)]
    with tempfile.TemporaryDirectory(prefix="loopdrive-episodes-") as folder:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            jobs = [(share, spec, base, every, max_steps, folder) for share in shares if share]
            done = {(t, s): (path, log) for result in ex.map(_worker, jobs) for t, s, path, log in result}
        for town, seed in plan:
            path, log = done[(town, seed)]
            yield town, seed, Samples.load_npz(path), EpisodeLog(**log)


def collect(
    config: CollectConfig,
    env_config: DrivingEnvConfig | None = None,
    *,
    workers: int = 1,
) -> Iterator[tuple[str, int, Samples, EpisodeLog]]:
    """Drive :attr:`CollectConfig.episodes` episodes with :class:`NoisyAutopilot`; yields
    (town, seed, samples, log) per episode."""
    base = (env_config or DrivingEnvConfig()).replace(
        route_length_m=config.route_length_m, autopilot_in_info=True
    )
    plan = episode_plan(config.maps, config.episodes, config.seed)
    spec = DriverSpec("noisy", perturb=config.perturb)
    yield from run_episodes(plan, spec, base, every=config.every, max_steps=config.max_steps, workers=workers)


def replace(config: CollectConfig, **changes: Any) -> CollectConfig:
    """A copy of ``config`` with some fields changed."""
    return dataclasses.replace(config, **changes)
