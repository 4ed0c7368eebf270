"""Weather presets: sky, light, fog and the ground palette per condition.

A :class:`WeatherPreset` is everything the renderer needs to colour a picture:

* the sky: ``sky_top_rgb`` straight up, ``sky_horizon_rgb`` at the horizon; the
  horizon itself melts into ``fog_rgb``;
* light: surfaces facing away from the sun get ``ambient``; the sun (azimuth in the
  world frame, positive from +x toward +y as a yaw; elevation above the horizon) adds
  ``sun_strength`` times the cosine to faces turned to it; the ground is lit as an
  upward face and then scaled by ``ground_light``;
* fog: a surface ``t`` metres away is mixed with ``fog_rgb`` by
  ``(1 - exp(-t / fog_distance_m)) / (1 - exp(-far_m / fog_distance_m))``, which is
  1 at ``far_m``, where drawing stops (:attr:`far_m`);
* ``road_darkening`` in [0, 1] darkens the road, its markings and paved shoulders
  (a wet road in the rain);
* ``headlights``: the ego's low beams light a cone ahead and a pool round the car
  (night); ``lamps_on``: street lamps, car lights and windows glow, traffic-light
  lamps always do.

:meth:`WeatherPreset.palette` maps every :class:`sim.maps.raster.RasterClass` label
to the RGB the ground shows in this weather, before light and fog.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from sim.errors import ConfigError
from sim.maps.raster import RasterClass

__all__ = ["WeatherPreset", "weather_preset", "WEATHER_NAMES", "GROUND_RGB"]

#: ground colour per RasterClass under white daylight (camera view, not the top-down map's)
GROUND_RGB = np.array(
    [
        (96, 112, 74),  # OFF_ROAD: grass and earth
        (84, 84, 88),  # ROAD: asphalt
        (88, 88, 92),  # JUNCTION
        (104, 100, 96),  # SHOULDER
        (150, 146, 140),  # SIDEWALK
        (172, 170, 164),  # CURB
        (232, 232, 226),  # MARKING_WHITE
        (226, 184, 60),  # MARKING_YELLOW
        (236, 236, 230),  # STOP_LINE
        (206, 206, 200),  # CROSSWALK
    ],
    dtype=np.float64,
)
_WET_CLASSES = (
    RasterClass.ROAD,
    RasterClass.JUNCTION,
    RasterClass.SHOULDER,
    RasterClass.MARKING_WHITE,
    RasterClass.MARKING_YELLOW,
    RasterClass.STOP_LINE,
    RasterClass.CROSSWALK,
)


def _rgb(value, name: str) -> tuple[float, float, float]:
    try:
        rgb = tuple(float(v) for v in value)
    except TypeError:
        raise ConfigError(f"WeatherPreset.{name} must be three numbers in [0, 255], got {value!r}") from None
    if len(rgb) != 3 or not all(math.isfinite(v) and 0.0 <= v <= 255.0 for v in rgb):
        raise ConfigError(f"WeatherPreset.{name} must be three numbers in [0, 255], got {value!r}")
    return rgb  # type: ignore[return-value]


@dataclass(frozen=True)
class WeatherPreset:
    """Sky, light, fog and ground colours of one weather; see the module docstring."""

    name: str
    sky_top_rgb: tuple[float, float, float]
    sky_horizon_rgb: tuple[float, float, float]
    fog_rgb: tuple[float, float, float]
    fog_distance_m: float
    ambient: float
    sun_strength: float
    sun_azimuth_rad: float
    sun_elevation_rad: float
    ground_light: float = 1.0
    road_darkening: float = 0.0
    tint_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    headlights: bool = False
    headlight_strength: float = 1.3
    headlight_range_m: float = 25.0
    lamps_on: bool = False
    max_far_m: float = 300.0

    def __post_init__(self) -> None:
        for name in ("sky_top_rgb", "sky_horizon_rgb", "fog_rgb"):
            object.__setattr__(self, name, _rgb(getattr(self, name), name))
        tint = tuple(float(v) for v in self.tint_rgb)
        if len(tint) != 3 or not all(math.isfinite(v) and 0.0 <= v <= 2.0 for v in tint):
            raise ConfigError(
                f"WeatherPreset.tint_rgb must be three numbers in [0, 2], got {self.tint_rgb!r}"
            )
        object.__setattr__(self, "tint_rgb", tint)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float) and not (isinstance(value, int | float) and math.isfinite(value)):
                raise ConfigError(f"WeatherPreset.{f.name} must be a finite number, got {value!r}")
        for name, lo, hi in (
            ("fog_distance_m", 1.0, 1e5),
            ("ambient", 0.0, 2.0),
            ("sun_strength", 0.0, 2.0),
            ("ground_light", 0.0, 2.0),
            ("road_darkening", 0.0, 1.0),
            ("headlight_strength", 0.0, 10.0),
            ("headlight_range_m", 1.0, 500.0),
            ("max_far_m", 10.0, 5000.0),
        ):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ConfigError(f"WeatherPreset.{name} must lie in [{lo:g}, {hi:g}], got {value}")
        if not -math.pi / 2 <= self.sun_elevation_rad <= math.pi / 2:
            raise ConfigError(
                f"WeatherPreset.sun_elevation_rad must lie in [-pi/2, pi/2], got {self.sun_elevation_rad}"
            )

    @property
    def far_m(self) -> float:
        """Distance (m) at which drawing stops: three fog distances, at most ``max_far_m``."""
        return min(3.0 * self.fog_distance_m, self.max_far_m)

    @property
    def sun_dir(self) -> np.ndarray:
        """Unit vector toward the sun in the world frame (x forward, y right, z up)."""
        ce = math.cos(self.sun_elevation_rad)
        return np.array(
            [
                ce * math.cos(self.sun_azimuth_rad),
                ce * math.sin(self.sun_azimuth_rad),
                math.sin(self.sun_elevation_rad),
            ]
        )

    def face_light(self, normal_world: np.ndarray) -> np.ndarray:
        """Light on faces with the given world normals (..., 3): ambient plus the sun's share."""
        cos = np.asarray(normal_world, dtype=float) @ self.sun_dir
        return self.ambient + self.sun_strength * np.maximum(cos, 0.0)

    @property
    def ground_level(self) -> float:
        """Light on the ground (an upward face) times ``ground_light``."""
        return float(self.face_light(np.array([0.0, 0.0, 1.0]))) * self.ground_light

    def fog_factor(self, distance_m) -> np.ndarray:
        """Share of fog colour in a surface ``distance_m`` away (0 at the camera, 1 at :attr:`far_m`)."""
        d = np.asarray(distance_m, dtype=float)
        norm = 1.0 - math.exp(-self.far_m / self.fog_distance_m)
        return np.clip((1.0 - np.exp(-d / self.fog_distance_m)) / norm, 0.0, 1.0)

    def palette(self) -> np.ndarray:
        """(len(RasterClass), 3) float64 ground RGB of this weather (before light and fog)."""
        pal = GROUND_RGB * np.asarray(self.tint_rgb)
        wet = np.zeros(len(pal), bool)
        wet[list(_WET_CLASSES)] = True
        pal[wet] *= 1.0 - self.road_darkening
        return np.clip(pal, 0.0, 255.0)


