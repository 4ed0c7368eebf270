"""What a backend is asked to build: a :class:`Scenario` (map, route, traffic, world,
weather, camera rig, seed and scripted events).

Typed, frozen and validated on construction; the declarative scenario files of the
scenario library (:mod:`sim.scenarios`) load into these types through
:func:`scenario_from_dict`, and the episode store keeps them as
:func:`scenario_to_dict`. Errors name the key path (``traffic.vehicles_per_km: must
be >= 0, got -1``).

Scripted events (:class:`EventSpec`) are a ``type`` (one of :data:`EVENT_TYPES`),
a ``trigger`` (:class:`EventTrigger`: route distance or time) and ``params`` (the
type's own dataclass). :mod:`sim.events` runs them in the embedded world.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass

from sim.errors import ConfigError

__all__ = [
    "FieldError",
    "EventTrigger",
    "EventSpec",
    "EVENT_TYPES",
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


class FieldError(ConfigError):
    """A bad value of one field; :func:`scenario_from_dict` prefixes the key path."""

    def __init__(self, owner: str, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"{owner}.{name}: {reason}" if owner else f"{name}: {reason}")


def _field_check(cond: bool, owner: str, name: str, reason: str) -> None:
    if not cond:
        raise FieldError(owner, name, reason)


def _in_range(obj, owner: str, name: str, lo: float, hi: float) -> None:
    value = getattr(obj, name)
    ok = isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi
    _field_check(ok, owner, name, f"must lie in [{lo:g}, {hi:g}], got {value!r}")


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
            _field_check(math.isfinite(value) and value >= 0, "traffic", name, f"must be >= 0, got {value:g}")
        for name in ("truck_share", "bicycle_share", "jaywalk_probability"):
            value = getattr(self, name)
            _field_check(0 <= value <= 1, "traffic", name, f"must lie in [0, 1], got {value:g}")
        _field_check(
            self.truck_share + self.bicycle_share <= 1,
            "traffic",
            "truck_share",
            "+ bicycle_share must be <= 1",
        )
        for name in ("max_vehicles", "max_walkers"):
            value = getattr(self, name)
            _field_check(value >= 0, "traffic", name, f"must be >= 0, got {value}")
        for name in ("vehicle_count", "walker_count"):
            value = getattr(self, name)
            _field_check(value >= -1, "traffic", name, f"must be >= 0 (or -1 for the density), got {value}")


@dataclass(frozen=True)
class WorldConfig:
    """Time stepping and the ego vehicle."""

    dt_s: float = field(default=0.05, metadata={"help": "seconds per tick (20 Hz, as the Leaderboard)"})
    substeps: int = field(default=2, metadata={"help": "physics substeps per tick"})
    ego_type: str = field(default="car", metadata={"help": "ego vehicle type", "choices": ("car", "truck")})

    def __post_init__(self) -> None:
        _field_check(
            math.isfinite(self.dt_s) and 0 < self.dt_s <= 0.5,
            "world",
            "dt_s",
            f"must lie in (0, 0.5], got {self.dt_s}",
        )
        _field_check(
            1 <= self.substeps <= 64, "world", "substeps", f"must lie in [1, 64], got {self.substeps}"
        )
        _field_check(
            self.ego_type in ("car", "truck"),
            "world",
            "ego_type",
            f"must be car or truck, got {self.ego_type!r}",
        )


@dataclass(frozen=True)
class RouteRequest:
    """The ego's route: explicit keypoints (CARLA world frame), or a random route."""

    keypoints_xyz_m: tuple[tuple[float, float, float], ...] = ()
    keypoint_yaw_rad: tuple[float, ...] = ()
    random_length_m: float = 1000.0
    route_id: str = ""

    def __post_init__(self) -> None:
        _field_check(
            not self.keypoints_xyz_m or len(self.keypoints_xyz_m) >= 2,
            "route",
            "keypoints_xyz_m",
            "needs at least a start and a goal",
        )
        _field_check(
            not self.keypoint_yaw_rad or len(self.keypoint_yaw_rad) == len(self.keypoints_xyz_m),
            "route",
            "keypoint_yaw_rad",
            "must give one yaw per keypoint",
        )
        _field_check(
            math.isfinite(self.random_length_m) and 0 < self.random_length_m <= 50000,
            "route",
            "random_length_m",
            f"must lie in (0, 50000], got {self.random_length_m}",
        )

    @property
    def is_random(self) -> bool:
        return not self.keypoints_xyz_m


