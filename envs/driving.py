"""The driving env: one embedded world behind Gymnasium's ``Env`` API.

``DrivingEnv(config=None, *, render_mode=None, assets=None, **overrides)``:
``overrides`` are :class:`~envs.config.DrivingEnvConfig` fields
(``gymnasium.make("loopdrive/Drive-v0", camera_width_px=64)``); an unknown name raises
:class:`~sim.errors.ConfigError`. ``assets`` (:class:`~envs.world.SharedAssets`) lets
envs of one process share what is built per map (parsed map, lane tables, coarse
roads, the cameras' static scene: seconds per map); by default each env builds its own.

* Observation and action: see :mod:`envs.spaces`.
* ``reset(*, seed=None, options=None)``: a new episode (:mod:`envs.world` explains
  the seeds). The backend, the map assets and the camera scene are kept across resets.
* ``step(action)``: the fixed sequence of :meth:`envs.world.DrivingWorld.step`, then
  the cameras. ``terminated`` on route completion, route deviation and (by default)
  collisions; ``truncated`` on the route-length time limit and after 180 s standing
  still. A wrong action shape or dtype, or a NaN, raises ``ValueError``.
* ``info``: ``state`` (the privileged :class:`~sim.state.WorldState`), ``autopilot_action``
  (``float32 [steer, accel]`` the privileged autopilot would apply in this state; with
  ``autopilot_in_info``), ``score`` (``route_completion`` 0-100, ``infraction_penalty``,
  ``driving_score`` 0-100, so far), ``termination_reason``
  (:class:`~envs.world.TerminationReason`), ``reward_terms`` (each weighted term; the
  reward is their sum), ``route_index`` and ``episode_seed``.
* ``render()``: ``rgb_array`` returns the cameras tiled with the route map inset and a
  HUD (speed, next maneuver, score); ``human`` shows the same in a pygame window.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.cameras import CameraSet
from envs.config import DrivingEnvConfig
from envs.display import PygameWindow, frame_of
from envs.spaces import action_space, observation_space
from envs.world import DrivingWorld, SharedAssets, StepResult

__all__ = ["DrivingEnv", "make_config"]


def make_config(config: DrivingEnvConfig | None, overrides: dict[str, Any]) -> DrivingEnvConfig:
    """``config`` (default: the defaults) with ``overrides`` applied and validated."""
    base = config if config is not None else DrivingEnvConfig()
    return base.replace(**overrides) if overrides else base


class DrivingEnv(gym.Env):
    """Closed-loop driving on the embedded simulator (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 20}

    def __init__(
        self,
        config: DrivingEnvConfig | None = None,
        *,
        render_mode: str | None = None,
        assets: SharedAssets | None = None,
        **overrides: Any,
    ):
        self.config = make_config(config, overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.assets = assets if assets is not None else SharedAssets()
        self.cameras = CameraSet(self.config, self.assets)
        self.world = DrivingWorld(self.config, self.assets)
        self.observation_space = observation_space(self.cameras.shape, self.config.route_map)
        self.action_space = action_space()
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.config.world.dt_s)}
        self._last: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._window: PygameWindow | None = None
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._seeded and self.config.seed is not None:
            seed = self.config.seed
        super().reset(seed=seed)
        self._seeded = True
        result = self.world.reset(seed, self.np_random)
        obs = self._with_camera(result)
        self._last = (obs, result.info)
        if self.render_mode == "human":
            self.render()
        return obs, result.info

    def step(self, action):
        result = self.world.step(action)
        obs = self._with_camera(result)
        self._last = (obs, result.info)
        if self.render_mode == "human":
            self.render()
        return obs, result.reward, result.terminated, result.truncated, result.info

    def _with_camera(self, result: StepResult) -> dict[str, Any]:
        return {"camera": self.cameras.render(self.world, result.state), **result.observation}

    def frame(self) -> np.ndarray:
        """The picture ``render()`` shows, for the last observation."""
        if self._last is None:
            raise RuntimeError("reset the env before rendering it")
        obs, info = self._last
        return frame_of(obs, info, self.config.route_map)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() without a render_mode: build the env with render_mode='rgb_array' or 'human'"
            )
            return None
        frame = self.frame()
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = PygameWindow(fps=self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self):
        if self._window is not None:
            self._window.close()
            self._window = None
        self.world.backend.close()
        super().close()