_PRESETS: dict[str, WeatherPreset] = {
    p.name: p
    for p in (
        WeatherPreset(
            name="noon",
            sky_top_rgb=(70, 130, 210),
            sky_horizon_rgb=(170, 200, 230),
            fog_rgb=(196, 210, 226),
            fog_distance_m=260.0,
            ambient=0.62,
            sun_strength=0.45,
            sun_azimuth_rad=math.radians(150.0),
            sun_elevation_rad=math.radians(60.0),
        ),
        WeatherPreset(
            name="cloudy",
            sky_top_rgb=(150, 158, 170),
            sky_horizon_rgb=(190, 194, 200),
            fog_rgb=(188, 190, 196),
            fog_distance_m=180.0,
            ambient=0.8,
            sun_strength=0.15,
            sun_azimuth_rad=math.radians(150.0),
            sun_elevation_rad=math.radians(50.0),
            tint_rgb=(0.95, 0.97, 1.0),
        ),
        WeatherPreset(
            name="sunset",
            sky_top_rgb=(60, 80, 150),
            sky_horizon_rgb=(250, 160, 90),
            fog_rgb=(220, 160, 120),
            fog_distance_m=220.0,
            ambient=0.45,
            sun_strength=0.6,
            sun_azimuth_rad=math.radians(-100.0),
            sun_elevation_rad=math.radians(8.0),
            tint_rgb=(1.08, 0.9, 0.76),
            ground_light=0.95,
        ),
        WeatherPreset(
            name="night",
            sky_top_rgb=(4, 6, 16),
            sky_horizon_rgb=(18, 22, 40),
            fog_rgb=(12, 14, 24),
            fog_distance_m=90.0,
            ambient=0.1,
            sun_strength=0.04,
            sun_azimuth_rad=math.radians(30.0),
            sun_elevation_rad=math.radians(40.0),
            tint_rgb=(0.85, 0.9, 1.05),
            headlights=True,
            lamps_on=True,
        ),
        WeatherPreset(
            name="rain",
            sky_top_rgb=(96, 102, 112),
            sky_horizon_rgb=(140, 144, 150),
            fog_rgb=(132, 136, 142),
            fog_distance_m=70.0,
            ambient=0.6,
            sun_strength=0.08,
            sun_azimuth_rad=math.radians(150.0),
            sun_elevation_rad=math.radians(50.0),
            road_darkening=0.42,
            tint_rgb=(0.9, 0.93, 0.98),
            ground_light=0.92,
        ),
    )
}

#: the preset names :func:`weather_preset` knows
WEATHER_NAMES: tuple[str, ...] = tuple(_PRESETS)


def weather_preset(name: str) -> WeatherPreset:
    """The named preset (one of :data:`WEATHER_NAMES`); unknown names raise :class:`ConfigError`."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown weather {name!r}; valid weathers: {', '.join(WEATHER_NAMES)}")
    return _PRESETS[name]
