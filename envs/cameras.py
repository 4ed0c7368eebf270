"""The env's cameras: the rig and weather of the config, one renderer per map.

The renderer (:mod:`sim.render`, torch) is imported when a :class:`CameraSet` is
built, never at ``import envs``. A map's static scene is built the first time a world
on that map is rendered and kept for every later episode and world.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.config import DrivingEnvConfig
from sim.errors import ConfigError
from sim.state import WorldState

if TYPE_CHECKING:
    from envs.world import DrivingWorld, SharedAssets

__all__ = ["CameraSet"]


class CameraSet:
    """The config's camera rig under its weather, rendered on ``render_device``.

    :meth:`render` draws one world's cameras; :meth:`render_batch` draws many worlds in
    one renderer call per map. Images are ``uint8`` (n_cams, H, W, 3), RGB.
    """

    def __init__(self, config: DrivingEnvConfig, assets: SharedAssets):
        import sim.render as render

        if config.rig not in render.RIG_NAMES:
            raise ConfigError(f"unknown camera rig {config.rig!r}; valid rigs: {', '.join(render.RIG_NAMES)}")
        if config.weather not in render.WEATHER_NAMES:
            raise ConfigError(f"unknown weather {config.weather!r}; valid: {', '.join(render.WEATHER_NAMES)}")
        self._render = render
        self.specs = tuple(
            render.rig(config.rig, width_px=config.camera_width_px, height_px=config.camera_height_px)
        )
        self.weather = render.weather_preset(config.weather)
        self.device = config.render_device
        self._scenes = assets.scenes
        self._renderers: dict[str, Any] = {}

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(n_cams, height, width, 3) of one world's images."""
        spec = self.specs[0]
        return len(self.specs), spec.height_px, spec.width_px, 3

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    def renderer_for(self, world: DrivingWorld) -> Any:
        """The renderer of the map ``world`` is on (its static scene built once per map)."""
        key = world.backend.scenario.map
        renderer = self._renderers.get(key)
        if renderer is None:
            backend = world.backend
            scene = self._scenes.get(key)
            if scene is None:
                scene = self._render.StaticScene.build(backend.road_map, signals=backend.signals, seed=0)
                self._scenes[key] = scene
            renderer = self._render.Renderer(scene, self.specs, self.weather, device=self.device)
            self._renderers[key] = renderer
        return renderer

    def render(self, world: DrivingWorld, state: WorldState) -> np.ndarray:
        """One world's cameras for ``state``: ``uint8`` (n_cams, H, W, 3). A backend with
        cameras of its own (CARLA's sensors) gives its images of the last tick."""
        if getattr(world.backend, "renders_cameras", False):
            return np.asarray(world.backend.render(self.specs))
        return np.asarray(self.renderer_for(world).render(state))

    def render_batch(self, worlds: Sequence[DrivingWorld], states: Sequence[WorldState]) -> np.ndarray:
        """Every world's cameras: ``uint8`` (B, n_cams, H, W, 3), one renderer call per map."""
        if any(getattr(w.backend, "renders_cameras", False) for w in worlds):
            return np.stack([self.render(w, s) for w, s in zip(worlds, states, strict=True)])
        keys = [w.backend.scenario.map for w in worlds]
        if len(set(keys)) == 1:
            return np.asarray(self.renderer_for(worlds[0]).render_batch(list(states)))
        out = np.empty((len(worlds), *self.shape), np.uint8)
        for key in dict.fromkeys(keys):
            rows = [i for i, k in enumerate(keys) if k == key]
            out[rows] = self.renderer_for(worlds[rows[0]]).render_batch([states[i] for i in rows])
        return out
