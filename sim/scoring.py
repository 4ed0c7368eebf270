"""Route and suite scores, as the CARLA Leaderboard computes them.

Per route: Driving Score = Route Completion x Infraction Penalty. The penalty starts
at 1 and is multiplied once per event: collision with a walker 0.50, a vehicle 0.60, a
static object 0.65, red light 0.70, stop sign 0.80, timeout 0.70; driving outside the
route's lanes multiplies it by (1 - the share of the route driven outside). Route
deviation and being blocked end the route without a penalty factor (Leaderboard 1.0):
they cost what was left of the route.

Scales, as in the Leaderboard's results: ``route_completion`` and ``driving_score`` are
0-100, ``infraction_penalty`` is a factor in [0, 1]. Infractions per km divide counts by
the route kilometres completed (route length x completion, at least 1 m per route), as
the Leaderboard's global statistics do, not by the odometer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from sim.state import Event, EventKind

if TYPE_CHECKING:
    from sim.infractions import InfractionMonitor

__all__ = [
    "PENALTY",
    "INFRACTION_KINDS",
    "COLLISION_KINDS",
    "infraction_penalty",
    "RouteResult",
    "route_result",
    "score_route",
    "SuiteResult",
]

#: The Leaderboard's multiplicative penalty per event kind.
PENALTY: Mapping[EventKind, float] = MappingProxyType(
    {
        EventKind.COLLISION_WALKER: 0.50,
        EventKind.COLLISION_VEHICLE: 0.60,
        EventKind.COLLISION_STATIC: 0.65,
        EventKind.RED_LIGHT: 0.70,
        EventKind.STOP_SIGN: 0.80,
        EventKind.ROUTE_TIMEOUT: 0.70,
    }
)

#: Event kinds counted as infractions (in counts and per km); the rest are not.
INFRACTION_KINDS: tuple[EventKind, ...] = (
    EventKind.COLLISION_WALKER,
    EventKind.COLLISION_VEHICLE,
    EventKind.COLLISION_STATIC,
    EventKind.RED_LIGHT,
    EventKind.STOP_SIGN,
    EventKind.OUTSIDE_ROUTE_LANES,
    EventKind.ROUTE_DEVIATION,
    EventKind.AGENT_BLOCKED,
    EventKind.ROUTE_TIMEOUT,
)

#: The collision kinds (``collisions_per_km`` sums them).
COLLISION_KINDS: tuple[EventKind, ...] = (
    EventKind.COLLISION_WALKER,
    EventKind.COLLISION_VEHICLE,
    EventKind.COLLISION_STATIC,
)

_MIN_KM_PER_ROUTE = 0.001  # the Leaderboard's floor, so a route that never started divides by 1 m


def _name(kind: EventKind) -> str:
    return kind.name.lower()


def infraction_penalty(events: Iterable[Event | EventKind], outside_share: float = 0.0) -> float:
    """The penalty factor in [0, 1] of a route's events and its outside-lane share.

    ``events`` are :class:`Event` s or bare :class:`EventKind` s; kinds without a
    penalty (outside lanes, which counts through ``outside_share``, deviation, blocked,
    completion) leave the factor alone. ``outside_share`` is clipped to [0, 1].
    """
    penalty = 1.0
    for event in events:
        kind = event.kind if isinstance(event, Event) else EventKind(event)
        penalty *= PENALTY.get(kind, 1.0)
    return penalty * (1.0 - min(1.0, max(0.0, float(outside_share))))


@dataclass(frozen=True)
class RouteResult:
    """One route's scores and what happened on it (see the module docstring for scales)."""

    route_id: str
    town: str
    route_completion: float  # 0-100
    infraction_penalty: float  # factor in [0, 1]
    driving_score: float  # 0-100
    length_m: float
    distance_driven_m: float
    duration_s: float
    outside_lanes_share: float  # of the route length, in [0, 1]
    events: tuple[dict, ...]  # Event.to_dict() of every event, in order
    infractions: Mapping[str, int] = field(default_factory=dict)  # count per infraction kind
    end_reason: str | None = None  # the ending event's type, None if the route never ended

    @property
    def km_completed(self) -> float:
        """Route kilometres completed (at least 1 m), the per-km denominator."""
        return max(self.length_m * self.route_completion / 100.0 / 1000.0, _MIN_KM_PER_ROUTE)

    @property
    def infractions_per_km(self) -> float:
        """Every infraction of the route per km completed."""
        return sum(self.infractions.get(_name(k), 0) for k in INFRACTION_KINDS) / self.km_completed

    @property
    def collisions_per_km(self) -> float:
        """Collisions (walker, vehicle, static) per km completed."""
        return sum(self.infractions.get(_name(k), 0) for k in COLLISION_KINDS) / self.km_completed

    def to_dict(self) -> dict:
        return {
            "route_id": self.route_id,
            "town": self.town,
            "driving_score": round(self.driving_score, 3),
            "route_completion": round(self.route_completion, 3),
            "infraction_penalty": round(self.infraction_penalty, 4),
            "length_m": round(self.length_m, 2),
            "distance_driven_m": round(self.distance_driven_m, 2),
            "duration_s": round(self.duration_s, 3),
            "outside_lanes_share": round(self.outside_lanes_share, 4),
            "infractions": dict(self.infractions),
            "km_completed": round(self.km_completed, 4),
            "infractions_per_km": round(self.infractions_per_km, 4),
            "collisions_per_km": round(self.collisions_per_km, 4),
            "end_reason": self.end_reason,
            "events": [dict(e) for e in self.events],
        }


