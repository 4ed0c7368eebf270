"""Gymnasium environments built on :mod:`sim`.

Importing :mod:`envs` registers the env ids (:mod:`envs.registration`) and imports
nothing heavy: the env classes load on first use.

* :class:`DrivingEnv` (``envs.driving``): one world, Gymnasium ``Env``.
* :class:`DrivingVectorEnv` (``envs.vector``): N worlds stepped together, every camera
  rendered in one batch, Gymnasium ``VectorEnv``.
* :class:`DrivingSB3VecEnv` (``envs.sb3``): the same batch as a Stable-Baselines3
  ``VecEnv``.
* :class:`TakeoverWrapper`, :class:`ShadowWrapper` (``envs.takeover``) and
  :class:`RecorderWrapper` (``envs.recorder``): takeovers, shadow mode, and the episode
  store (``envs.store``, ``envs.catalog``), replayed by ``envs.replay``.
* :class:`DrivingEnvConfig`, :class:`RewardConfig` (``envs.config``),
  :class:`TerminationReason` and :class:`SharedAssets` (per-map caches that envs of
  one process may share; ``envs.world``).
"""

from __future__ import annotations

import importlib
from typing import Any

from envs.registration import ENV_IDS, register_envs

__all__ = [
    "ENV_IDS",
    "DrivingEnv",
    "DrivingVectorEnv",
    "DrivingSB3VecEnv",
    "DrivingEnvConfig",
    "RewardConfig",
    "TerminationReason",
    "SharedAssets",
    "TakeoverWrapper",
    "ShadowWrapper",
    "RecorderWrapper",
]

_LAZY = {
    "DrivingEnv": "envs.driving",
    "DrivingVectorEnv": "envs.vector",
    "DrivingSB3VecEnv": "envs.sb3",
    "DrivingEnvConfig": "envs.config",
    "RewardConfig": "envs.config",
    "TerminationReason": "envs.world",
    "SharedAssets": "envs.world",
    "TakeoverWrapper": "envs.takeover",
    "ShadowWrapper": "envs.takeover",
    "RecorderWrapper": "envs.recorder",
}

register_envs()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")
