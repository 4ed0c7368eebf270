"""The CARLA backend: loopdrive's backend seam on a real CARLA 0.9.15/0.9.16 server.

Every call to a CARLA server in loopdrive lives in this package (offline map parsing
with ``carla.Map`` lives in :mod:`sim.maps`). Modules, smallest first:

* :mod:`.config`: :class:`CarlaConfig` (host, port, timeouts, Traffic Manager port);
* :mod:`.conversions`: ``carla`` types <-> loopdrive's (poses, controls, camera mounts,
  actor and light types);
* :mod:`.weather`: the weather presets as ``carla.WeatherParameters``;
* :mod:`.frames`: frame matching of sensor data from the server's threads;
* :mod:`.world_setup`: spawn places, counts, blueprints, traffic-light rows;
* :mod:`.connection`: reaching a server, with a clear error when nothing answers;
* :mod:`.backend`: :class:`CarlaBackend`, the seam itself.

Importing the package is light (the errors only); the backend, its config and the
``carla`` client load when first asked for, so the env can catch
:class:`ServerLostError` without importing ``carla``.
"""

from sim.carla_backend.errors import CarlaError, CarlaUnavailableError, SensorFrameError, ServerLostError

__all__ = [
    "CarlaBackend",
    "CarlaConfig",
    "SUPPORTED_VERSIONS",
    "CarlaError",
    "CarlaUnavailableError",
    "ServerLostError",
    "SensorFrameError",
]


def __getattr__(name: str):
    if name == "CarlaBackend":
        from sim.carla_backend.backend import CarlaBackend

        return CarlaBackend
    if name in ("CarlaConfig", "SUPPORTED_VERSIONS"):
        from sim.carla_backend import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