# -- scripted events ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventTrigger:
    """When an event fires: when the ego's route progress reaches ``route_m``, or at
    simulation time ``time_s`` (-1: no time trigger). Events that happen at a place
    (a junction, a crossing) take the first fitting place at least ``route_m`` along
    the route plus their own approach distance, and accept route triggers only."""

    route_m: float = field(default=0.0, metadata={"help": "route progress (m) that fires the event"})
    time_s: float = field(default=-1.0, metadata={"help": "simulation time (s) that fires it (-1: none)"})

    def __post_init__(self) -> None:
        _field_check(
            math.isfinite(self.route_m) and self.route_m >= 0,
            "",
            "route_m",
            f"must be >= 0, got {self.route_m}",
        )
        _field_check(
            math.isfinite(self.time_s) and (self.time_s >= 0 or self.time_s == -1),
            "",
            "time_s",
            f"must be >= 0 (or -1 for none), got {self.time_s}",
        )

    @property
    def is_time(self) -> bool:
        return self.time_s >= 0


def _ranges(obj, bounds: dict[str, tuple[float, float]]) -> None:
    for name, (lo, hi) in bounds.items():
        _in_range(obj, "", name, lo, hi)


@dataclass(frozen=True)
class LeadBrakeParams:
    """A lead vehicle starts ``gap_m`` ahead on the ego's route at ``speed_mps``; at the
    trigger it brakes at ``decel_mps2`` to a stop, waits ``hold_s`` and drives on."""

    gap_m: float = 30.0
    speed_mps: float = 9.0
    decel_mps2: float = 7.0
    hold_s: float = 3.0

    def __post_init__(self) -> None:
        _ranges(self, {"gap_m": (8, 200), "speed_mps": (1, 30), "decel_mps2": (1, 10), "hold_s": (0, 60)})


@dataclass(frozen=True)
class SlowLeadParams:
    """A lead vehicle starts ``gap_m`` ahead; from the trigger it drives at ``speed_mps``
    for ``duration_s``, then at the speed limit again."""

    gap_m: float = 30.0
    speed_mps: float = 3.0
    duration_s: float = 25.0

    def __post_init__(self) -> None:
        _ranges(self, {"gap_m": (8, 200), "speed_mps": (0.5, 15), "duration_s": (1, 300)})


@dataclass(frozen=True)
class StopAndGoParams:
    """A lead vehicle starts ``gap_m`` ahead; from the trigger it drives ``go_s`` at up to
    ``speed_mps``, brakes at ``decel_mps2`` and stands ``stop_s``, ``cycles`` times."""

    gap_m: float = 25.0
    speed_mps: float = 8.0
    go_s: float = 6.0
    stop_s: float = 4.0
    decel_mps2: float = 4.0
    cycles: int = 4

    def __post_init__(self) -> None:
        _ranges(
            self,
            {
                "gap_m": (8, 200),
                "speed_mps": (1, 30),
                "go_s": (1, 60),
                "stop_s": (0.5, 60),
                "decel_mps2": (1, 10),
                "cycles": (1, 50),
            },
        )


@dataclass(frozen=True)
class CutInParams:
    """A vehicle appears ``behind_m`` behind the ego in the neighbour lane (same
    direction), overtakes it ``overtake_mps`` faster, and once ``ahead_m`` (centre to
    centre) ahead cuts into the ego's lane within ``duration_s``; then it drives on at
    ``speed_mps``. Needs a same-direction neighbour lane and no junction for 140 m."""

    behind_m: float = 20.0
    overtake_mps: float = 4.0
    ahead_m: float = 11.0
    duration_s: float = 2.0
    speed_mps: float = 7.0

    def __post_init__(self) -> None:
        _ranges(
            self,
            {
                "behind_m": (5, 60),
                "overtake_mps": (1, 10),
                "ahead_m": (6, 40),
                "duration_s": (0.8, 6),
                "speed_mps": (1, 30),
            },
        )


