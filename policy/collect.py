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
episode seeded from :attr:`CollectConfig.seed`, or cycles through the (scenario, seed)
entries of a scenario-library suite (:attr:`CollectConfig.suite`, scripted events and
all), and yields :class:`~policy.data.Samples` per episode. With a ``store`` folder every
episode is also recorded into the episode store (:class:`envs.recorder.RecorderWrapper`):
the executed action is the perturbed one, the driver ``autopilot``, and the row's
``autopilot_action`` the corrective label that ``train bc --data STORE`` reads.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from envs.config import DrivingEnvConfig
from policy.data import Samples, future_waypoints
from sim.errors import ConfigError, RouteError
from sim.scenario import Scenario

__all__ = [
    "PerturbationConfig",
    "CollectConfig",
    "Driver",
    "NoisyAutopilot",
    "EpisodeLog",
    "EpisodeJob",
    "rollout",
    "collect",
    "episode_plan",
    "suite_plan",
    "training_maps",
    "PERTURBATION_POLICY_ID",
]

#: the policy id of episodes the perturbed autopilot recorded into a store
PERTURBATION_POLICY_ID = "autopilot+perturbation"


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
    suite: str = field(
        default="",
        metadata={
            "help": "a scenario-library suite (train, eval, smoke or a .yaml file) to drive instead of "
            "random routes on --maps: episode k drives entry k of its (scenario, seed) entries, cycling"
        },
    )
    rig: str = field(
        default="front",
        metadata={"help": "camera rig of every episode (a suite's scenarios too: one layout to train on)"},
    )
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
    skipped: str = ""  # why the episode was not driven (its route could not be planned)


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
    driver_seed: int | None = None,
) -> tuple[Samples, EpisodeLog]:
    """One episode of ``env`` (reset with ``seed``) driven by ``driver`` (reset with
    ``driver_seed``, default ``seed``); every ``every``-th frame is kept with the
    autopilot's action as its label. Frames where the driver reports a takeover start
    (``driver.takeover_started``) weigh ``takeover_weight``."""
    obs, info = env.reset(seed=seed)
    driver.reset(seed if driver_seed is None else driver_seed)
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
    dt_s = env.unwrapped.config.world.dt_s
    wp, valid = future_waypoints(np.asarray(pose, np.float64), np.asarray(expert), dt_s)
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


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to drive: the env's reset ``seed`` on ``town`` (a map spec: a random
    route there), or in ``scenario`` (its map, route, traffic and events); the driver is
    reset with ``driver_seed`` (default: ``seed``)."""

    town: str
    seed: int
    scenario: Scenario | None = None
    driver_seed: int | None = None

    @property
    def name(self) -> str:
        """The scenario's name, or the town."""
        return self.town if self.scenario is None else self.scenario.name


class _DriverLabel(gym.Wrapper):
    """Says who drove in every step's ``info`` (``driver``), which the recorder keeps."""

    def __init__(self, env: gym.Env, driver: str):
        super().__init__(env)
        self.driver = driver

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "driver": self.driver}


class EnvPool:
    """One :class:`envs.DrivingEnv` per town or scenario, sharing map assets; built on first
    use and wrapped once by ``wrap`` (a recorder) when given. ``close`` closes them all."""

    def __init__(self, base: DrivingEnvConfig, wrap: Callable[[Any], Any] | None = None):
        from envs.world import SharedAssets

        self.base = base
        self.wrap = wrap
        self.assets = SharedAssets()
        self._envs: dict[str, Any] = {}

    def get(self, map_spec: str, scenario: Scenario | None = None) -> Any:
        from envs.driving import DrivingEnv

        key = map_spec if scenario is None else f"{map_spec}|{scenario.name}|{scenario.rig}"
        if key not in self._envs:
            config = self.base.replace(map=scenario.map if scenario else map_spec, scenario=scenario)
            env = DrivingEnv(config, assets=self.assets)
            self._envs[key] = env if self.wrap is None else self.wrap(env)
        return self._envs[key]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def episode_plan(maps: tuple[str, ...], episodes: int, seed: int) -> list[EpisodeJob]:
    """Random routes: towns in turn, episode k seeded ``seed + k``."""
    return [EpisodeJob(maps[k % len(maps)], seed + k) for k in range(episodes)]


