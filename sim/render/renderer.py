"""The camera renderer: world states in, RGB images out.

``Renderer(scene, cams, weather, device="cpu", backend=None)`` draws every camera of
a rig for one state (:meth:`Renderer.render`) or for a batch of states of worlds on
the scene's map (:meth:`Renderer.render_batch`). Two implementations of one
algorithm sit behind it:

* ``"numba"`` (the default on ``device="cpu"``): one compiled kernel, parallel over
  frames x cameras (:mod:`sim.render.kernel_numba`), float64;
* ``"torch"`` (the default on ``device="cuda"``, and runnable on the CPU):
  the same math on batched float32 tensors (:mod:`sim.render.kernel_torch`).

The world as a camera sees it: the ground is the plane at the ego's height (the ego
neither pitches nor rolls), textured from the map raster; actors and roadside
structures are upright boxes (yaw only) standing at their own heights.

They agree to within rounding: float32 against float64 moves a ground sample that
lies within ~1e-5 m of a texel edge to the neighbouring texel, a depth tie between
two faces closer than 1 mm may go either way, and light and fog differ by a least
significant bit now and then. The numba path gives bit-identical images for the
same scene, weather and state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from sim.errors import ConfigError
from sim.render import layout as L
from sim.render.camera import CameraSpec
from sim.render.kernel_numba import cull_table, kernel_tables, render_numba, render_numba_serial
from sim.render.pack import Packed, pack_states
from sim.render.scene import StaticScene
from sim.render.tables import CameraTables, weather_vector
from sim.render.weather import WeatherPreset

__all__ = ["Renderer", "BACKENDS", "DEVICES"]

BACKENDS = ("numba", "torch")
DEVICES = ("cpu", "cuda")


def _check_device(device: str, backend: str | None) -> tuple[str, str]:
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; valid devices: cpu, cuda (or cuda:N)")
    is_cuda = device.startswith("cuda")
    backend = backend or ("torch" if is_cuda else "numba")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown render backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if is_cuda and backend == "numba":
        raise ConfigError("the numba renderer runs on the CPU only; use backend='torch' with device='cuda'")
    if is_cuda:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={device!r} needs CUDA, but torch.cuda.is_available() is False on this machine "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use device='cpu'"
            )
    return device, backend


def _check_cams(cams) -> tuple[CameraSpec, ...]:
    if isinstance(cams, CameraSpec):
        cams = (cams,)
    cams = tuple(cams)
    if not cams or not all(isinstance(c, CameraSpec) for c in cams):
        raise ConfigError("Renderer needs one or more CameraSpec (see sim.render.rig)")
    sizes = {(c.width_px, c.height_px) for c in cams}
    if len(sizes) != 1:
        raise ConfigError(f"all cameras of a rig must have one image size, got {sorted(sizes)}")
    names = [c.name for c in cams]
    if len(set(names)) != len(names):
        raise ConfigError(f"camera names must be unique, got {names}")
    return cams


class Renderer:
    """Draws a rig's cameras for world states on one map.

    ``scene`` (:class:`StaticScene`) fixes the map and its structures, ``cams`` the
    rig (equal image sizes), ``weather`` the look. ``device`` is ``"cpu"`` or
    ``"cuda"`` (``"cuda:N"``); ``backend`` ``"numba"`` or ``"torch"`` (None: numba on
    the CPU, torch on CUDA). Asking for CUDA where there is none raises
    :class:`ConfigError` saying so.
    """

    def __init__(
        self,
        scene: StaticScene,
        cams: Sequence[CameraSpec],
        weather: WeatherPreset,
        device: str = "cpu",
        backend: str | None = None,
    ):
        if not isinstance(scene, StaticScene):
            raise ConfigError("Renderer needs a StaticScene (StaticScene.build(road_map, signals, seed))")
        if not isinstance(weather, WeatherPreset):
            raise ConfigError("Renderer needs a WeatherPreset (see sim.render.weather_preset)")
        self.scene = scene
        self.cams = _check_cams(cams)
        self.weather = weather
        self.device, self.backend = _check_device(device, backend)
        self.tables = CameraTables.build(self.cams, weather, scene.raster.m_per_px, scene.config.mip_levels)
        self.ground = scene.ground(weather.palette())
        self.weather_vector = weather_vector(weather)
        self._numba_args = self._numba_static() if self.backend == "numba" else None
        self._torch = None
        if self.backend == "torch":
            from sim.render.kernel_torch import TorchRenderer

            self._torch = TorchRenderer(self, self.device)

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        """(n_cams, H, W, 3) of one state's images."""
        return len(self.cams), self.tables.height_px, self.tables.width_px, 3

    def render(self, state) -> np.ndarray:
        """(n_cams, H, W, 3) uint8 RGB images of one :class:`sim.state.WorldState`."""
        return self.render_batch([state])[0]

    def render_batch(self, states: Sequence) -> np.ndarray:
        """(B, n_cams, H, W, 3) uint8 RGB for B states (any worlds on this scene's map)."""
        states = list(states)
        packed = pack_states(states, self.scene.signal_rows)
        return self.render_packed(packed)

    def render_packed(self, packed: Packed) -> np.ndarray:
        """Render already packed states (:func:`sim.render.pack.pack_states`)."""
        b = packed.ego.shape[0]
        out = np.empty((b, *self.image_shape), np.uint8)
        if b == 0:
            return out
        if self._torch is not None:
            return self._torch.render(packed)
        self.render_into(out, packed)
        return out

    def render_into(self, out: np.ndarray, packed: Packed, threads: int | None = None) -> None:
        """Render packed states into ``out`` (B, n_cams, H, W, 3) uint8, C-contiguous, with
        the numba kernel on ``threads`` threads (default: numba's count). The kernel does
        not hold the GIL: other Python threads run while it draws."""
        if self._numba_args is None:
            raise ConfigError("render_into needs the numba backend; the torch one returns new tensors")
        b = packed.ego.shape[0]
        if out.shape != (b, *self.image_shape) or out.dtype != np.uint8 or not out.flags.c_contiguous:
            shape = (b, *self.image_shape)
            raise ValueError(f"render_into needs a C-contiguous uint8 array of shape {shape}")
        tabs, statics, index, tex, wp = self._numba_args
        threads = min(numba.get_num_threads() if threads is None else threads, b * len(self.cams))
        kernel = render_numba if threads > 1 else render_numba_serial  # one job: no thread team to wake
        kernel(
            out,
            packed.ego,
            packed.actors,
            packed.actor_off,
            packed.sig,
            tabs,
            statics,
            index,
            tex,
            wp,
            threads,
        )

    def kernel_args(self) -> tuple:
        """The numba kernel's per-renderer arguments: (tables, statics, index, ground, weather)."""
        if self._numba_args is None:
            raise ConfigError("kernel_args needs the numba backend")
        return self._numba_args

    def _numba_static(self):
        s, g = self.scene, self.ground
        tabs = kernel_tables(self.tables, g.levels)
        grid = np.array([*s.grid_origin_xy_m, s.config.grid_cell_m, *s.grid_shape], np.float64)
        inv_scale = 1.0 / (g.m_per_px * 2.0 ** np.arange(g.levels))
        tex = (
            np.array(g.origin_xy_m, np.float64),
            np.ascontiguousarray(g.labels0).reshape(-1),
            g.palette,
            g.coarse,
            g.offset,
            g.height,
            g.width,
            inv_scale,
        )
        statics = (
            np.ascontiguousarray(s.boxes[np.asarray(s.grid_order)])
            if len(s.boxes)
            else np.zeros((0, L.BOX_FIELDS))
        )
        index = (
            grid,
            np.asarray(s.grid_start),
            np.asarray(s.grid_radius_m),
            np.asarray(s.grid_z_m),
            cull_table(statics),
        )
        return tabs, statics, index, tex, self.weather_vector