_SIDES = ("right", "left")


@dataclass(frozen=True)
class WalkerCrossParams:
    """A walker steps onto the road from the ``side`` kerb when the ego is ``distance_m``
    from its crossing line, and crosses at ``speed_mps``. ``pedestrian_from_occluder``
    puts a parked car beside the ego's lane just before the crossing line, hiding it."""

    distance_m: float = 25.0
    speed_mps: float = 1.6
    side: str = "right"

    def __post_init__(self) -> None:
        _ranges(self, {"distance_m": (8, 80), "speed_mps": (0.5, 4)})
        _field_check(
            self.side in _SIDES, "", "side", f"must be one of {', '.join(_SIDES)}, got {self.side!r}"
        )


@dataclass(frozen=True)
class LaneObstacleParams:
    """A static obstacle (a ``length_m`` x ``width_m`` box) stands in the ego's lane; the
    ego goes around it when the lane beside is free. No junction within 40 m of it."""

    length_m: float = 3.0
    width_m: float = 1.8

    def __post_init__(self) -> None:
        _ranges(self, {"length_m": (0.5, 12), "width_m": (0.5, 2.6)})


@dataclass(frozen=True)
class CrossingVehicleParams:
    """A vehicle on a lane that crosses the ego's path in a junction (``red_light_runner``:
    from a side road, through its red light, while the ego's light is green;
    ``turn_across_path``: oncoming, turning across the ego's lane). It sets off when the
    ego is ``distance_m`` from the crossing point, at ``speed_mps``, timed to pass the
    crossing point ``lead_s`` before the ego would, and ignores the rules until it
    leaves the junction."""

    distance_m: float = 35.0
    speed_mps: float = 9.0
    lead_s: float = 1.2

    def __post_init__(self) -> None:
        _ranges(self, {"distance_m": (15, 100), "speed_mps": (3, 20), "lead_s": (0, 5)})


@dataclass(frozen=True)
class DarkLightParams:
    """The first signalised junction on the route (at least ``route_m`` along it) has
    failed: its lights are dark for the whole episode, so everyone treats it as an
    all-way stop. No parameters."""


#: event type -> its parameter dataclass (the type's docstring says what it does)
EVENT_TYPES: dict[str, type] = {
    "lead_brake": LeadBrakeParams,
    "slow_lead": SlowLeadParams,
    "stop_and_go": StopAndGoParams,
    "cut_in": CutInParams,
    "pedestrian_from_occluder": WalkerCrossParams,
    "jaywalker": WalkerCrossParams,
    "lane_obstacle": LaneObstacleParams,
    "red_light_runner": CrossingVehicleParams,
    "turn_across_path": CrossingVehicleParams,
    "dark_light": DarkLightParams,
}
#: event types that may fire on a time trigger (the others happen at a place on the route)
TIME_TRIGGER_TYPES = frozenset(("lead_brake", "slow_lead", "stop_and_go"))


