"""Random routes on any map (for generated towns and training)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.errors import LoopdriveError, RouteError
from sim.maps.planner import DenseRoute, RoutePlanner
from sim.maps.roadmap import Lane, RoadMap
from sim.scenario import RouteRequest

__all__ = ["random_route", "plan_scenario_route"]


def random_route(
    planner: RoutePlanner, road_map: RoadMap, rng: np.random.Generator, length_m: float, *, tries: int = 40
) -> DenseRoute:
    """A route from a random lane point, about ``length_m`` long (within 25 % when the
    map allows; else the closest found). When the first draws, start and goal anywhere
    on the map, give nothing within 50 %, goals are drawn near the start as well (these
    draws come after the first ones, so a route found within 50 % is the one planned
    before the fallback existed). Raises when no route can be planned."""
    lanes = [lane for lane in road_map.lanes.values() if not lane.in_junction and lane.length_m > 10.0]
    if not lanes:
        raise LoopdriveError(f"{road_map.name}: no lane outside junctions long enough to start a route on")

    def anywhere() -> tuple[Lane, Lane] | None:
        start, goal = lanes[int(rng.integers(len(lanes)))], lanes[int(rng.integers(len(lanes)))]
        if np.hypot(*(_point(goal, _goal_index(goal)) - _point(start, _start_index(start)))) > length_m:
            return None
        return start, goal

    best = _closest_route(planner, anywhere, length_m, tries)
    if best is None or abs(best.length_m - length_m) > 0.5 * length_m:  # short routes on a big map
        goals = np.array([_point(lane, _goal_index(lane)) for lane in lanes])

        def near_the_start() -> tuple[Lane, Lane] | None:
            start = lanes[int(rng.integers(len(lanes)))]
            near = np.flatnonzero(np.hypot(*(goals - _point(start, _start_index(start))).T) <= length_m)
            return (start, lanes[int(near[rng.integers(len(near))])]) if len(near) else None

        near = _closest_route(planner, near_the_start, length_m, tries)
        if near is not None and (
            best is None or abs(near.length_m - length_m) < abs(best.length_m - length_m)
        ):
            best = near
    if best is None:
        raise RouteError(f"{road_map.name}: could not plan a random route of about {length_m:.0f} m")
    return best


def _start_index(lane: Lane) -> int:
    """Where a random route starts on its first lane: a quarter of the way along."""
    return len(lane.s_m) // 4


def _goal_index(lane: Lane) -> int:
    """Where a random route ends on its last lane: three quarters of the way along."""
    return 3 * len(lane.s_m) // 4


def _point(lane: Lane, index: int) -> np.ndarray:
    """The lane's (x, y) at ``index``."""
    return lane.xyz_m[index, :2]


def _closest_route(
    planner: RoutePlanner, draw: Callable[[], tuple[Lane, Lane] | None], length_m: float, tries: int
) -> DenseRoute | None:
    """The route closest to ``length_m`` over ``tries`` (start lane, goal lane) draws (a
    draw of None is a miss), stopping at the first within 25 %; None if none planned."""
    best: DenseRoute | None = None
    for _ in range(tries):
        pair = draw()
        if pair is None:
            continue
        start, goal = pair
        i, j = _start_index(start), _goal_index(goal)
        try:
            route = planner.plan(
                start.xyz_m[i],
                goal.xyz_m[j],
                start_yaw_rad=float(start.yaw_rad[i]),
                goal_yaw_rad=float(goal.yaw_rad[j]),
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
