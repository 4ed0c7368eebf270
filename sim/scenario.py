"""What a backend is asked to build: a :class:`Scenario` (map, route, traffic, world).

Typed, frozen and validated on construction; the declarative scenario files of the
scenario library load into these types.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass

from sim.errors import ConfigError

__all__ = [
    "TrafficConfig",
    "WorldConfig",
    "RouteRequest",
    "Scenario",
    "scenario_to_dict",
    "scenario_from_dict",
]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class TrafficConfig:
    """Other road users: NPC vehicles per km of driving lane, walkers per km of sidewalk."""

    vehicles_per_km: float = field(default=2.5, metadata={"help": "NPC vehicles per km of driving lane"})
    max_vehicles: int = field(default=120, metadata={"help": "upper bound on NPC vehicles"})
    vehicle_count: int = field(default=-1, metadata={"help": "exact NPC vehicle count (-1: use the density)"})
    truck_share: float = field(default=0.1, metadata={"help": "share of NPC vehicles that are trucks"})
    bicycle_share: float = field(default=0.05, metadata={"help": "share of NPC vehicles that are bicycles"})
    walkers_per_km: float = field(default=2.0, metadata={"help": "walkers per km of sidewalk"})
    max_walkers: int = field(default=60, metadata={"help": "upper bound on walkers"})
    walker_count: int = field(default=-1, metadata={"help": "exact walker count (-1: use the density)"})
    jaywalk_probability: float = field(
        default=0.0, metadata={"help": "chance per walker and minute to cross away from crosswalks"}
    )
    speed_factor_sigma: float = field(
        default=0.1, metadata={"help": "spread of NPC desired speeds around the limit (fraction)"}
    )

    def __post_init__(self) -> None:
        for name in ("vehicles_per_km", "walkers_per_km", "jaywalk_probability", "speed_factor_sigma"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"traffic.{name} must be >= 0, got {value}")
        for name in ("truck_share", "bicycle_share", "jaywalk_probability"):
            value = getattr(self, name)
            _check(0 <= value <= 1, f"traffic.{name} must lie in [0, 1], got {value}")
        _check(self.truck_share + self.bicycle_share <= 1, "traffic.truck_share + bicycle_share must be <= 1")
        for name in ("max_vehicles", "max_walkers"):
            _check(getattr(self, name) >= 0, f"traffic.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("vehicle_count", "walker_count"):
            _check(getattr(self, name) >= -1, f"traffic.{name} must be >= 0 (or -1 for the density)")


@dataclass(frozen=True)
class WorldConfig:
    """Time stepping and the ego vehicle."""

    dt_s: float = field(default=0.05, metadata={"help": "seconds per tick (20 Hz, as the Leaderboard)"})
    substeps: int = field(default=2, metadata={"help": "physics substeps per tick"})
    ego_type: str = field(default="car", metadata={"help": "ego vehicle type", "choices": ("car", "truck")})

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.dt_s) and 0 < self.dt_s <= 0.5,
            f"world.dt_s must lie in (0, 0.5], got {self.dt_s}",
        )
        _check(1 <= self.substeps <= 64, f"world.substeps must lie in [1, 64], got {self.substeps}")
        _check(
            self.ego_type in ("car", "truck"), f"world.ego_type must be car or truck, got {self.ego_type!r}"
        )


@dataclass(frozen=True)
class RouteRequest:
    """The ego's route: explicit keypoints (CARLA world frame), or a random route."""

    keypoints_xyz_m: tuple[tuple[float, float, float], ...] = ()
    keypoint_yaw_rad: tuple[float, ...] = ()
    random_length_m: float = 1000.0
    route_id: str = ""

    def __post_init__(self) -> None:
        _check(
            not self.keypoints_xyz_m or len(self.keypoints_xyz_m) >= 2,
            "route.keypoints need at least a start and a goal",
        )
        _check(
            not self.keypoint_yaw_rad or len(self.keypoint_yaw_rad) == len(self.keypoints_xyz_m),
            "route.keypoint_yaw_rad must give one yaw per keypoint",
        )
        _check(
            self.random_length_m > 0, f"route.random_length_m must be positive, got {self.random_length_m}"
        )

    @property
    def is_random(self) -> bool:
        return not self.keypoints_xyz_m


@dataclass(frozen=True)
class Scenario:
    """A map, a route, traffic and a world config; the seed comes with ``reset``."""

    map: str
    route: RouteRequest = field(default_factory=RouteRequest)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    weather: str = "noon"
    name: str = ""

    def __post_init__(self) -> None:
        _check(bool(self.map), "scenario.map must name a map (.xodr, .osm or generated:SEED)")


def scenario_to_dict(scenario: Scenario) -> dict:
    """Plain JSON-ready dict of a scenario (nested dataclasses as dicts, tuples as lists)."""
    return _to_plain(scenario)


def scenario_from_dict(data: dict) -> Scenario:
    """Inverse of :func:`scenario_to_dict`; unknown keys and wrong types are a ConfigError."""
    return _from_plain(Scenario, data, "scenario")


def _to_plain(value):
    if is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


def _from_plain(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    _check(not unknown, f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    if is_dataclass(hint):
        return _from_plain(hint, value, where)
    if origin is tuple:
        _check(isinstance(value, list | tuple), f"{where} must be a list, got {type(value).__name__}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        _check(len(args) == len(value), f"{where} must have {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, f"{where} must be a number, got {value!r}")
        return float(value)
    if hint in (int, str, bool):
        ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        _check(ok, f"{where} must be {hint.__name__}, got {value!r}")
        return value
    return value
