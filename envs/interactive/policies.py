"""Policies the drive loop can run beside the person: the privileged autopilot and a
seeded random policy. A trained checkpoint plugs in through the same two methods
(the ``policy`` package provides it; ``scripts/drive.py`` looks policies up).

A policy maps the env's observation and info to ``float32 [steer, accel]``; it may
read ``info`` only because these two are baselines (the autopilot is privileged by
design), a trained policy reads the observation alone.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["DrivePolicy", "AutopilotPolicy", "RandomPolicy"]


class DrivePolicy(Protocol):
    """What the drive loop asks of a policy."""

    name: str

    def reset(self, episode_seed: int) -> None:
        """A new episode starts (its seed, for policies with randomness)."""

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        """``float32 [steer, accel]`` in [-1, 1] for this observation."""


class AutopilotPolicy:
    """The privileged autopilot: the env's ``info["autopilot_action"]`` (build the env
    with ``autopilot_in_info=True``, the default)."""

    name = "autopilot"

    def reset(self, episode_seed: int) -> None:
        pass  # the env's autopilot is built per episode

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        action = info.get("autopilot_action")
        if action is None:
            raise RuntimeError("the autopilot policy needs an env built with autopilot_in_info=True")
        return np.asarray(action, np.float32)


class RandomPolicy:
    """Uniform random ``[steer, accel]`` each step, from a generator seeded per episode
    by ``(seed, episode_seed)``: the same episode gets the same actions."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)

    def reset(self, episode_seed: int) -> None:
        self._rng = np.random.default_rng([self.seed, int(episode_seed)])

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, 2).astype(np.float32)
