"""Configuration of the driving env: typed, frozen, validated on construction.

:class:`DrivingEnvConfig` composes the scenario source, the cameras, the route map,
the reward weights (:class:`RewardConfig`) and the Leaderboard thresholds that end
an episode (:class:`sim.infractions.InfractionConfig`). Every field has a default;
``DrivingEnvConfig().replace(camera_width_px=64)`` and the env's keyword overrides
build variants.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sim.errors import ConfigError
from sim.infractions import InfractionConfig
from sim.routemap import RouteMapConfig
from sim.scenario import Scenario, TrafficConfig, WorldConfig

__all__ = ["RewardConfig", "DrivingEnvConfig", "RENDER_DEVICES", "DEFAULT_MAP", "BACKENDS"]

#: devices the camera renderer runs on
RENDER_DEVICES: tuple[str, ...] = ("cpu", "cuda")
#: simulators an env runs on: loopdrive's own, or a CARLA server
BACKENDS: tuple[str, ...] = ("embedded", "carla")
#: the town of the registered envs: a procedural town, no files needed
DEFAULT_MAP = "generated:0"


def _finite(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{owner}.{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the named reward terms; the reward is their sum (each is logged in
    ``info["reward_terms"]`` already weighted).

    * ``progress_per_m``: per metre of new route progress (the Leaderboard's route
      completion, in metres).
    * ``collision_walker`` ... ``route_timeout``: per event of that kind, negative.
      Defaults are ``-100 x (1 - Leaderboard factor)``: walker 0.50 -> -50, vehicle
      0.60 -> -40, static 0.65 -> -35, red light 0.70 -> -30, stop sign 0.80 -> -20,
      timeout 0.70 -> -30.
    * ``outside_lanes_per_m``: per metre of route progress made outside the route's
      lanes (-1 cancels that progress, as the Leaderboard's ``1 - share`` factor does).
    * ``jerk`` and ``steer_rate`` (comfort): per ``(jerk in m/s^3)^2 x dt`` and per
      ``(front-wheel steering rate in rad/s)^2 x dt``, so the sum over an episode does
      not depend on the tick length.

    Route deviation and being blocked have no term: like the Leaderboard, they cost
    the progress left on the route.
    """

    progress_per_m: float = 1.0
    collision_walker: float = -50.0
    collision_vehicle: float = -40.0
    collision_static: float = -35.0
    red_light: float = -30.0
    stop_sign: float = -20.0
    route_timeout: float = -30.0
    outside_lanes_per_m: float = -1.0
    jerk: float = -1e-3
    steer_rate: float = -0.1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _finite("RewardConfig", f.name, getattr(self, f.name))
            if f.name == "progress_per_m" and value < 0:
                raise ConfigError(f"RewardConfig.progress_per_m must be >= 0, got {value}")
            if f.name != "progress_per_m" and value > 0:
                raise ConfigError(f"RewardConfig.{f.name} is a penalty and must be <= 0, got {value}")


