"""The weather presets of :mod:`sim.render.weather` as ``carla.WeatherParameters``.

The sun comes from the preset itself: its elevation is CARLA's
``sun_altitude_angle`` (the time of day) and its azimuth CARLA's
``sun_azimuth_angle`` (degrees in [0, 360)), except at night, where the renderer's
dim "sun" stands for moonlight and CARLA's sun goes below the horizon (-90, as its
``ClearNight``) so the server switches its street and car lights on. Clouds, rain,
wet road and fog are set per preset below, close to CARLA's own presets of the same
look (``ClearNoon``, ``CloudyNoon``, ``ClearSunset``, ``ClearNight``,
``MidRainyNoon``); rain wets the road (``precipitation_deposits`` puddles and
``wetness``), as the renderer darkens it by ``road_darkening``.
"""

from __future__ import annotations

import math
import types

import carla

from sim.errors import ConfigError
from sim.render.weather import WEATHER_NAMES, weather_preset

__all__ = ["carla_weather", "CARLA_WEATHER_FIELDS", "NIGHT_SUN_ALTITUDE_DEG"]

#: CARLA's sun altitude at night (degrees, as its ClearNight preset)
NIGHT_SUN_ALTITUDE_DEG = -90.0

#: the sky's light scattering, as every CARLA preset sets it (the constructor's defaults are 0)
_SCATTERING = {"scattering_intensity": 1.0, "mie_scattering_scale": 0.03, "rayleigh_scattering_scale": 0.0331}

#: per preset: everything but the sun (CARLA's units: 0-100 scales, fog distance in m)
CARLA_WEATHER_FIELDS: types.MappingProxyType[str, dict[str, float]] = types.MappingProxyType(
    {
        "noon": dict(cloudiness=5.0, precipitation=0.0, precipitation_deposits=0.0, wind_intensity=10.0,
                     fog_density=2.0, fog_distance=0.75, fog_falloff=0.1, wetness=0.0),
        "cloudy": dict(cloudiness=60.0, precipitation=0.0, precipitation_deposits=0.0, wind_intensity=10.0,
                       fog_density=3.0, fog_distance=0.75, fog_falloff=0.1, wetness=0.0),
        "sunset": dict(cloudiness=5.0, precipitation=0.0, precipitation_deposits=0.0, wind_intensity=10.0,
                       fog_density=2.0, fog_distance=0.75, fog_falloff=0.1, wetness=0.0),
        "night": dict(cloudiness=5.0, precipitation=0.0, precipitation_deposits=0.0, wind_intensity=10.0,
                      fog_density=60.0, fog_distance=75.0, fog_falloff=1.0, wetness=0.0),
        "rain": dict(cloudiness=80.0, precipitation=60.0, precipitation_deposits=60.0, wind_intensity=40.0,
                     fog_density=10.0, fog_distance=30.0, fog_falloff=0.5, wetness=80.0),
    }
)  # fmt: skip


def carla_weather(name: str) -> carla.WeatherParameters:
    """The ``carla.WeatherParameters`` of a preset of :data:`sim.render.WEATHER_NAMES`.

    Unknown names raise :class:`~sim.errors.ConfigError` listing the valid ones.
    """
    preset = weather_preset(name)  # raises on unknown names
    if name not in CARLA_WEATHER_FIELDS:
        raise ConfigError(
            f"weather {name!r} has no CARLA mapping yet; add it to sim.carla_backend.weather "
            f"(mapped: {', '.join(n for n in WEATHER_NAMES if n in CARLA_WEATHER_FIELDS)})"
        )
    altitude = NIGHT_SUN_ALTITUDE_DEG if preset.lamps_on else math.degrees(preset.sun_elevation_rad)
    return carla.WeatherParameters(
        sun_azimuth_angle=math.degrees(preset.sun_azimuth_rad) % 360.0,
        sun_altitude_angle=altitude,
        **_SCATTERING,
        **CARLA_WEATHER_FIELDS[name],
    )
