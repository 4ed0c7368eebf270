"""DAgger: the policy drives, the autopilot takes over when they disagree, every state is labelled.

One iteration: roll the current policy out on training routes with an
autopilot-gated takeover (:class:`GatedPolicy`): while the policy drives, each step
compares its action with the autopilot's; after ``patience`` steps of disagreement
(steering apart by more than ``steer_gap``, or the autopilot braking hard while the
policy does not) the autopilot takes over for ``hold_s`` and hands back. Every state of
the rollout, the policy's own and the autopilot's, is labelled with the autopilot's
action; the frames where a takeover starts (the interventions) weigh
``takeover_weight`` in the loss. The new frames join the data and the network is
trained again (warm-started, ``bc.epochs`` passes over all of it).

:func:`run_dagger` runs the iterations and writes a checkpoint after each. With a
``store`` folder the rollouts are also recorded into the episode store: each takeover
goes through an :class:`envs.takeover.TakeoverWrapper` (trigger ``disagreement``,
driver ``autopilot``), so the catalog lists the interventions with their context.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.config import DrivingEnvConfig
from policy.bc import BCConfig, train_bc
from policy.checkpoint import CheckpointPolicy, save_checkpoint
from policy.collect import DriverSpec, EpisodeLog, episode_plan, run_episodes
from policy.data import Samples
from policy.network import DrivingNetwork
from sim.errors import ConfigError

__all__ = ["GateConfig", "DaggerConfig", "GatedPolicy", "dagger_rollouts", "run_dagger"]


@dataclass(frozen=True)
class GateConfig:
    """When the autopilot takes over from the policy."""

    steer_gap: float = field(
        default=0.25, metadata={"help": "steering difference that counts as disagreement"}
    )
    brake_gap: float = field(default=0.6, metadata={"help": "accel above a hard-braking autopilot's by this"})
    hard_brake: float = field(default=-0.5, metadata={"help": "autopilot accel below this is hard braking"})
    patience: int = field(default=3, metadata={"help": "steps of disagreement before a takeover"})
    hold_s: float = field(default=1.5, metadata={"help": "how long the autopilot keeps control"})

    def __post_init__(self) -> None:
        for name in ("steer_gap", "brake_gap", "hold_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"GateConfig.{name} must be > 0, got {value}")
        if self.patience < 1:
            raise ConfigError(f"GateConfig.patience must be >= 1, got {self.patience}")


@dataclass(frozen=True)
class DaggerConfig:
    """What :func:`run_dagger` does per iteration."""

    iterations: int = field(default=3, metadata={"help": "rounds of rollout and retraining"})
    episodes: int = field(default=10, metadata={"help": "policy rollouts per round"})
    maps: tuple[str, ...] = field(default=(), metadata={"help": "towns to roll out in (default: collect's)"})
    route_length_m: tuple[float, float] = field(default=(300.0, 600.0), metadata={"help": "route length"})
    every: int = field(default=2, metadata={"help": "keep every k-th frame"})
    max_steps: int = field(default=3000, metadata={"help": "steps per episode at most"})
    seed: int = field(default=100_000, metadata={"help": "seed of the first rollout (apart from collect's)"})
    takeover_weight: float = field(default=3.0, metadata={"help": "loss weight of takeover frames"})
    workers: int = field(default=1, metadata={"help": "processes rolling out in parallel"})
    gate: GateConfig = field(default_factory=GateConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "maps", tuple(self.maps))
        object.__setattr__(self, "route_length_m", tuple(float(v) for v in self.route_length_m))
        for name in ("iterations", "episodes", "every", "max_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"DaggerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.takeover_weight < 0:
            raise ConfigError(f"DaggerConfig.takeover_weight must be >= 0, got {self.takeover_weight}")


class GatedPolicy:
    """The policy drives; the autopilot takes over on disagreement (see the module docstring).
    ``takeover_started`` is true on the step a takeover begins."""

    def __init__(self, policy: CheckpointPolicy, gate: GateConfig, dt_s: float):
        self.policy, self.gate = policy, gate
        self.hold_steps = max(1, round(gate.hold_s / dt_s))
        self._left = 0
        self._apart = 0
        self.takeover_started = False
        self.takeover: Any = None

    def attach(self, takeover: Any) -> None:
        """Drive through ``takeover`` (an :class:`envs.takeover.TakeoverWrapper`): the
        autopilot takes over and hands back there, which applies its action and reports
        the intervention; :meth:`act` then returns the policy's own wish (the recorded
        ``policy_action``). The executed actions are the same as without it."""
        self.takeover = takeover

    def reset(self, seed: int) -> None:
        self._left = self._apart = 0
        self.takeover_started = False

    def _disagree(self, mine: np.ndarray, pilot: np.ndarray) -> bool:
        g = self.gate
        if abs(float(mine[0] - pilot[0])) > g.steer_gap:
            return True
        return bool(pilot[1] < g.hard_brake and mine[1] > pilot[1] + g.brake_gap)

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> tuple[np.ndarray, bool]:
        pilot = np.asarray(info["autopilot_action"], np.float32)
        self.takeover_started = False
        if self._left > 0:
            self._left -= 1
            return (pilot if self.takeover is None else self.policy.act(obs)), True
        if self.takeover is not None and self.takeover.driver == "autopilot":
            self.takeover.hand_back()
        mine = self.policy.act(obs)
        self._apart = self._apart + 1 if self._disagree(mine, pilot) else 0
        if self._apart >= self.gate.patience:
            self._apart = 0
            self._left = self.hold_steps - 1
            self.takeover_started = True
            if self.takeover is None:
                return pilot, True
            self.takeover.take_over("autopilot", "disagreement")
            return mine, True
        return mine, False


def dagger_rollouts(
    checkpoint: str | os.PathLike,
    config: DaggerConfig,
    maps: tuple[str, ...],
    iteration: int,
    env_config: DrivingEnvConfig | None = None,
    progress: Callable[[str, int, EpisodeLog], None] | None = None,
    store: str | os.PathLike | None = None,
) -> tuple[Samples, list[EpisodeLog]]:
    """One round of gated rollouts of the policy at ``checkpoint``; the labelled frames and
    the logs (``config.workers`` processes); recorded into ``store`` too when given."""
    base = (env_config or DrivingEnvConfig()).replace(
        route_length_m=config.route_length_m, autopilot_in_info=True
    )
    spec = DriverSpec(
        "gated", checkpoint=str(checkpoint), gate=config.gate, takeover_weight=config.takeover_weight
    )
    plan = episode_plan(maps, config.episodes, config.seed + iteration * config.episodes)
    parts, logs = [], []
    for town, seed, samples, log in run_episodes(
        plan,
        spec,
        base,
        every=config.every,
        max_steps=config.max_steps,
        workers=config.workers,
        store=store,
    ):
        if log.skipped:
            continue
        parts.append(samples)
        logs.append(log)
        if progress is not None:
            progress(town, seed, log)
    return Samples.concat(parts), logs


def run_dagger(
    data: Samples,
    config: DaggerConfig,
    bc: BCConfig,
    out: str | os.PathLike,
    *,
    maps: tuple[str, ...],
    network: DrivingNetwork | None = None,
    env_config: DrivingEnvConfig | None = None,
    log_dir: str | os.PathLike | None = None,
    progress: Callable[[str, int, EpisodeLog], None] | None = None,
    store: str | os.PathLike | None = None,
) -> tuple[DrivingNetwork, list[dict[str, Any]]]:
    """BC on ``data`` (unless ``network`` is given), then ``config.iterations`` DAgger rounds.
    Checkpoints go to ``out/iter_K``; the final one to ``out`` itself. With ``store`` the
    rollouts are recorded into that episode store folder as well."""
    out = Path(out)
    history: list[dict[str, Any]] = []
    if network is None:
        network, report = train_bc(data, bc, log_dir=_sub(log_dir, "iter_0"))
        save_checkpoint(out / "iter_0", network, {"kind": "bc", "frames": len(data), "bc": report.to_dict()})
    else:
        save_checkpoint(out / "iter_0", network, {"kind": "init"})
    for k in range(1, config.iterations + 1):
        new, logs = dagger_rollouts(out / f"iter_{k - 1}", config, maps, k, env_config, progress, store)
        data = Samples.concat([data, new])
        takeovers = sum(log.takeovers for log in logs)
        policy_share = 1.0 - float(np.mean([log.expert_share for log in logs]))
        network, report = train_bc(data, bc, network=network, log_dir=_sub(log_dir, f"iter_{k}"))
        entry = {
            "iteration": k,
            "new_frames": len(new),
            "frames": len(data),
            "takeovers": takeovers,
            "policy_share": policy_share,
            "rollout_driving_score": float(np.mean([log.score["driving_score"] for log in logs])),
            "bc": report.to_dict(),
        }
        history.append(entry)
        save_checkpoint(out / f"iter_{k}", network, {"kind": "dagger", **entry})
    save_checkpoint(out, network, {"kind": "dagger", "iterations": history})
    return network, history


def _sub(log_dir: str | os.PathLike | None, name: str) -> str | None:
    return None if log_dir is None else str(Path(log_dir) / name)