@dataclass(frozen=True)
class DrivingEnvConfig:
    """Everything a :class:`envs.DrivingEnv` is built from.

    Scenario source, first match wins:

    1. ``scenario``: this scenario on every reset (its map, route, traffic, world,
       scripted events); its ``rig`` and ``weather`` replace the config's, and its
       ``seed`` is the default of ``seed``;
    2. ``routes_file``: a CARLA Leaderboard route file; each reset drives one of its
       routes on ``map`` (routes of ``map``'s town, optionally only ``route_ids``),
       drawn from the reset's seed;
    3. otherwise a random route on ``map`` whose length is drawn uniformly from
       ``route_length_m`` by the reset's seed, with ``traffic`` and ``world``.

    Episode ends (``infractions``: the Leaderboard's thresholds): ``terminated`` on
    route completion, a route deviation over ``infractions.deviation_m`` (30 m) and,
    with ``terminate_on_collision``, on any collision the Leaderboard counts;
    ``truncated`` on the time limit, which scales with the route length as the
    Leaderboard's timeout (``timeout_base_s + timeout_s_per_m x length``), and after
    ``infractions.blocked_s`` (180 s) standing still.

    Cameras: ``rig`` (``sim.render.RIG_NAMES``), ``camera_width_px`` x
    ``camera_height_px`` per camera, ``weather`` (``sim.render.WEATHER_NAMES``; the
    cameras' look, whatever the scenario's weather says), ``render_device``; names are
    checked when the env is built (the renderer is imported then, not here).

    Simulator: ``backend`` ``"embedded"`` (loopdrive's own world) or ``"carla"``: a
    CARLA 0.9.15/0.9.16 server at ``carla_host:carla_port`` (connected at the first
    reset; an unreachable server is an error after ``carla_timeout_s``), whose RGB
    cameras give the images (same rig, same mounting); on CARLA, ``map`` may also name
    a town the server has (``Town03``), and ``weather`` sets the server's weather for
    random routes (a given ``scenario`` brings its own).

    ``seed``: the seed of the first reset that is given none (``None``: fresh OS
    entropy, as Gymnasium does); later seedless resets continue that generator.
    ``autopilot_in_info``: put the privileged autopilot's action for every state in
    ``info`` (costs some 20-50 us per step; off in the "fast" mode of the benchmarks).
    """

    map: str = DEFAULT_MAP
    route_length_m: tuple[float, float] = (600.0, 1000.0)
    routes_file: str = ""
    route_ids: tuple[str, ...] = ()
    scenario: Scenario | None = None
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    rig: str = "front"
    camera_width_px: int = 160
    camera_height_px: int = 80
    weather: str = "noon"
    render_device: str = "cpu"
    route_map: RouteMapConfig = field(default_factory=RouteMapConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    infractions: InfractionConfig = field(default_factory=InfractionConfig)
    terminate_on_collision: bool = True
    autopilot_in_info: bool = True
    seed: int | None = None
    backend: str = "embedded"
    carla_host: str = "localhost"
    carla_port: int = 2000
    carla_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "route_length_m", tuple(self.route_length_m))
        object.__setattr__(self, "route_ids", tuple(str(r) for r in self.route_ids))
        self._take_from_scenario()
        if not isinstance(self.map, str) or not self.map:
            raise ConfigError("DrivingEnvConfig.map must name a map (.xodr, .osm or generated:SEED)")
        lo, hi = (_finite("DrivingEnvConfig", "route_length_m", v) for v in self._pair(self.route_length_m))
        if not 0 < lo <= hi:
            raise ConfigError(
                f"DrivingEnvConfig.route_length_m must be (min, max) with 0 < min <= max, got {(lo, hi)}"
            )
        if self.route_ids and not self.routes_file:
            raise ConfigError("DrivingEnvConfig.route_ids needs a routes_file")
        self._check_types()
        for name in ("camera_width_px", "camera_height_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 4096:
                raise ConfigError(f"DrivingEnvConfig.{name} must be an integer in [8, 4096], got {value!r}")
        if self.render_device not in RENDER_DEVICES:
            raise ConfigError(
                f"DrivingEnvConfig.render_device must be one of {RENDER_DEVICES}, got {self.render_device!r}"
            )
        if self.backend not in BACKENDS:
            raise ConfigError(f"DrivingEnvConfig.backend must be one of {BACKENDS}, got {self.backend!r}")
        if not isinstance(self.carla_host, str) or not self.carla_host:
            raise ConfigError(f"DrivingEnvConfig.carla_host must name a host, got {self.carla_host!r}")
        port = self.carla_port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"DrivingEnvConfig.carla_port must be an integer in [1, 65535], got {port!r}")
        if _finite("DrivingEnvConfig", "carla_timeout_s", self.carla_timeout_s) <= 0:
            raise ConfigError(
                f"DrivingEnvConfig.carla_timeout_s must be positive, got {self.carla_timeout_s}"
            )
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0
        ):
            raise ConfigError(f"DrivingEnvConfig.seed must be an integer >= 0 or None, got {self.seed!r}")

    def _take_from_scenario(self) -> None:
        """A scenario sets the look (its rig and weather) and the first reset's default seed."""
        if isinstance(self.scenario, Scenario):
            object.__setattr__(self, "rig", self.scenario.rig)
            object.__setattr__(self, "weather", self.scenario.weather)
            if self.seed is None:
                object.__setattr__(self, "seed", self.scenario.seed)

    @staticmethod
    def _pair(value: tuple) -> tuple:
        if len(value) != 2:
            raise ConfigError(f"DrivingEnvConfig.route_length_m must be (min, max), got {value!r}")
        return value

    def _check_types(self) -> None:
        typed = {
            "scenario": (Scenario, type(None)),
            "traffic": TrafficConfig,
            "world": WorldConfig,
            "route_map": RouteMapConfig,
            "reward": RewardConfig,
            "infractions": InfractionConfig,
            "terminate_on_collision": bool,
            "autopilot_in_info": bool,
            "rig": str,
            "weather": str,
            "routes_file": str,
        }
        for name, kind in typed.items():
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(
                    f"DrivingEnvConfig.{name} has the wrong type: {type(getattr(self, name)).__name__}"
                )

    def replace(self, **changes: Any) -> DrivingEnvConfig:
        """A copy with some fields changed; unknown names raise one-line :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"unknown DrivingEnvConfig field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **changes)
