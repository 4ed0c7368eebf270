"""The env's cameras: the rig and weather of the config, one renderer per map.

The renderer (:mod:`sim.render`, torch) is imported when a :class:`CameraSet` is
built, never at ``import envs``. A map's static scene is built the first time a world
on that map is rendered and kept for every later episode and world.

Rendering while the worlds step (:meth:`CameraSet.frames`): a batched env steps its
worlds one after another in Python, which holds the GIL, while the numba camera kernel
does not. So :class:`Frames` hands each run of ``chunk`` stepped worlds to render
threads as one batched kernel call, and the worlds after them step meanwhile; when
the last world has stepped, the stepping thread draws whatever chunks no render thread
has started. The images are the same as one batched call's, bit for bit: each frame is
drawn alone from its own state.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.config import DrivingEnvConfig
from sim.errors import ConfigError
from sim.state import WorldState

if TYPE_CHECKING:
    from envs.world import DrivingWorld, SharedAssets

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
        self._pool: _RenderPool | None = None

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

    def frames(self, worlds: Sequence[DrivingWorld], chunk: int = 2) -> Frames:
        """A :class:`Frames` for one step of ``worlds`` (see the module docstring): ``add``
        each world's state as it is stepped, then ``result()``."""
        return Frames(self, worlds, chunk)

    def render_threads(self) -> int:
        """Threads that may draw while the caller steps worlds: numba's count less the
        caller's, 0 where the kernel cannot run beside Python (torch, a CARLA server)."""
        import numba

        if self.device != "cpu" or any(r.backend != "numba" for r in self._renderers.values()):
            return 0
        return numba.get_num_threads() - 1

    def pool(self) -> _RenderPool:
        """The render threads (started on first use; an env never closed stops them when
        it is collected)."""
        if self._pool is None or self._pool.size != self.render_threads():
            if self._pool is not None:
                self._pool.close()
            self._pool = _RenderPool(self.render_threads())
            weakref.finalize(self, self._pool.stop)
        return self._pool

    def close(self) -> None:
        """Stop the render threads (a later step starts them again)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class _Job:
    """One batched kernel call: packed states into rows of an output array, run once, by
    whichever thread claims it first."""

    def __init__(self, renderer: Any, packed: Any, out: np.ndarray):
        self.renderer, self.packed, self.out = renderer, packed, out
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._claim = threading.Lock()

    def run(self) -> None:
        if not self._claim.acquire(blocking=False):
            return  # another thread has it
        try:
            self.renderer.render_into(self.out, self.packed, threads=1)
        except BaseException as exc:  # handed to the stepping thread by result()
            self.error = exc
        finally:
            self.done.set()


#: Python's GIL switch interval while render threads run: a render thread whose kernel is
#: done waits at most this long for the GIL before it takes the next job (Python's default,
#: 5 ms, left it idle for most of a step; measured: 1,700 -> 2,400-2,600 steps/s at 16 worlds)
SWITCH_INTERVAL_S = 2e-4


class _RenderPool:
    """Daemon threads that run :class:`_Job` s from one queue. While they run, the
    process's GIL switch interval is at most :data:`SWITCH_INTERVAL_S`."""

    def __init__(self, size: int):
        self.size = size
        self._interval_s = sys.getswitchinterval()
        if size:
            sys.setswitchinterval(min(self._interval_s, SWITCH_INTERVAL_S))
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"loopdrive-render-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)
        time.sleep(0)  # hand the GIL to a render thread waiting for it, if any: it takes the job now

    def stop(self) -> None:
        """Ask the threads to end once their current job is done; the switch interval back."""
        for _ in self._threads:
            self._jobs.put(None)
        if self.size:
            sys.setswitchinterval(self._interval_s)

    def close(self) -> None:
        self.stop()
        for thread in self._threads:
            thread.join()

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)


class Frames:
    """The camera images of one step of N worlds, drawn while the worlds step.

    ``add(k, state)`` after world k has stepped (k = 0..N-1, in order);
    ``add_extra(world, state)`` for an image outside the N (a final observation), which
    returns its index in ``result()``'s second value; ``result()`` waits for every image
    and returns ((N, n_cams, H, W, 3), [(n_cams, H, W, 3) per extra]). Without render
    threads (see :meth:`CameraSet.render_threads`) every image is drawn in ``result()``
    in one batched call, as :meth:`CameraSet.render_batch` does.
    """

    def __init__(self, cameras: CameraSet, worlds: Sequence[DrivingWorld], chunk: int):
        if chunk < 1:
            raise ValueError(f"chunk must be a positive number of worlds, got {chunk}")
        self.cameras, self.worlds, self.chunk = cameras, worlds, chunk
        self.states: list[WorldState | None] = [None] * len(worlds)
        self.extra: list[tuple[DrivingWorld, WorldState]] = []
        self._pool = None
        own = any(getattr(w.backend, "renders_cameras", False) for w in worlds)  # a CARLA server's
        if cameras.render_threads() > 0 and not own:
            self._pool = cameras.pool()
            self._out = np.empty((len(worlds), *cameras.shape), np.uint8)
        self._jobs: list[_Job] = []
        self._added = 0  # worlds added so far
        self._next = 0  # the first world not yet handed to a job

    def add(self, k: int, state: WorldState) -> None:
        if k != self._added:
            raise RuntimeError(f"add world {self._added} next (worlds are added in order), got {k}")
        self.states[k] = state
        self._added += 1
        full = self._added - self._next >= self.chunk or self._added == len(self.worlds)
        if self._pool is not None and full:
            while self._next < self._added:
                self._submit(self._next, self._added)

    def add_extra(self, world: DrivingWorld, state: WorldState) -> int:
        self.extra.append((world, state))
        return len(self.extra) - 1

    def _submit(self, lo: int, hi: int) -> None:
        from sim.render.pack import pack_states

        renderer = self.cameras.renderer_for(self.worlds[lo])
        key = self.worlds[lo].backend.scenario.map
        for k in range(lo + 1, hi):  # one map per kernel call
            if self.worlds[k].backend.scenario.map != key:
                hi = k
                break
        packed = pack_states(self.states[lo:hi], renderer.scene.signal_rows)
        job = _Job(renderer, packed, self._out[lo:hi])
        self._jobs.append(job)
        self._pool.submit(job)
        self._next = hi

    def result(self) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._added < len(self.worlds):
            raise RuntimeError("every world's state must be added before the frames are read")
        extra = [self.cameras.render_batch([w], [s])[0] for w, s in self.extra]
        if self._pool is None:
            return self.cameras.render_batch(self.worlds, self.states), extra
        for job in self._jobs:  # draw what no render thread has started
            job.run()
        for job in self._jobs:
            job.done.wait()
            if job.error is not None:
                raise job.error
        return self._out, extra
