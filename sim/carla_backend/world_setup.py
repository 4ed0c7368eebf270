"""What a CARLA episode is built from, decided without the server where possible.

* :func:`npc_spawn_points`: where NPC vehicles start, drawn from the scenario seed on
  the map's driving lanes (the server's map, wrapped as a :class:`RoadMap`), spaced
  apart and away from the ego's start, so the same seed gives the same places;
* :func:`npc_count` and :func:`walker_count`: how many, from the scenario's
  :class:`~sim.scenario.TrafficConfig` as the embedded world counts them;
* :func:`pick_blueprints`: which vehicle blueprints, by the traffic's truck and
  bicycle shares;
* :func:`match_light_rows`: which CARLA traffic-light actor drives each light row of
  :class:`sim.signals.TrafficSignals` (built from the same map), so infractions and the
  autopilot read the server's light states on the embedded backend's stop lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sim.maps.roadmap import LaneKey, RoadMap
from sim.scenario import TrafficConfig
from sim.state import ActorType

__all__ = [
    "npc_count",
    "walker_count",
    "npc_spawn_points",
    "pick_blueprints",
    "CarlaLight",
    "match_light_rows",
    "SPAWN_LIFT_M",
]

#: actors are spawned this far above the road and dropped onto it (CARLA's advice)
SPAWN_LIFT_M = 0.3


def npc_count(traffic: TrafficConfig, driving_lane_km: float) -> int:
    """NPC vehicles of an episode: the exact count, or the density capped by the maximum."""
    if traffic.vehicle_count >= 0:
        return traffic.vehicle_count
    return min(traffic.max_vehicles, int(round(traffic.vehicles_per_km * driving_lane_km)))


def walker_count(traffic: TrafficConfig, sidewalk_km: float) -> int:
    """Walkers of an episode: the exact count, or the density capped by the maximum."""
    if traffic.walker_count >= 0:
        return traffic.walker_count
    return min(traffic.max_walkers, int(round(traffic.walkers_per_km * sidewalk_km)))


def npc_spawn_points(
    road_map: RoadMap,
    rng: np.random.Generator,
    count: int,
    avoid_xy: np.ndarray,
    *,
    avoid_radius_m: float = 20.0,
    min_spacing_m: float = 10.0,
) -> list[tuple[float, float, float, float]]:
    """Up to ``count`` poses ``(x, y, z, yaw_rad)`` on driving lanes outside junctions,
    drawn by lane length, at least ``min_spacing_m`` apart and ``avoid_radius_m`` from
    every point of ``avoid_xy`` (K, 2). Fewer where the map has no more room."""
    keys = [k for k, lane in road_map.lanes.items() if not lane.in_junction and lane.length_m > 2.0]
    if count <= 0 or not keys:
        return []
    lengths = np.array([road_map.lanes[k].length_m for k in keys])
    weights = lengths / lengths.sum()
    avoid = np.asarray(avoid_xy, dtype=np.float64).reshape(-1, 2)
    chosen: list[tuple[float, float, float, float]] = []
    taken = np.zeros((0, 2))
    for _ in range(20 * count):
        if len(chosen) == count:
            break
        lane = road_map.lanes[keys[int(rng.choice(len(keys), p=weights))]]
        i = int(rng.integers(len(lane.s_m)))
        x, y, z = (float(v) for v in lane.xyz_m[i])
        if len(avoid) and np.min(np.hypot(avoid[:, 0] - x, avoid[:, 1] - y)) < avoid_radius_m:
            continue
        if len(taken) and np.min(np.hypot(taken[:, 0] - x, taken[:, 1] - y)) < min_spacing_m:
            continue
        chosen.append((x, y, z, float(lane.yaw_rad[i])))
        taken = np.vstack([taken, (x, y)])
    return chosen


def pick_blueprints(
    by_type: dict[ActorType, Sequence[str]], traffic: TrafficConfig, rng: np.random.Generator, count: int
) -> list[str]:
    """``count`` blueprint ids: trucks and bicycles by the traffic's shares (where the
    server has such blueprints), cars otherwise."""
    cars = list(by_type.get(ActorType.CAR, ()))
    if not cars:
        raise ValueError("the server offers no car blueprint (vehicle.* with four wheels)")
    out = []
    for _ in range(count):
        u = float(rng.random())
        kind = ActorType.CAR
        if u < traffic.truck_share:
            kind = ActorType.TRUCK
        elif u < traffic.truck_share + traffic.bicycle_share:
            kind = ActorType.BICYCLE
        pool = list(by_type.get(kind, ())) or cars
        out.append(pool[int(rng.integers(len(pool)))])
    return out


class CarlaLight(NamedTuple):
    """A traffic-light actor of the server: its id, OpenDRIVE id and the lanes whose stop
    line it controls (``get_stop_waypoints``)."""

    actor_id: int
    opendrive_id: str
    lanes: tuple[LaneKey, ...]


def match_light_rows(
    row_ids: Sequence[str],
    row_lanes: Sequence[LaneKey],
    row_is_light: Sequence[bool],
    lights: Sequence[CarlaLight],
) -> list[int | None]:
    """Per signal row, the actor id of the CARLA light that controls it, or ``None``.

    A light row matches the light with the same OpenDRIVE signal id, else the light
    whose stop line lies on the row's lane; stop-sign rows match nothing (they are
    always STOP).
    """
    by_id = {light.opendrive_id: light.actor_id for light in lights}
    by_lane: dict[LaneKey, int] = {}
    for light in lights:
        for lane in light.lanes:
            by_lane.setdefault(LaneKey(*lane), light.actor_id)
    out: list[int | None] = []
    for sid, lane, is_light in zip(row_ids, row_lanes, row_is_light, strict=True):
        if not is_light:
            out.append(None)
        elif sid in by_id:
            out.append(by_id[sid])
        else:
            out.append(by_lane.get(LaneKey(*lane)))
    return out