@dataclass(frozen=True)
class EventSpec:
    """One scripted event: its ``type`` (a key of :data:`EVENT_TYPES`), ``trigger`` and
    ``params`` (an instance of the type's parameter dataclass)."""

    type: str
    trigger: EventTrigger = field(default_factory=EventTrigger)
    params: object = None

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise FieldError(
                "", "type", f"unknown event type {self.type!r}; valid types: {', '.join(EVENT_TYPES)}"
            )
        cls = EVENT_TYPES[self.type]
        if self.params is None:
            object.__setattr__(self, "params", cls())
        _field_check(isinstance(self.params, cls), "", "params", f"must be {cls.__name__} for {self.type}")
        _field_check(
            not self.trigger.is_time or self.type in TIME_TRIGGER_TYPES,
            "",
            "trigger.time_s",
            f"{self.type} happens at a place on the route: give trigger.route_m "
            f"(time triggers: {', '.join(sorted(TIME_TRIGGER_TYPES))})",
        )

    @classmethod
    def from_plain(cls, data, where: str) -> EventSpec:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: must be a mapping, got {type(data).__name__}")
        _unknown_keys(data, ("type", "trigger", "params"), where)
        _check("type" in data, f"{where}.type: missing; valid types: {', '.join(EVENT_TYPES)}")
        kind = data["type"]
        _check(
            kind in EVENT_TYPES,
            f"{where}.type: unknown event type {kind!r}; valid types: {', '.join(EVENT_TYPES)}",
        )
        trigger = _from_plain(EventTrigger, data.get("trigger", {}), f"{where}.trigger")
        params = _from_plain(EVENT_TYPES[kind], data.get("params") or {}, f"{where}.params")
        try:
            return cls(kind, trigger, params)
        except FieldError as exc:
            raise ConfigError(_join(where, exc)) from None


# -- the scenario ---------------------------------------------------------------------


def _check_name(value: str, valid: tuple[str, ...], name: str) -> None:
    _field_check(value in valid, "", name, f"unknown {name} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class Scenario:
    """A map, a route, traffic, a world config, the look (``weather`` preset of
    :mod:`sim.render.weather`, which sets the time of day too, and camera ``rig``),
    scripted ``events``, and ``seed``: the default episode seed (suites and ``reset``
    may give others)."""

    map: str
    route: RouteRequest = field(default_factory=RouteRequest)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    weather: str = "noon"
    name: str = ""
    events: tuple[EventSpec, ...] = ()
    rig: str = "front"
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        from sim.render.camera import RIG_NAMES
        from sim.render.weather import WEATHER_NAMES

        _field_check(bool(self.map), "", "map", "must name a map (.xodr, .osm, generated:SEED or carla:TOWN)")
        object.__setattr__(self, "events", tuple(self.events))
        _check_name(self.weather, WEATHER_NAMES, "weather")
        _check_name(self.rig, RIG_NAMES, "rig")
        _field_check(0 <= self.seed < 2**31, "", "seed", f"must lie in [0, 2**31), got {self.seed}")


def scenario_to_dict(scenario: Scenario) -> dict:
    """Plain JSON-ready dict of a scenario (nested dataclasses as dicts, tuples as lists)."""
    return _to_plain(scenario)


def scenario_from_dict(data: dict, where: str = "") -> Scenario:
    """Inverse of :func:`scenario_to_dict`. Unknown keys, wrong types and out-of-range
    values are a :class:`ConfigError` naming the key path (prefixed by ``where``)."""
    return _from_plain(Scenario, data, where)


def _to_plain(value):
    if is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


def _join(where: str, exc: FieldError) -> str:
    path = f"{where}.{exc.name}" if where else exc.name
    return f"{path}: {exc.reason}"


def _unknown_keys(data: dict, known, where: str) -> None:
    unknown = sorted(set(data) - set(known))
    _check(
        not unknown,
        f"{where + ': ' if where else ''}unknown key(s) {', '.join(map(str, unknown))}; "
        f"allowed: {', '.join(sorted(known))}",
    )


def _from_plain(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'scenario'}: must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    _unknown_keys(data, [f.name for f in fields(cls)], where)
    kwargs = {
        name: _convert(hints[name], value, f"{where}.{name}" if where else name)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except FieldError as exc:
        raise ConfigError(_join(where, exc)) from None
    except TypeError as exc:
        raise ConfigError(f"{where or 'scenario'}: {exc}") from None


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    if hasattr(hint, "from_plain"):
        return hint.from_plain(value, where)
    if is_dataclass(hint):
        return _from_plain(hint, value, where)
    if origin is tuple:
        _check(isinstance(value, list | tuple), f"{where}: must be a list, got {type(value).__name__}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        _check(len(args) == len(value), f"{where}: must have {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, f"{where}: must be a number, got {value!r}")
        return float(value)
    if hint in (int, str, bool):
        ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        _check(ok, f"{where}: must be {hint.__name__}, got {value!r}")
        return value
    return value
