"""Many worlds in one process, stepped together, their cameras rendered in batches.

:class:`WorldBatch` holds N :class:`~envs.world.DrivingWorld` s (one
:class:`~sim.embedded.EmbeddedBackend` each, all sharing the map assets and coarse
roads) and one :class:`~envs.cameras.CameraSet`; a step steps every world in turn and
hands each stepped world to the render threads, so its cameras are drawn while the next
worlds step (:class:`~envs.cameras.Frames`;
without render threads, or on CUDA, one ``Renderer.render_batch`` call after the last
world).
:class:`DrivingVectorEnv` puts Gymnasium's ``VectorEnv`` API on it, and
:class:`envs.sb3.DrivingSB3VecEnv` Stable-Baselines3's.

Seeds, as Gymnasium's vector envs: ``reset(seed=s)`` seeds world k with ``s + k``
(a list gives one seed per world), and world k then runs exactly as a
:class:`~envs.driving.DrivingEnv` reset with ``seed=s + k``, observation for
observation.

Autoreset (``metadata["autoreset_mode"]``):

* ``NEXT_STEP`` (default, Gymnasium 1.x's default): the step on which world k ends
  returns its last observation with ``terminated``/``truncated``; the next ``step``
  resets world k instead of stepping it (its action is ignored) and returns the
  first observation of the new episode with reward 0 and both flags False.
* ``SAME_STEP``: world k is reset on the step it ends; the step returns the new
  episode's first observation, and ``info["final_obs"][k]`` / ``info["final_info"]``
  hold the last one (its cameras are drawn in the same step).

Infos are batched as Gymnasium's ``VectorEnv._add_info`` does: every key holds an
array over worlds (an object array for the world state and the termination reason)
and ``"_key"`` says which worlds have it (all of them: every world reports every key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.cameras import CameraSet
from envs.config import DrivingEnvConfig
from envs.display import frame_of
from envs.driving import make_config
from envs.spaces import action_space, observation_space
from envs.world import DrivingWorld, SharedAssets, StepResult

__all__ = ["WorldBatch", "DrivingVectorEnv", "batch_infos"]


class WorldBatch:
    """N worlds, their generators and one camera set (see the module docstring)."""

    def __init__(self, num_envs: int, config: DrivingEnvConfig, assets: SharedAssets | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = config
        self.num_envs = num_envs
        self.assets = assets if assets is not None else SharedAssets()
        self.cameras = CameraSet(config, self.assets)
        self.worlds = [DrivingWorld(config, self.assets) for _ in range(num_envs)]
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._started = [False] * num_envs
        self.single_observation_space = observation_space(self.cameras.shape, config.route_map)
        self.single_action_space = action_space()
        self.last_obs: list[dict[str, Any] | None] = [None] * num_envs
        self.last_info: list[dict[str, Any] | None] = [None] * num_envs

    def reset_world(self, k: int, seed: int | None) -> StepResult:
        """Reset world k as ``DrivingEnv.reset(seed=seed)`` would (the same generator use)."""
        if seed is None and not self._started[k] and self.config.seed is not None:
            seed = self.config.seed + k
        if seed is not None:
            self._rngs[k] = seeding.np_random(seed)[0]
        elif self._rngs[k] is None:
            self._rngs[k] = seeding.np_random()[0]
        self._started[k] = True
        return self.worlds[k].reset(seed, self._rngs[k])

    def step_world(self, k: int, action: Any) -> StepResult:
        return self.worlds[k].step(action)

    def frames(self):
        """The :class:`~envs.cameras.Frames` of one step: ``add`` each world's state as it
        steps (its cameras are drawn meanwhile), then pass it to :meth:`observe`."""
        return self.cameras.frames(self.worlds)

    def observe(
        self, results: Sequence[StepResult], extra: Sequence[tuple[int, StepResult]] = (), frames=None
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """The batched observation of ``results`` (one per world) and the single
        observations of ``extra`` (world, result) pairs. ``frames``: the step's
        :class:`~envs.cameras.Frames` with every result's state added; without it, every
        camera is drawn here in one render call."""
        if frames is None:
            frames = self.cameras.frames(self.worlds, threaded=False)
            for k, r in enumerate(results):
                frames.add(k, r.state)
        for k, r in extra:
            frames.add_extra(self.worlds[k], r.state)
        parts = [r.observation for r in results]
        # np.array of same-shaped arrays: np.stack's array at a fraction of its cost
        rest = {
            "route": np.array([p["route"] for p in parts]),
            "speed": np.array([p["speed"] for p in parts]),
            "command": np.array([p["command"] for p in parts], np.int64),
            "command_distance_m": np.array([p["command_distance_m"] for p in parts]),
        }
        cams, extra_cams = frames.result()  # last: render threads draw meanwhile
        obs = {"camera": cams, **rest}
        singles = [{"camera": cam, **r.observation} for cam, (_, r) in zip(extra_cams, extra, strict=True)]
        for k, r in enumerate(results):
            self.last_obs[k] = {"camera": cams[k], **r.observation}
            self.last_info[k] = r.info
        return obs, singles

    def frame(self, k: int) -> np.ndarray:
        """World k's ``render()`` picture (cameras, route map inset, HUD) for its last observation."""
        obs, info = self.last_obs[k], self.last_info[k]
        if obs is None or info is None:
            raise RuntimeError("reset the env before rendering it")
        return frame_of(obs, info, self.config.route_map)

    def close(self) -> None:
        self.cameras.close()
        for world in self.worlds:
            world.backend.close()


