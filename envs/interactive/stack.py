"""The env stack of a drive: the driving env, wrapped for the mode and the store.

``copilot`` puts a takeover wrapper (:class:`envs.takeover.TakeoverWrapper`) around
the env, so the person's takeovers become interventions; ``--record STORE`` puts the
recorder (:class:`envs.recorder.RecorderWrapper`) outermost, so every episode, with
its interventions, lands in the episode store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envs.config import DrivingEnvConfig
from envs.interactive.policies import DrivePolicy
from sim.errors import ConfigError

if TYPE_CHECKING:
    from envs.world import SharedAssets

__all__ = ["DriveStack", "build_drive_env"]


@dataclass
class DriveStack:
    """The outermost env to step, and the takeover wrapper inside it (or ``None``)."""

    env: Any
    takeover: Any = None


def build_drive_env(
    env_config: DrivingEnvConfig,
    mode: str,
    policy: DrivePolicy,
    *,
    record: str | Path | None = None,
    assets: SharedAssets | None = None,
) -> DriveStack:
    """The env for a drive in ``mode`` with ``policy``, recording to ``record``;
    ``assets``: per-map caches shared with other envs of the process."""
    from envs.driving import DrivingEnv

    if policy.name == "autopilot" and not env_config.autopilot_in_info:
        raise ConfigError("the autopilot policy needs autopilot_in_info=True in the env config")
    env: Any = DrivingEnv(env_config, assets=assets)
    takeover = None
    if mode == "copilot":
        from envs.takeover import TakeoverWrapper

        env = takeover = TakeoverWrapper(env)
    if record is not None:
        raise ConfigError("--record: the episode store is not wired into drive yet")
    return DriveStack(env, takeover)