def suite_plan(
    suite: str, episodes: int, seed: int, rig: str | None = None
) -> tuple[list[EpisodeJob], list[tuple[str, str]]]:
    """Episode k drives entry ``k mod n`` of the ``n`` runnable (scenario, seed) entries of the
    scenario-library ``suite`` (reset with the entry's seed, so a suite's seeds stay its
    own; the driver seeded ``seed + k``, so a repeated entry is perturbed differently),
    every scenario with camera rig ``rig`` (None: its own). Also (name, reason) of the
    entries skipped because their data is absent (a CARLA town)."""
    from sim.scenarios import load_suite, suite_jobs

    jobs, skipped = suite_jobs(load_suite(suite))
    if not jobs:
        reasons = "; ".join(f"{n}: {r}" for n, r in dict(skipped).items())
        raise ConfigError(f"suite {suite}: none of its scenarios can run here ({reasons})")
    plan = []
    for k in range(episodes):
        job = jobs[k % len(jobs)]
        scenario = job.scenario if rig is None else dataclasses.replace(job.scenario, rig=rig)
        plan.append(EpisodeJob(scenario.map, job.seed, scenario, seed + k))
    return plan, skipped


def plan_for(config: CollectConfig) -> tuple[list[EpisodeJob], list[tuple[str, str]]]:
    """What :func:`collect` drives for ``config``: its suite's entries, or random routes on
    its maps; and the suite entries skipped here."""
    if config.suite:
        return suite_plan(config.suite, config.episodes, config.seed, config.rig)
    return episode_plan(config.maps, config.episodes, config.seed), []


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

    def policy_id(self) -> str:
        """The policy id of the episodes this driver records into a store."""
        if self.kind == "gated":
            ckpt = Path(self.checkpoint)
            return f"ckpt:{ckpt.parent.name}/{ckpt.name}+autopilot-gate"
        return PERTURBATION_POLICY_ID


def _recorded(env: Any, spec: DriverSpec, store: str) -> Any:
    """``env`` recording into ``store``: the perturbed autopilot's episodes with driver
    ``autopilot``; a gated policy's through a :class:`envs.takeover.TakeoverWrapper` that
    the driver tells when the autopilot takes over, so each takeover is an intervention."""
    from envs.recorder import RecorderWrapper
    from envs.takeover import TakeoverWrapper

    inner = TakeoverWrapper(env) if spec.kind == "gated" else _DriverLabel(env, "autopilot")
    return RecorderWrapper(inner, store, policy_id=spec.policy_id())


def _episodes(
    plan: list[EpisodeJob],
    spec: DriverSpec,
    base: DrivingEnvConfig,
    every: int,
    max_steps: int,
    store: str | None = None,
) -> Iterator[tuple[EpisodeJob, Samples | None, EpisodeLog]]:
    wrap = None if store is None else (lambda env: _recorded(env, spec, store))
    pool = EnvPool(base, wrap)
    driver = spec.build(base.world.dt_s)
    try:
        for job in plan:
            env = pool.get(job.town, job.scenario)
            if store is not None and hasattr(driver, "attach"):
                driver.attach(env.env)  # the TakeoverWrapper under the recorder
            try:
                samples, log = rollout(
                    env,
                    driver,
                    job.seed,
                    every=every,
                    max_steps=max_steps,
                    takeover_weight=spec.takeover_weight,
                    driver_seed=job.driver_seed,
                )
            except RouteError as exc:  # this seed's route cannot be planned: the next one
                yield job, None, EpisodeLog(termination="skipped", skipped=str(exc))
                continue
            yield job, samples, log
    finally:
        pool.close()


def _worker(args: tuple) -> None:
    """Run a share of the plan in a child process; frames go to .npz files (no pickle), and
    (index, file, log) of each finished episode to the ``finished`` queue."""
    share, spec, base, every, max_steps, folder, store, keep, finished = args
    import numba
    import torch

    # one thread each for torch and the renderer: the workers are the parallelism, and
    # threads that outnumber the cores spin (CPU time spent, nothing done)
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    jobs = [job for _, job in share]
    for (index, _), (_, samples, log) in zip(
        share, _episodes(jobs, spec, base, every, max_steps, store), strict=True
    ):
        path = ""
        if keep and samples is not None:
            path = str(samples.save_npz(Path(folder) / f"episode_{index}.npz"))
        finished.put((index, path, dataclasses.asdict(log)))


