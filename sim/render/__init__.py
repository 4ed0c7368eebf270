"""First-person cameras of the embedded world: rigs, weather, the static scene, the renderer.

::

    cams = rig("front", width_px=160, height_px=80)
    scene = StaticScene.build(road_map, signals=backend.signals, seed=0)
    renderer = Renderer(scene, cams, weather_preset("noon"), device="cpu")
    images = renderer.render(state)  # (n_cams, H, W, 3) uint8 RGB

torch is imported only by the torch path (``backend="torch"`` or ``device="cuda"``).
"""

from sim.render.camera import RIG_NAMES, CameraSpec, rig
from sim.render.renderer import Renderer
from sim.render.scene import SceneConfig, StaticKind, StaticScene
from sim.render.weather import WEATHER_NAMES, WeatherPreset, weather_preset

__all__ = [
    "CameraSpec",
    "rig",
    "RIG_NAMES",
    "WeatherPreset",
    "weather_preset",
    "WEATHER_NAMES",
    "StaticScene",
    "SceneConfig",
    "StaticKind",
    "Renderer",
]
