"""The env stack of a drive: the driving env, wrapped for the mode and the store.

From the inside out:

1. :class:`envs.driving.DrivingEnv`;
2. per mode: ``copilot``: :class:`envs.takeover.TakeoverWrapper` (the person's
   takeovers become interventions: ``info["driver"]``, ``policy_action``,
   ``executed_action``, ``intervention``, ``hand_back``); ``shadow``:
   :class:`envs.takeover.ShadowWrapper` with the person as the driver and the policy
   predicting (``info["disagreement"]`` where the two start to differ); ``manual``:
   :class:`HumanDriverWrapper` (every step is the person's: a demonstration);
3. with ``record``: :class:`envs.recorder.RecorderWrapper`, so every episode, with its
   interventions and disagreements, lands in the episode store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from envs.config import DrivingEnvConfig
from sim.errors import ConfigError

if TYPE_CHECKING:
    from envs.world import SharedAssets

__all__ = ["DriveStack", "HumanDriverWrapper", "build_drive_env"]


@dataclass
class DriveStack:
    """The outermost env to step, and the takeover wrapper inside it (or ``None``)."""

    env: Any
    takeover: Any = None


class HumanDriverWrapper(gym.Wrapper):
    """Manual driving: the action given to ``step`` is the person's, and ``info`` says
    so the way the takeover wrapper does (``driver`` ``"human"``, ``executed_action``)."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["driver"] = "human"
        info["executed_action"] = np.asarray(action, np.float32)
        return obs, reward, terminated, truncated, info


def build_drive_env(
    env_config: DrivingEnvConfig,
    mode: str,
    policy: Any,
    *,
    policy_id: str = "unknown",
    record: str | Path | None = None,
    shadow_thresholds: tuple[float, float] = (0.3, 0.6),
    assets: SharedAssets | None = None,
) -> DriveStack:
    """The env for a drive in ``mode`` beside ``policy`` (an :class:`envs.drivers.Policy`), recording
    to the store folder ``record`` under ``policy_id``. ``shadow_thresholds``: the
    ``(steer, accel)`` differences that count as a disagreement in shadow mode.
    ``assets``: per-map caches shared with other envs of the process."""
    from envs.driving import DrivingEnv

    if policy_id == "autopilot" and not env_config.autopilot_in_info:
        raise ConfigError("the autopilot policy needs autopilot_in_info=True in the env config")
    try:
        from envs.recorder import RecorderWrapper
        from envs.takeover import ShadowThresholds, ShadowWrapper, TakeoverWrapper
    except ImportError:
        if mode != "manual" or record is not None:
            what = f"mode {mode}" + (" with a store" if record is not None else "")
            raise ConfigError(
                f"{what} needs the takeover wrappers and the episode store "
                "(envs.takeover, envs.recorder), absent in this checkout"
            ) from None
    env: Any = DrivingEnv(env_config, assets=assets)
    takeover = None
    if mode == "copilot":
        env = takeover = TakeoverWrapper(env)
    elif mode == "shadow":
        steer, accel = shadow_thresholds
        env = ShadowWrapper(env, policy, ShadowThresholds(steer=steer, accel=accel), driver="human")
    else:
        env = HumanDriverWrapper(env)
    if record is not None:
        env = RecorderWrapper(env, record, policy_id=policy_id)
    return DriveStack(env, takeover)