def route_result(
    *,
    route_id: str,
    town: str,
    events: Sequence[Event],
    completion_share: float,
    length_m: float,
    outside_lanes_share: float = 0.0,
    distance_driven_m: float = 0.0,
    duration_s: float = 0.0,
    end_reason: EventKind | None = None,
) -> RouteResult:
    """Score a route from its parts. ``completion_share`` is in [0, 1] (the monitor's)."""
    rc = 100.0 * min(1.0, max(0.0, float(completion_share)))
    penalty = infraction_penalty(events, outside_lanes_share)
    counts = {_name(k): 0 for k in INFRACTION_KINDS}
    for event in events:
        if event.kind in INFRACTION_KINDS:
            counts[_name(event.kind)] += 1
    return RouteResult(
        route_id=str(route_id),
        town=town,
        route_completion=rc,
        infraction_penalty=penalty,
        driving_score=rc * penalty,
        length_m=float(length_m),
        distance_driven_m=float(distance_driven_m),
        duration_s=float(duration_s),
        outside_lanes_share=min(1.0, max(0.0, float(outside_lanes_share))),
        events=tuple(e.to_dict() for e in events),
        infractions=MappingProxyType(counts),
        end_reason=_name(end_reason) if end_reason is not None else None,
    )


def score_route(monitor: InfractionMonitor, *, route_id: str, town: str = "") -> RouteResult:
    """Score the route an :class:`~sim.infractions.InfractionMonitor` has watched so far."""
    return route_result(
        route_id=route_id,
        town=town,
        events=monitor.events,
        completion_share=monitor.route_completion,
        length_m=monitor.length_m,
        outside_lanes_share=monitor.outside_lanes_share,
        distance_driven_m=monitor.distance_driven_m,
        duration_s=monitor.elapsed_s,
        end_reason=monitor.end_reason,
    )


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class SuiteResult:
    """A suite of routes: the means of the route scores, and infractions per km.

    An empty suite has means of 0 and no infractions.
    """

    routes: tuple[RouteResult, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes", tuple(self.routes))

    @property
    def route_count(self) -> int:
        return len(self.routes)

    @property
    def driving_score(self) -> float:
        return _mean([r.driving_score for r in self.routes])

    @property
    def route_completion(self) -> float:
        return _mean([r.route_completion for r in self.routes])

    @property
    def infraction_penalty(self) -> float:
        return _mean([r.infraction_penalty for r in self.routes])

    @property
    def km_completed(self) -> float:
        return math.fsum(r.km_completed for r in self.routes)

    @property
    def infractions_per_km(self) -> dict[str, float]:
        """Count per km completed for every infraction kind, and their ``total``."""
        km = self.km_completed
        out = {}
        for kind in INFRACTION_KINDS:
            count = sum(r.infractions.get(_name(kind), 0) for r in self.routes)
            out[_name(kind)] = count / km if km > 0 else 0.0
        out["total"] = math.fsum(out.values())
        return out

    @property
    def collisions_per_km(self) -> float:
        """Collisions (walker, vehicle, static) per km completed."""
        per_km = self.infractions_per_km
        return math.fsum(per_km[_name(k)] for k in COLLISION_KINDS)

    def to_dict(self) -> dict:
        """JSON-ready: ``suite`` (the means, per-km rates, counts) and ``routes``."""
        return {
            "suite": {
                "driving_score": round(self.driving_score, 3),
                "route_completion": round(self.route_completion, 3),
                "infraction_penalty": round(self.infraction_penalty, 4),
                "infractions_per_km": {k: round(v, 4) for k, v in self.infractions_per_km.items()},
                "collisions_per_km": round(self.collisions_per_km, 4),
                "km_completed": round(self.km_completed, 4),
                "route_count": self.route_count,
            },
            "routes": [r.to_dict() for r in self.routes],
        }