def batch_infos(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-world infos of one structure as Gymnasium's vector infos (see the module
    docstring): numbers and arrays stacked, anything else in an object array, dicts
    recursively, and a ``"_key"`` mask (all True) per key."""
    return _batch_infos(infos, np.ones(len(infos), dtype=np.bool_))


def _batch_infos(infos: Sequence[dict[str, Any]], all_true: np.ndarray) -> dict[str, Any]:
    # each mask is a copy of ``all_true`` (cheaper than np.ones per key)
    out: dict[str, Any] = {}
    for key in infos[0]:
        values = [info[key] for info in infos]
        first = values[0]
        if isinstance(first, dict):
            out[key] = _batch_infos(values, all_true)
        elif isinstance(first, np.ndarray):
            out[key] = np.array(values)  # np.stack's array (one shape for all) at a third of its cost
        elif isinstance(first, bool | int | float | np.number) and not isinstance(first, np.bool_):
            out[key] = np.array(values, dtype=type(first))
        else:
            column = np.empty(len(values), dtype=object)
            for k, value in enumerate(values):
                column[k] = value
            out[key] = column
        out[f"_{key}"] = all_true.copy()
    return out


class DrivingVectorEnv(VectorEnv):
    """N driving worlds behind Gymnasium's ``VectorEnv`` (see the module docstring).

    ``DrivingVectorEnv(num_envs, config=None, *, autoreset_mode=NEXT_STEP,
    render_mode=None, assets=None, **overrides)``; ``assets`` and ``overrides`` (config
    fields) as for :class:`~envs.driving.DrivingEnv`.
    ``gymnasium.make_vec("loopdrive/Drive-v0", num_envs=N)`` builds one.
    """

    def __init__(
        self,
        num_envs: int,
        config: DrivingEnvConfig | None = None,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        assets: SharedAssets | None = None,
        **overrides: Any,
    ):
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"autoreset_mode must be NEXT_STEP or SAME_STEP, got {self.autoreset_mode}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"a vector env renders rgb_array frames or nothing, got render_mode={render_mode!r}"
            )
        self.batch = WorldBatch(num_envs, make_config(config, overrides), assets)
        self.config = self.batch.config
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.metadata = {
            "autoreset_mode": self.autoreset_mode,
            "render_modes": ["rgb_array"],
            "render_fps": round(1.0 / self.config.world.dt_s),
        }
        self.single_observation_space = self.batch.single_observation_space
        self.single_action_space = self.batch.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every world; ``seed`` an int (world k gets ``seed + k``), a list, or None."""
        if seed is None or isinstance(seed, int):
            super().reset(seed=seed)
            seeds = [None if seed is None else seed + k for k in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset needs {self.num_envs} seeds, got {len(seeds)}")
        results = [self.batch.reset_world(k, s) for k, s in enumerate(seeds)]
        self._autoreset[:] = False
        obs, _ = self.batch.observe(results)
        return obs, batch_infos([r.info for r in results])

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, 2), [steer, accel] per world, got {actions.shape}"
            )
        results: list[StepResult] = []
        finals: list[tuple[int, StepResult]] = []
        frames = self.batch.frames()
        for k in range(self.num_envs):
            if self._autoreset[k]:  # NEXT_STEP: the world ended on the previous step
                result = self.batch.reset_world(k, None)
            else:
                result = self.batch.step_world(k, actions[k])
                if self.autoreset_mode is AutoresetMode.SAME_STEP and (result.terminated or result.truncated):
                    finals.append((k, result))
                    result = self.batch.reset_world(k, None)
            frames.add(k, result.state)
            results.append(result)
        rewards = np.array([r.reward for r in results], dtype=np.float64)
        terminated = np.array([r.terminated for r in results], dtype=np.bool_)
        truncated = np.array([r.truncated for r in results], dtype=np.bool_)
        infos = batch_infos([r.info for r in results])
        if finals:
            terminated[[k for k, _ in finals]] = [r.terminated for _, r in finals]
            truncated[[k for k, _ in finals]] = [r.truncated for _, r in finals]
            rewards[[k for k, _ in finals]] = [r.reward for _, r in finals]
        obs, final_obs = self.batch.observe(results, finals, frames)  # after the rest: cameras last
        for (k, result), single in zip(finals, final_obs, strict=True):
            infos = self._add_info(infos, {"final_obs": single, "final_info": result.info}, k)
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._autoreset = terminated | truncated
        return obs, rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One ``rgb_array`` frame per world (cameras, route map inset, HUD)."""
        if self.render_mode is None:
            return None
        return tuple(self.batch.frame(k) for k in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        self.batch.close()