def run_episodes(
    plan: list[EpisodeJob],
    spec: DriverSpec,
    base: DrivingEnvConfig,
    *,
    every: int,
    max_steps: int,
    workers: int = 1,
    store: str | os.PathLike | None = None,
    keep_samples: bool = True,
) -> Iterator[tuple[str, int, Samples | None, EpisodeLog]]:
    """Drive each job of ``plan``; yields (name, seed, samples, log) per episode, in plan
    order. ``workers`` > 1 spreads the towns over that many processes (each keeps its
    towns' assets; results are the same as in one process). With ``store`` every episode
    is recorded there too; ``keep_samples=False`` yields ``None`` for the frames. An
    episode whose route cannot be planned yields ``None`` and ``log.skipped`` (the reason)."""
    folder_store = None if store is None else str(store)
    if workers <= 1 or len(plan) <= 1:
        for job, samples, log in _episodes(plan, spec, base, every, max_steps, folder_store):
            yield job.name, job.seed, samples if keep_samples else None, log
        return
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    towns = list(dict.fromkeys(job.town for job in plan))
    indexed = list(enumerate(plan))
    shares = [[p for p in indexed if towns.index(p[1].town) % workers == w] for w in range(workers)]
    with tempfile.TemporaryDirectory(prefix="loopdrive-episodes-") as folder:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            finished = manager.Queue()
            futures = [
                ex.submit(
                    _worker,
                    (share, spec, base, every, max_steps, folder, folder_store, keep_samples, finished),
                )
                for share in shares
                if share
            ]
            for index, path, log in _in_plan_order(finished, futures, len(plan)):
                job = plan[index]
                samples = Samples.load_npz(path) if path else None
                yield job.name, job.seed, samples, EpisodeLog(**log)


def _in_plan_order(finished: Any, futures: list, count: int) -> Iterator[tuple[int, str, dict]]:
    """The workers' (index, file, log) reports, in plan order, each as soon as it and every
    episode before it are done (so progress shows while the workers run); a worker's
    exception is raised here."""
    import queue

    done: dict[int, tuple[str, dict]] = {}
    next_index = 0
    while next_index < count:
        try:
            report = finished.get(timeout=0.5)
        except queue.Empty:
            report = None
        if report is None:
            _check_workers(futures, finished, f"episode {next_index} of {count}")
            continue
        index, path, log = report
        done[index] = (path, log)
        while next_index in done:
            yield next_index, *done.pop(next_index)
            next_index += 1


def _check_workers(futures: list, finished: Any, waiting_for: str) -> None:
    for future in futures:
        if future.done() and future.exception() is not None:
            raise future.exception()
    if all(future.done() for future in futures) and finished.empty():
        raise RuntimeError(f"episode workers ended with {waiting_for} unreported")


def collect(
    config: CollectConfig,
    env_config: DrivingEnvConfig | None = None,
    *,
    workers: int = 1,
    store: str | os.PathLike | None = None,
    keep_samples: bool = True,
) -> Iterator[tuple[str, int, Samples | None, EpisodeLog]]:
    """Drive :attr:`CollectConfig.episodes` episodes with :class:`NoisyAutopilot` (see
    :func:`plan_for`); yields (town or scenario, seed, samples, log) per episode. With
    ``store`` each episode is recorded into that episode store folder as well
    (``keep_samples=False``: only there)."""
    base = (env_config or DrivingEnvConfig()).replace(
        route_length_m=config.route_length_m, autopilot_in_info=True, rig=config.rig
    )
    plan, _ = plan_for(config)
    spec = DriverSpec("noisy", perturb=config.perturb)
    yield from run_episodes(
        plan,
        spec,
        base,
        every=config.every,
        max_steps=config.max_steps,
        workers=workers,
        store=store,
        keep_samples=keep_samples,
    )


def replace(config: CollectConfig, **changes: Any) -> CollectConfig:
    """A copy of ``config`` with some fields changed."""
    return dataclasses.replace(config, **changes)
