"""Random routes on any map (for generated towns and training)."""

from __future__ import annotations

import numpy as np

from sim.errors import LoopdriveError, RouteError
from sim.maps.planner import DenseRoute, RoutePlanner
from sim.maps.roadmap import RoadMap
from sim.scenario import RouteRequest

__all__ = ["random_route", "plan_scenario_route"]


def random_route(
    planner: RoutePlanner, road_map: RoadMap, rng: np.random.Generator, length_m: float, *, tries: int = 40
) -> DenseRoute:
    """A route from a random lane point, about ``length_m`` long (within 25 % when the
    map allows; else the closest found). When the first draws, start and goal anywhere
    on the map, give nothing within 50 %, goals are drawn near the start as well.
    Raises when no route can be planned."""
    keys = [k for k, lane in road_map.lanes.items() if not lane.in_junction and lane.length_m > 10.0]
    if not keys:
        raise LoopdriveError(f"{road_map.name}: no lane outside junctions long enough to start a route on")
    best: DenseRoute | None = None
    for _ in range(tries):
        start_lane = road_map.lanes[keys[int(rng.integers(len(keys)))]]
        goal_lane = road_map.lanes[keys[int(rng.integers(len(keys)))]]
        i = len(start_lane.s_m) // 4
        start, goal = start_lane.xyz_m[i], goal_lane.xyz_m[3 * len(goal_lane.s_m) // 4]
        if np.hypot(*(goal[:2] - start[:2])) > length_m:
            continue
        try:
            route = planner.plan(
                start,
                goal,
                start_yaw_rad=float(start_lane.yaw_rad[i]),
                goal_yaw_rad=float(goal_lane.yaw_rad[3 * len(goal_lane.s_m) // 4]),
            )
        except RouteError:
            continue
        if best is None or abs(route.length_m - length_m) < abs(best.length_m - length_m):
            best = route
        if abs(best.length_m - length_m) < 0.25 * length_m:
            break
    if best is None or abs(best.length_m - length_m) > 0.5 * length_m:
        # short routes on a big map: draw goals near the start instead
        near = _nearby_route(planner, road_map, keys, rng, length_m, tries)
        if near is not None and (
            best is None or abs(near.length_m - length_m) < abs(best.length_m - length_m)
        ):
            best = near
    if best is None:
        raise RouteError(f"{road_map.name}: could not plan a random route of about {length_m:.0f} m")
    return best


def _nearby_route(
    planner: RoutePlanner,
    road_map: RoadMap,
    keys: list,
    rng: np.random.Generator,
    length_m: float,
    tries: int,
) -> DenseRoute | None:
    """The fallback of :func:`random_route`: each goal drawn among the lanes whose goal
    point lies within ``length_m`` of the start (it runs after the first draws, which
    are unchanged, so a route found within 50 % is the one planned before)."""
    lanes = [road_map.lanes[k] for k in keys]
    goals = np.array([lane.xyz_m[3 * len(lane.s_m) // 4][:2] for lane in lanes])
    best: DenseRoute | None = None
    for _ in range(tries):
        start_lane = lanes[int(rng.integers(len(lanes)))]
        i = len(start_lane.s_m) // 4
        start = start_lane.xyz_m[i]
        near = np.flatnonzero(np.hypot(*(goals - start[:2]).T) <= length_m)
        if not len(near):
            continue
        goal_lane = lanes[int(near[rng.integers(len(near))])]
        j = 3 * len(goal_lane.s_m) // 4
        try:
            route = planner.plan(
                start,
                goal_lane.xyz_m[j],
                start_yaw_rad=float(start_lane.yaw_rad[i]),
                goal_yaw_rad=float(goal_lane.yaw_rad[j]),
            )
        except RouteError:
            continue
        if best is None or abs(route.length_m - length_m) < abs(best.length_m - length_m):
            best = route
        if abs(best.length_m - length_m) < 0.25 * length_m:
            break
    return best


def plan_scenario_route(
    planner: RoutePlanner, road_map: RoadMap, request: RouteRequest, rng: np.random.Generator
) -> DenseRoute:
    """The route a scenario asks for: through its keypoints, or random from ``rng``.

    Both backends plan with this function on their map (the embedded backend's, or the
    CARLA server's ``world.get_map()``), so the same scenario drives the same route.
    """
    if request.is_random:
        return random_route(planner, road_map, rng, request.random_length_m)
    yaws = np.array(request.keypoint_yaw_rad) if request.keypoint_yaw_rad else None
    try:
        return planner.plan_keypoints(np.array(request.keypoints_xyz_m), keypoint_yaw_rad=yaws).route
    except RouteError as exc:
        raise RouteError(f"route {request.route_id or '(keypoints)'} on {road_map.name}: {exc}") from None
