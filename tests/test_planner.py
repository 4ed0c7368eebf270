"""Route planning on real maps: exact geometry, commands, lane changes, Leaderboard routes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.errors import ConfigError, RouteError
from sim.maps.leaderboard import read_route_file, select_route
from sim.maps.planner import DenseRoute, PlannerConfig, RoadOption, RoutePlanner
from sim.maps.roadmap import LaneKey
from tests.conftest import ROUTES, needs_shared, shared_map

pytestmark = needs_shared

_PLANNERS: dict[str, RoutePlanner] = {}


def planner(relpath: str) -> RoutePlanner:
    """A default planner over ``shared/maps/<relpath>``, built once per session."""
    if relpath not in _PLANNERS:
        _PLANNERS[relpath] = RoutePlanner(shared_map(relpath))
    return _PLANNERS[relpath]


def steps_m(route: DenseRoute) -> np.ndarray:
    return np.linalg.norm(np.diff(route.xyz_m, axis=0), axis=1)


def runs(values) -> list[tuple[int, int, int]]:
    """(value, first index, last index) of each run of equal values."""
    out: list[list[int]] = []
    for i, v in enumerate(values):
        if out and out[-1][0] == v:
            out[-1][2] = i
        else:
            out.append([int(v), i, i])
    return [tuple(r) for r in out]


def test_road_option_values_match_the_leaderboard():
    assert {o.name: o.value for o in RoadOption} == {
        "VOID": -1,
        "LEFT": 1,
        "RIGHT": 2,
        "STRAIGHT": 3,
        "LANEFOLLOW": 4,
        "CHANGELANELEFT": 5,
        "CHANGELANERIGHT": 6,
    }


def test_config_validation():
    with pytest.raises(ConfigError, match=r"^PlannerConfig.spacing_m must be a positive number, got 0$"):
        PlannerConfig(spacing_m=0)
    with pytest.raises(ConfigError, match="min_lane_change_length_m"):
        PlannerConfig(lane_change_length_m=5.0, min_lane_change_length_m=8.0)
    with pytest.raises(ConfigError, match="straight_threshold_rad"):
        PlannerConfig(straight_threshold_rad=4.0)
    shared = shared_map("esmini/straight_500m.xodr")
    assert RoutePlanner(shared, lane_change_length_m=5.0).config.min_lane_change_length_m == 5.0


# -- exact geometry on simple roads ----------------------------------------------------------


def test_straight_same_lane_exact_spacing():
    route = planner("esmini/straight_500m.xodr").plan((10.0, 1.535, 0.0), (60.0, 1.535, 0.0))
    assert len(route) == 51
    np.testing.assert_allclose(route.xyz_m[:, 0], np.arange(10.0, 61.0), atol=1e-6)
    np.testing.assert_allclose(route.xyz_m[:, 1], 1.535, atol=1e-3)
    np.testing.assert_allclose(steps_m(route), 1.0, atol=1e-6)
    np.testing.assert_allclose(route.s_m, np.arange(51.0), atol=1e-6)
    assert route.length_m == pytest.approx(50.0, abs=1e-6)
    np.testing.assert_allclose(route.yaw_rad, 0.0, atol=1e-6)
    assert route.command.dtype == np.int8
    assert set(route.command.tolist()) == {RoadOption.LANEFOLLOW}
    assert set(route.lane_keys) == {LaneKey(1, 0, -1)}


def test_spacing_setting():
    road = shared_map("esmini/straight_500m.xodr")
    route = RoutePlanner(road, spacing_m=2.0).plan((10.0, 1.535, 0.0), (60.0, 1.535, 0.0))
    assert len(route) == 26
    np.testing.assert_allclose(steps_m(route), 2.0, atol=1e-6)


def test_yaw_picks_the_lane_of_that_heading():
    p = planner("esmini/straight_500m.xodr")
    east = p.plan((100.0, 0.0, 0.0), (150.0, 0.0, 0.0), start_yaw_rad=0.0, goal_yaw_rad=0.0)
    west = p.plan((150.0, 0.0, 0.0), (100.0, 0.0, 0.0), start_yaw_rad=math.pi, goal_yaw_rad=math.pi)
    assert set(east.lane_keys) == {LaneKey(1, 0, -1)} and set(west.lane_keys) == {LaneKey(1, 0, 1)}
    assert east.xyz_m[0, 1] == pytest.approx(1.535, abs=1e-3) and west.xyz_m[0, 1] == pytest.approx(
        -1.535, abs=1e-3
    )
    assert east.length_m == pytest.approx(50.0, abs=1e-6) and west.length_m == pytest.approx(50.0, abs=1e-6)
    np.testing.assert_allclose(np.abs(west.yaw_rad), math.pi, atol=1e-6)


def test_goal_behind_loops_around_the_ring():
    p = planner("esmini/circle_300m.xodr")
    lane = p.road_map.lanes[LaneKey(1, 0, -1)]
    start, _ = lane.point_at(50.0)
    goal, _ = lane.point_at(40.0)
    route = p.plan(start, goal, start_yaw_rad=float(lane.point_at(50.0)[1]))
    assert route.length_m == pytest.approx(lane.length_m - 10.0, abs=0.2)
    np.testing.assert_allclose(route.xyz_m[0], start, atol=1e-6)
    np.testing.assert_allclose(route.xyz_m[-1], goal, atol=1e-6)
    assert steps_m(route).min() >= 0.5 and steps_m(route).max() <= 1.5
    assert set(route.lane_keys) == {LaneKey(1, 0, -1)}


def test_goal_ahead_on_the_ring_takes_the_short_way():
    p = planner("esmini/circle_300m.xodr")
    lane = p.road_map.lanes[LaneKey(1, 0, -1)]
    route = p.plan(
        lane.point_at(40.0)[0], lane.point_at(50.0)[0], start_yaw_rad=float(lane.point_at(40.0)[1])
    )
    assert route.length_m == pytest.approx(10.0, abs=0.05) and len(route) == 11


def test_unreachable_goal_raises_one_line():
    p = planner("esmini/e6mini.xodr")
    lane = p.road_map.lanes[LaneKey(0, 0, -2)]  # a one-way lane with no successor
    start = lane.point_at(100.0)[0]
    goal = lane.point_at(50.0)[0]
    with pytest.raises(RouteError) as info:
        p.plan(start, goal, start_yaw_rad=float(lane.point_at(100.0)[1]))
    expected = (
        f"unreachable: no lane path from ({start[0]:.1f}, {start[1]:.1f}) to ({goal[0]:.1f}, {goal[1]:.1f})"
    )
    assert str(info.value) == expected


def test_unreachable_keypoint_names_the_pair():
    p = planner("esmini/e6mini.xodr")
    lane = p.road_map.lanes[LaneKey(0, 0, -2)]
    pts = np.array([lane.point_at(s)[0] for s in (10.0, 200.0, 100.0)])
    with pytest.raises(RouteError, match=r"^unreachable: no lane path from .* \(key point 1 to 2\)$"):
        p.plan_keypoints(pts)


# -- lane changes ----------------------------------------------------------------------------


def test_double_lane_change_right_on_a_three_lane_road():
    # road 0 of the esmini T junction: lanes -1, -2, -3 at y = 1.5, 4.5, 7.5, heading +x
    p = planner("esmini/multi_lane_3way_intersection.xodr")
    route = p.plan((10.0, 1.5, 0.0), (90.0, 7.5, 0.0), start_yaw_rad=0.0, goal_yaw_rad=0.0)
    assert route.lane_keys[0] == LaneKey(0, 0, -1) and route.lane_keys[-1] == LaneKey(0, 0, -3)
    assert [key.lane_id for key, _, _ in runs_of_keys(route.lane_keys)] == [-1, -2, -3]
    assert set(route.command.tolist()) == {RoadOption.LANEFOLLOW, RoadOption.CHANGELANERIGHT}
    y = route.xyz_m[:, 1]
    assert np.all(np.diff(y) >= -1e-9) and y[0] == pytest.approx(1.5) and y[-1] == pytest.approx(7.5)
    assert np.abs(np.diff(y)).max() < 0.35  # 3 m across over 20 m: no sideways jumps
    assert steps_m(route).min() >= 0.5 and steps_m(route).max() <= 1.5
    changing = route.command == RoadOption.CHANGELANERIGHT
    assert np.all(np.abs(y[~changing] - np.round((y[~changing] - 1.5) / 3.0) * 3.0 - 1.5) < 1e-6)
    assert 80.0 < route.length_m < 81.0  # 80 m along, a little more for moving across


def test_single_lane_change_left_ends_on_the_target_lane():
    p = planner("esmini/multi_lane_3way_intersection.xodr")
    route = p.plan((10.0, 7.5, 0.0), (60.0, 4.5, 0.0), start_yaw_rad=0.0, goal_yaw_rad=0.0)
    x, y = route.xyz_m[:, 0], route.xyz_m[:, 1]
    # the change starts at once and takes the 20 m of road up to x = 30
    n = int(np.sum(x < 30.0 - 1e-6))
    assert runs(route.command) == [
        (RoadOption.CHANGELANELEFT, 0, n - 1),
        (RoadOption.LANEFOLLOW, n, len(route) - 1),
    ]
    assert n == 21  # points 1 m apart along the slightly longer path across
    assert [key.lane_id for key, _, _ in runs_of_keys(route.lane_keys)] == [-3, -2]
    switch = runs_of_keys(route.lane_keys)[1][1]
    assert y[switch - 1] > 6.0 >= y[switch]  # the lane key switches half-way across
    np.testing.assert_allclose(y[n:], 4.5, atol=1e-6)  # on the new lane's centre from there on
    assert np.interp(20.0, x, y) == pytest.approx(6.0, abs=0.02)  # half-way across half-way along
    assert np.all(np.diff(y) <= 1e-9) and route.length_m == pytest.approx(50.0, abs=0.3)


def runs_of_keys(keys):
    out = []
    for i, key in enumerate(keys):
        if out and out[-1][0] == key:
            out[-1][2] = i
        else:
            out.append([key, i, i])
    return out


# -- junction commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "start_yaw_deg", "goal", "goal_yaw_deg", "turn", "heading_change_deg"),
    [
        # Leaderboard v1 training route 0, key points 0 -> 1: heading north (-y), turning west: left
        ((338.70, 226.75, 0.0), 270.0, (321.99, 194.67, 0.0), 180.0, RoadOption.LEFT, -90.0),
        # key points 5 -> 6: heading south (+y), turning west: right (yaw grows)
        ((88.42, 309.63, 0.0), 90.0, (75.59, 326.30, 0.0), 180.0, RoadOption.RIGHT, 90.0),
    ],
)
def test_turn_commands_at_a_town01_junction(
    start, start_yaw_deg, goal, goal_yaw_deg, turn, heading_change_deg
):
    p = planner("carla/Town01.xodr")
    route = p.plan(
        start, goal, start_yaw_rad=math.radians(start_yaw_deg), goal_yaw_rad=math.radians(goal_yaw_deg)
    )
    change = math.degrees(math.remainder(route.yaw_rad[-1] - route.yaw_rad[0], 2 * math.pi))
    assert change == pytest.approx(heading_change_deg, abs=3.0)
    in_junction = np.array([p.road_map.lanes[k].in_junction for k in route.lane_keys])
    assert in_junction.any()
    first = int(np.argmax(in_junction))
    approach = (route.s_m >= route.s_m[first] - 10.0 - 1e-6) & ~in_junction & (np.arange(len(route)) < first)
    expected = np.where(in_junction | approach, turn, RoadOption.LANEFOLLOW)
    np.testing.assert_array_equal(route.command, expected)
    assert approach.any() and route.s_m[first] - route.s_m[np.argmax(approach)] <= 10.0 + 1e-6


def test_straight_through_a_junction():
    p = planner("carla/Town01.xodr")
    lanes = p.road_map.lanes
    # the first connecting lane (by key) that keeps its heading, between two ordinary lanes
    key = next(
        k
        for k in sorted(lanes)
        if lanes[k].in_junction
        and abs(math.remainder(lanes[k].yaw_rad[-1] - lanes[k].yaw_rad[0], 2 * math.pi)) < math.radians(2)
        and lanes[k].predecessors
        and lanes[k].successors
    )
    before, after = lanes[lanes[key].predecessors[0]], lanes[lanes[key].successors[0]]
    start, start_yaw = before.point_at(before.length_m - 15.0)
    goal, goal_yaw = after.point_at(15.0)
    route = p.plan(start, goal, start_yaw_rad=start_yaw, goal_yaw_rad=goal_yaw)
    in_junction = np.array([lanes[k].in_junction for k in route.lane_keys])
    assert key in route.lane_keys
    assert set(route.command[in_junction].tolist()) == {RoadOption.STRAIGHT}
    assert set(route.command[route.s_m < route.s_m[np.argmax(in_junction)] - 10.0 - 1e-6].tolist()) == {
        RoadOption.LANEFOLLOW
    }
    assert abs(math.remainder(route.yaw_rad[-1] - route.yaw_rad[0], 2 * math.pi)) < math.radians(5)


# -- Leaderboard routes ------------------------------------------------------------------------


def _routes_of(town: str):
    routes = read_route_file(ROUTES / "v1" / "routes_training.xml")
    routes += read_route_file(ROUTES / "v1" / "routes_devtest.xml")
    return [r for r in routes if r.town == town]


@pytest.mark.parametrize("town", ["Town01", "Town03", "Town04", "Town06"])
def test_every_leaderboard_v1_route_reaches_its_keypoints(town):
    p = planner(f"carla/{town}.xodr")
    routes = _routes_of(town)
    assert len(routes) == {"Town01": 11, "Town03": 21, "Town04": 11, "Town06": 11}[town]
    for spec in routes:
        planned = p.plan_route(spec)
        route = planned.route
        where = f"{spec.source} route {spec.route_id}"
        steps = steps_m(route)
        assert steps.min() >= 0.5 and steps.max() <= 1.5, where
        assert len(planned.keypoint_distances_m) == spec.num_keypoints
        far = np.flatnonzero(planned.keypoint_distances_m > 2.0).tolist()
        if town == "Town04" and spec.route_id == "35":
            assert far == [30] and not planned.reached_all, where
            assert planned.keypoint_distances_m[30] == pytest.approx(9.35, abs=0.01)
            assert planned.warnings == [
                "route 35: key point 30 at (58.9, -310.9) is 9.35 m from the nearest driving lane; "
                "the route passes through the nearest lane point instead"
            ]
        else:
            assert far == [] and planned.reached_all and planned.warnings == [], where
        # each key point is a route point, in driving order
        assert np.all(np.diff(planned.keypoint_indices) > 0), where
        _check_lane_change_runs(p, route, where)


def _check_lane_change_runs(p: RoutePlanner, route: DenseRoute, where: str) -> None:
    """Around each lane change the lane id moves the announced way; no change in a junction."""
    for value, first, last in runs(route.command):
        if value not in (RoadOption.CHANGELANELEFT, RoadOption.CHANGELANERIGHT) or first == 0:
            continue
        before, after = route.lane_keys[first - 1], route.lane_keys[min(last + 1, len(route) - 1)]
        assert not any(p.road_map.lanes[k].in_junction for k in route.lane_keys[first : last + 1]), where
        if (before.road_id, before.section_id) != (after.road_id, after.section_id):
            continue
        # one or more lanes (back-to-back changes) towards the centre line (left) or away (right)
        step = abs(after.lane_id) - abs(before.lane_id)
        assert (step < 0) if value == RoadOption.CHANGELANELEFT else (step > 0), (where, first, before, after)


def test_keypoints_without_yaw_reach_all():
    spec = select_route(read_route_file(ROUTES / "v1" / "routes_training.xml"), 0)
    planned = planner("carla/Town01.xodr").plan_keypoints(spec.keypoints_xyz_m)
    assert planned.reached_all and planned.keypoint_distances_m.max() < 0.7
    assert planned.route.length_m == pytest.approx(762.0, abs=1.0)


def test_single_keypoint_is_a_one_point_route():
    planned = planner("esmini/straight_500m.xodr").plan_keypoints(np.array([[20.0, 1.0, 0.0]]))
    assert len(planned.route) == 1 and planned.route.length_m == 0.0
    np.testing.assert_allclose(planned.route.xyz_m[0], [20.0, 1.535, 0.0], atol=1e-3)
    assert planned.keypoint_distances_m[0] == pytest.approx(0.535, abs=1e-3)


def test_bad_keypoint_array():
    with pytest.raises(RouteError, match=r"shape \(K, 3\)"):
        planner("esmini/straight_500m.xodr").plan_keypoints(np.zeros((0, 3)))
