"""The env's cameras: the rig and weather of the config, one renderer per map.

The renderer (:mod:`sim.render`, torch) is imported when a :class:`CameraSet` is
built, never at ``import envs``. A map's static scene is built the first time a world
on that map is rendered and kept for every later episode and world.

Rendering while the worlds step (:meth:`CameraSet.frames`): a batched env steps its
worlds one after another in Python, which holds the GIL, while the numba camera kernel
does not. So :class:`Frames` hands each stepped world to render threads
(:class:`sim.render.workers.RenderWorkers`, compiled loops that never take the GIL), and
the worlds after it step meanwhile; when the last world has stepped, the stepping thread
draws whatever worlds no render thread has started. The images are the same as one
batched call's, bit for bit: each frame is drawn alone from its own state.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.config import DrivingEnvConfig
from sim.errors import ConfigError
from sim.state import WorldState

if TYPE_CHECKING:
    from envs.world import DrivingWorld, SharedAssets
    from sim.render.workers import RenderWorkers

__all__ = ["CameraSet", "Frames"]


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
        self._workers: RenderWorkers | None = None
        self._stop_workers: weakref.finalize | None = None
        self._box_room = 512  # actor boxes a worker slot holds (grows when a state has more)

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

    def frames(self, worlds: Sequence[DrivingWorld], threaded: bool = True) -> Frames:
        """A :class:`Frames` for one step of ``worlds`` (see the module docstring): ``add``
        each world's state as it is stepped, then ``result()``. ``threaded=False``: one
        batched call in ``result()``."""
        return Frames(self, worlds, self.workers(worlds) if threaded else None)

    def render_threads(self) -> int:
        """Threads that may draw while the caller steps worlds: numba's count less the
        caller's; 0 where the kernel cannot run beside Python (torch, a CARLA server) or
        the platform has no render workers (:func:`sim.render.workers.available`)."""
        import numba

        from sim.render.workers import available

        if self.device != "cpu" or any(r.backend != "numba" for r in self._renderers.values()):
            return 0
        return numba.get_num_threads() - 1 if available() else 0

    def workers(self, worlds: Sequence[DrivingWorld]) -> RenderWorkers | None:
        """The render workers for a step of ``worlds`` (on the first world's map), started on
        first use and again when the worlds, thread count or box room change; None without
        render threads (then one batched call draws a step). An env never closed stops
        them when it is collected."""
        threads = self.render_threads()
        if threads == 0 or any(getattr(w.backend, "renders_cameras", False) for w in worlds):
            return None
        from sim.render.workers import RenderWorkers

        renderer = self.renderer_for(worlds[0])
        w = self._workers
        if (
            w is None
            or w.error is not None  # a failed one has raised its error once
            or (w.renderer, w.slots, w.threads) != (renderer, len(worlds), threads)
            or w.box_capacity < self._box_room
        ):
            self.close()
            w = self._workers = RenderWorkers(renderer, len(worlds), threads, self._box_room)
            self._stop_workers = weakref.finalize(self, w.close)
        return w

    def need_box_room(self, boxes: int) -> None:
        """A state had ``boxes`` actor boxes, more than a worker slot holds: the next step's
        workers get room for twice as many."""
        self._box_room = max(self._box_room, 2 * boxes)

    def close(self) -> None:
        """Stop the render threads (a later step starts them again)."""
        if self._workers is not None:
            self._stop_workers()  # closes them, once
            self._workers = None


class Frames:
    """The camera images of one step of N worlds, drawn while the worlds step.

    ``add(k, state)`` after world k has stepped (k = 0..N-1, in order);
    ``add_extra(world, state)`` for an image outside the N (a final observation), which
    returns its index in ``result()``'s second value; ``result()`` waits for every image
    and returns ((N, n_cams, H, W, 3), [(n_cams, H, W, 3) per extra]). With
    :class:`~sim.render.workers.RenderWorkers`, each world is handed to them as it is
    added (a world on another map than theirs, or with more actor boxes than a slot
    holds, is drawn by the stepping thread in ``result()``); without, every image is
    drawn in ``result()`` in one batched call, as :meth:`CameraSet.render_batch` does.
    """

    def __init__(self, cameras: CameraSet, worlds: Sequence[DrivingWorld], workers: RenderWorkers | None):
        self.cameras, self.worlds, self._workers = cameras, worlds, workers
        self.states: list[WorldState | None] = [None] * len(worlds)
        self.extra: list[tuple[DrivingWorld, WorldState]] = []
        self._added = 0
        self._own: list[int] = []  # worlds the stepping thread draws
        if workers is not None:
            workers.begin()

    def add(self, k: int, state: WorldState) -> None:
        if k != self._added:
            raise RuntimeError(f"add world {self._added} next (worlds are added in order), got {k}")
        self.states[k] = state
        self._added += 1
        w = self._workers
        if w is None:
            return
        if self.cameras.renderer_for(self.worlds[k]) is w.renderer:
            boxes = w.add(k, state)
            if boxes <= w.box_capacity:
                return
            self.cameras.need_box_room(boxes)
        w.skip(k)
        self._own.append(k)

    def add_extra(self, world: DrivingWorld, state: WorldState) -> int:
        self.extra.append((world, state))
        return len(self.extra) - 1

    def result(self) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._added < len(self.worlds):
            raise RuntimeError("every world's state must be added before the frames are read")
        w = self._workers
        # what the stepping thread draws, in one batched call: every world without workers
        # (else the worlds they do not draw), then the extra images
        mine = range(len(self.worlds)) if w is None else self._own
        worlds = [self.worlds[k] for k in mine] + [world for world, _ in self.extra]
        states = [self.states[k] for k in mine] + [state for _, state in self.extra]
        drawn = self.cameras.render_batch(worlds, states) if worlds else None
        extra = [drawn[len(mine) + j].copy() for j in range(len(self.extra))]
        if w is None:
            return (drawn[: len(mine)].copy() if extra else drawn), extra
        for j, k in enumerate(mine):  # while the workers draw the others
            w.out[k] = drawn[j]
        return w.collect().copy(), extra
