"""What a backend is asked to build: a :class:`Scenario` (map, route, traffic, world).

Typed, frozen and validated on construction; the declarative scenario files of the
scenario library load into these types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.errors import ConfigError

__all__ = ["TrafficConfig", "WorldConfig", "RouteRequest", "Scenario"]


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
