"""Drivers that need no training: the policy protocol, a random policy and the autopilot.

A *policy* here is anything with ``reset(seed)`` and ``act(obs, info) -> action``
(``float32 [steer, accel]``). Learned policies read ``obs`` alone; the autopilot
"policy" reads the privileged action the env puts in ``info["autopilot_action"]``
(it never sees pixels). The run, replay and demo commands build policies by name
through one lookup function (``scripts.policies.make_policy``), where checkpoints plug in.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["Policy", "RandomPolicy", "AutopilotPolicy"]


class Policy(Protocol):
    """What drives an env: ``act`` maps an observation (and its info) to an action."""

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random ``steer`` in [-1, 1] and ``accel`` in ``accel_range`` (default
    [-1, 1]) from a generator seeded by ``reset``. A forward-leaning range such as
    (-0.2, 1) gives a car that gets somewhere while swerving: more situations per minute."""

    def __init__(self, seed: int | None = 0, accel_range: tuple[float, float] = (-1.0, 1.0)):
        lo, hi = accel_range
        if not -1.0 <= lo <= hi <= 1.0:
            raise ValueError(f"accel_range must satisfy -1 <= low <= high <= 1, got {accel_range}")
        self.accel_range = (float(lo), float(hi))
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng([seed, 7])

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        steer = self._rng.uniform(-1.0, 1.0)
        accel = self._rng.uniform(*self.accel_range)
        return np.array([steer, accel], np.float32)


class AutopilotPolicy:
    """The privileged autopilot as a policy: ``info["autopilot_action"]`` (the env must be
    built with ``autopilot_in_info=True``, the default)."""

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        action = info.get("autopilot_action")
        if action is None:
            raise RuntimeError("the autopilot policy needs an env with autopilot_in_info=True")
        return np.asarray(action, np.float32)
