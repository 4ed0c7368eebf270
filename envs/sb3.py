"""The batched worlds as a Stable-Baselines3 ``VecEnv``: ``PPO("MultiInputPolicy", env)``.

SB3's conventions: ``reset()`` returns only the observation (the infos go to
``reset_infos``) and uses the seeds of :meth:`seed`; ``step_wait`` resets a world on
the step it ends (``dones`` = terminated or truncated) and puts its last observation
in ``infos[k]["terminal_observation"]`` and ``infos[k]["TimeLimit.truncated"]`` (True
when the episode was cut off, not ended); every camera is rendered in one batch.
Wrap it in ``VecMonitor`` for episode returns in SB3's logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from envs.config import DrivingEnvConfig
from envs.driving import make_config
from envs.vector import WorldBatch
from envs.world import SharedAssets, StepResult

__all__ = ["DrivingSB3VecEnv"]


class DrivingSB3VecEnv(VecEnv):
    """``DrivingSB3VecEnv(num_envs, config=None, *, assets=None, **overrides)``
    (``assets`` and ``overrides`` as for :class:`~envs.driving.DrivingEnv`)."""

    def __init__(
        self,
        num_envs: int,
        config: DrivingEnvConfig | None = None,
        *,
        assets: SharedAssets | None = None,
        **overrides: Any,
    ):
        self.batch = WorldBatch(num_envs, make_config(config, overrides), assets)
        self.config = self.batch.config
        self._actions: np.ndarray | None = None
        super().__init__(num_envs, self.batch.single_observation_space, self.batch.single_action_space)

    def reset(self) -> dict[str, np.ndarray]:
        results = [self.batch.reset_world(k, self._seeds[k]) for k in range(self.num_envs)]
        self.reset_infos = [r.info for r in results]
        self._reset_seeds()
        self._reset_options()
        obs, _ = self.batch.observe(results)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        actions = self._actions
        if actions is None:
            raise RuntimeError("step_async must come before step_wait")
        if actions.shape != (self.num_envs, 2):
            raise ValueError(f"actions must have shape ({self.num_envs}, 2), got {actions.shape}")
        results: list[StepResult] = []
        finals: list[tuple[int, StepResult]] = []
        frames = self.batch.frames()
        for k in range(self.num_envs):
            result = self.batch.step_world(k, actions[k])
            if result.terminated or result.truncated:
                finals.append((k, result))
                result = self.batch.reset_world(k, None)
                self.reset_infos[k] = result.info
            frames.add(k, result.state)
            results.append(result)
        rewards = np.array([r.reward for r in results], dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=np.bool_)
        infos = [dict(r.info) for r in results]
        for k, result in finals:
            rewards[k] = result.reward
            dones[k] = True
            infos[k] = dict(result.info)
            infos[k]["TimeLimit.truncated"] = result.truncated and not result.terminated
        obs, final_obs = self.batch.observe(results, finals, frames)  # after the rest: cameras last
        for (k, _), single in zip(finals, final_obs, strict=True):
            infos[k]["terminal_observation"] = single
        self._actions = None
        return obs, rewards, dones, infos

    def close(self) -> None:
        self.batch.close()

    # -- SB3's attribute plumbing: the worlds stand in for sub-environments ----------

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "render_mode":
            return [None for _ in self._get_indices(indices)]
        return [getattr(self.batch.worlds[k], attr_name) for k in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for k in self._get_indices(indices):
            setattr(self.batch.worlds[k], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [
            getattr(self.batch.worlds[k], method_name)(*method_args, **method_kwargs)
            for k in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Every world's frame (cameras, route map inset, HUD)."""
        return [self.batch.frame(k) for k in range(self.num_envs)]
