"""The plain state that crosses the backend seam.

Both simulators (embedded and CARLA) fill the same dataclasses, so everything above
the seam (the env, the autopilot, infractions, scoring) reads one state type.
Frame: CARLA's world frame (x forward, y right, z up), metres, radians, m/s.
Actors are struct-of-arrays so a world of many actors is read without Python loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = [
    "ActorType",
    "LightState",
    "EventKind",
    "Control",
    "EgoState",
    "Actors",
    "SignalStates",
    "Event",
    "WorldState",
]


class ActorType(IntEnum):
    """What another actor is; collisions with the ego are typed from it."""

    CAR = 0
    TRUCK = 1
    BICYCLE = 2
    WALKER = 3
    STATIC = 4


class LightState(IntEnum):
    """A traffic-light head, or a stop sign (always ``STOP``)."""

    RED = 0
    YELLOW = 1
    GREEN = 2
    OFF = 3
    STOP = 4


class EventKind(IntEnum):
    """Events of one tick. The Leaderboard infractions and what ends a route."""

    COLLISION_WALKER = 0
    COLLISION_VEHICLE = 1
    COLLISION_STATIC = 2
    RED_LIGHT = 3
    STOP_SIGN = 4
    OUTSIDE_ROUTE_LANES = 5
    ROUTE_DEVIATION = 6
    AGENT_BLOCKED = 7
    ROUTE_TIMEOUT = 8
    ROUTE_COMPLETED = 9
    NPC_COLLISION = 10  # two non-ego actors touched (no penalty; for diagnosis)
    SCRIPTED = 11  # a scenario's scripted event fired (sim.events; ``detail`` says what)


@dataclass(frozen=True)
class Control:
    """The ego's command in the policy's units: ``steer`` and ``accel`` in [-1, 1].

    ``steer`` -1 is full left, +1 full right; ``accel`` > 0 is throttle, < 0 brake.
    Values outside [-1, 1] are clipped; NaN or infinite values raise ``ValueError``.
    The mapping to physical limits lives in :mod:`sim.vehicle` alone.
    """

    steer: float = 0.0
    accel: float = 0.0

    def __post_init__(self) -> None:
        # unrolled (two controls a step): the clip keeps values inside [-1, 1] as they are
        steer, accel = float(self.steer), float(self.accel)
        if not (math.isfinite(steer) and math.isfinite(accel)):
            name, value = ("accel", accel) if math.isfinite(steer) else ("steer", steer)
            raise ValueError(f"Control.{name} must be a finite number, got {value!r}")
        object.__setattr__(self, "steer", steer if -1.0 <= steer <= 1.0 else (1.0 if steer > 1.0 else -1.0))
        object.__setattr__(self, "accel", accel if -1.0 <= accel <= 1.0 else (1.0 if accel > 1.0 else -1.0))

    @classmethod
    def from_array(cls, action) -> Control:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (2,):
            raise ValueError(f"a control is [steer, accel] (2 numbers), got shape {np.shape(action)}")
        return cls(float(a[0]), float(a[1]))


@dataclass(frozen=True)
class EgoState:
    """The ego vehicle. ``steer_rad`` is the front-wheel angle (positive: right)."""

    x_m: float
    y_m: float
    z_m: float
    yaw_rad: float
    speed_mps: float
    accel_mps2: float
    steer_rad: float
    length_m: float
    width_m: float
    height_m: float = 1.5

    @property
    def velocity_xy_mps(self) -> tuple[float, float]:
        return self.speed_mps * math.cos(self.yaw_rad), self.speed_mps * math.sin(self.yaw_rad)


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity, never elementwise
class Actors:
    """Every actor but the ego, as oriented 3-D boxes (struct of arrays, length N)."""

    id: np.ndarray  # (N,) int64, unique for the episode
    type: np.ndarray  # (N,) int8, ActorType
    xyz_m: np.ndarray  # (N, 3) box centre at ground level
    yaw_rad: np.ndarray  # (N,)
    half_extent_m: np.ndarray  # (N, 3) half length, half width, half height
    velocity_mps: np.ndarray  # (N, 2) world-frame velocity

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def empty(cls) -> Actors:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int8),
            np.zeros((0, 3)),
            np.zeros(0),
            np.zeros((0, 3)),
            np.zeros((0, 2)),
        )


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity, never elementwise
class SignalStates:
    """Traffic lights and stop signs that control lanes (length M).

    ``stop_xy_m`` is the middle of the stop line on the controlled lane and
    ``lane_index`` indexes ``lanes`` (one row per controlled lane entry).
    """

    signal_id: tuple[str, ...]  # (M,)
    state: np.ndarray  # (M,) int8, LightState
    stop_xy_m: np.ndarray  # (M, 2)
    stop_yaw_rad: np.ndarray  # (M,) direction of travel over the stop line
    lanes: tuple  # (M,) LaneKey of the controlled lane (entering the junction)

    def __len__(self) -> int:
        return len(self.signal_id)

    @classmethod
    def empty(cls) -> SignalStates:
        return cls((), np.zeros(0, np.int8), np.zeros((0, 2)), np.zeros(0), ())


@dataclass(frozen=True)
class Event:
    """Something that happened on one tick: an infraction, a collision, an ending."""

    kind: EventKind
    time_s: float
    xyz_m: tuple[float, float, float]
    other_id: int = -1
    other_type: int = -1  # ActorType, or -1
    detail: str = ""

    def to_dict(self) -> dict:
        return {
            "type": self.kind.name.lower(),
            "time_s": round(self.time_s, 3),
            "position_m": [round(v, 2) for v in self.xyz_m],
            "other_id": self.other_id,
            "other_type": ActorType(self.other_type).name.lower() if self.other_type >= 0 else None,
            "detail": self.detail,
        }


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity, never elementwise
class WorldState:
    """Everything true about the world after a tick (privileged: never a policy input)."""

    tick: int
    time_s: float
    ego: EgoState
    actors: Actors
    signals: SignalStates
    events: tuple[Event, ...] = field(default_factory=tuple)
