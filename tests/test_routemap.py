"""The low-definition route map: heading-up geometry, exactness, seeded noise, maneuvers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.errors import ConfigError
from sim.maps.planner import DenseRoute, RoadOption, RoutePlanner
from sim.maps.raster import MapRaster, RasterClass
from sim.routemap import CoarseRoads, RouteMap, RouteMapConfig, _kernels_agree
from tests.conftest import needs_shared, shared_map

EXACT = RouteMapConfig(gps_sigma_m=0.0, heading_sigma_deg=0.0)
U0, V0 = EXACT.size_px // 2, EXACT.ego_row_px
EMPTY_ROADS = CoarseRoads(np.zeros((4, 4), np.uint8), (-1000.0, -1000.0), 2.0)


def polyline_route(xy: np.ndarray, command: np.ndarray | None = None) -> DenseRoute:
    """A DenseRoute through (N, 2) points (lane keys are placeholders)."""
    xy = np.asarray(xy, dtype=float)
    step = np.hypot(*np.diff(xy, axis=0).T)
    s = np.r_[0.0, np.cumsum(step)]
    d = np.diff(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    yaw = np.r_[yaw, yaw[-1]]
    n = len(xy)
    cmd = np.full(n, RoadOption.LANEFOLLOW, np.int8) if command is None else np.asarray(command, np.int8)
    xyz = np.c_[xy, np.zeros(n)]
    return DenseRoute(xyz, yaw, cmd, tuple((0, 0, -1) for _ in range(n)), s)


def straight_route(x0: float, y0: float, yaw: float, length_m: float = 200.0) -> DenseRoute:
    t = np.arange(0.0, length_m + 0.5, 1.0)
    return polyline_route(np.c_[x0 + t * math.cos(yaw), y0 + t * math.sin(yaw)])


# -- geometry -----------------------------------------------------------------------


@pytest.mark.parametrize("yaw_deg", [0.0, 37.0, 90.0, -135.0, 180.0])
def test_straight_route_ahead_is_a_vertical_line_above_the_ego(yaw_deg):
    yaw = math.radians(yaw_deg)
    route = straight_route(12.3, -45.6, yaw)
    img = RouteMap(None, route, EXACT, roads=EMPTY_ROADS).render(12.3, -45.6, yaw)
    assert img.shape == (64, 64, 2) and img.dtype == np.uint8
    line = img[:, :, 1]
    expected = np.zeros_like(line)
    expected[: V0 + 1, U0] = 255  # from the top of the image down to the ego
    np.testing.assert_array_equal(line, expected)
    assert not img[:, :, 0].any()  # no road in an empty map


def test_right_of_the_ego_is_right_in_the_image():
    """CARLA's y points right: a turn to the right (yaw grows) must go right, not mirrored."""
    yaw = math.radians(30.0)
    fwd, right = np.array([math.cos(yaw), math.sin(yaw)]), np.array([-math.sin(yaw), math.cos(yaw)])
    corner = 20.0 * fwd
    xy = np.r_[[t * fwd for t in np.arange(0, 20.5, 1.0)], [corner + t * right for t in np.arange(1, 31.0)]]
    img = RouteMap(None, polyline_route(xy), EXACT, roads=EMPTY_ROADS).render(0.0, 0.0, yaw)
    line = img[:, :, 1]
    assert line[V0 - 10, U0 + 10] == 255  # 20 m ahead, 20 m right: 10 px up, 10 px right
    assert line[V0 - 10, U0 + 1 :].sum() >= 255 * 14 and not line[V0 - 10, :U0].any()


def test_route_index_draws_only_the_route_ahead():
    route = straight_route(-50.0, 0.0, 0.0, 100.0)  # ego in the middle, route behind and ahead
    rmap = RouteMap(None, route, EXACT, roads=EMPTY_ROADS)
    full = rmap.render(0.0, 0.0, 0.0)[:, :, 1]
    ahead = rmap.render(0.0, 0.0, 0.0, route_index=50)[:, :, 1]
    assert full[V0 + 10, U0] == 255 and full[V0 - 10, U0] == 255
    assert not ahead[V0 + 1 :].any() and ahead[V0 - 25 : V0 + 1, U0].all()  # 50 m ahead, 2 m/px


def test_road_channel_is_the_block_averaged_driving_surface():
    # a 0.1 m raster: an 8 m wide road along x at y in [-4, 4), the rest grass
    labels = np.zeros((400, 2000), np.uint8)
    labels[160:240, :] = RasterClass.ROAD
    labels[198:202, ::50] = RasterClass.MARKING_WHITE
    labels[100:160, :] = RasterClass.SIDEWALK
    raster = MapRaster(labels, (-100.0, -20.0), 0.1, "test")
    roads = CoarseRoads.from_raster(raster, 2.0)
    assert roads.coverage.shape == (20, 100) and roads.m_per_px == 2.0
    np.testing.assert_array_equal(roads.coverage[8:12], 255)  # rows of y in [-4, 4)
    assert not roads.coverage[:8].any() and not roads.coverage[12:].any()  # sidewalk is not road
    route = straight_route(0.0, 0.0, 0.0, 50.0)
    facing_x = RouteMap(None, route, EXACT, roads=roads).render(1.0, 0.0, 0.0)[:, :, 0]
    assert facing_x[V0 - 20 : V0 + 5, U0 - 1 : U0 + 2].min() == 255  # along the road: a vertical band
    assert not facing_x[:, U0 + 4 :].any() and not facing_x[:, : U0 - 4].any()
    facing_y = RouteMap(None, route, EXACT, roads=roads).render(1.0, 0.0, math.pi / 2)[:, :, 0]
    assert facing_y[V0 - 1 : V0 + 2, 5:60].min() == 255  # across it: a horizontal band
    assert not facing_y[: V0 - 4].any() and not facing_y[V0 + 4 :].any()


def test_channels_and_ego_row_follow_the_config():
    cfg = RouteMapConfig(size_px=32, ego_row_px=16, channels=("route",), gps_sigma_m=0, heading_sigma_deg=0)
    img = RouteMap(None, straight_route(0, 0, 1.0), cfg, roads=EMPTY_ROADS).render(0.0, 0.0, 1.0)
    assert img.shape == (32, 32, 1) and cfg.shape == (32, 32, 1)
    assert img[:17, 16, 0].all() and not img[17:].any()


# -- the kernels against OpenCV ----------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [RouteMapConfig(), RouteMapConfig(size_px=32, ego_row_px=20, channels=("route", "road"))],
    ids=["default", "32px-route-first"],
)
def test_kernels_draw_the_pixels_opencv_draws(cfg):
    """The numba kernels (sides a multiple of 32, 1-pixel line) against the OpenCV calls
    that define the picture: a random coverage (every grey level, the map's edges in
    view) and a winding random route, noisy poses on, beside and far from it, with and
    without a route index."""
    assert _kernels_agree()  # else every render falls back to OpenCV and this test is moot
    rng = np.random.default_rng(11)
    roads = CoarseRoads(rng.integers(0, 256, (90, 110), dtype=np.uint8), (-100.0, -80.0), cfg.m_per_px)
    heading = np.cumsum(rng.normal(0.0, 0.25, 400))  # 1 m steps, sharp turns included
    route = polyline_route(np.cumsum(np.c_[np.cos(heading), np.sin(heading)], axis=0) - [50.0, 20.0])
    fast = RouteMap(None, route, cfg, roads=roads)
    reference = RouteMap(None, route, cfg, roads=roads)
    reference._kernels = False
    assert fast._kernels
    n = len(route.s_m)
    for k in range(300):
        i = int(rng.integers(n))
        x, y = route.xyz_m[i, :2] + rng.normal(0.0, 4.0 if k % 4 else 60.0, 2)
        yaw = float(route.yaw_rad[i] + rng.normal(0.0, 0.5))
        seed, index = int(rng.integers(1 << 30)), (None if k % 3 == 0 else i)
        a = fast.render(x, y, yaw, np.random.default_rng(seed), route_index=index)
        b = reference.render(x, y, yaw, np.random.default_rng(seed), route_index=index)
        np.testing.assert_array_equal(a, b, err_msg=f"pose {k}")
    assert a.shape == cfg.shape


# -- noise ---------------------------------------------------------------------------


def _town01_route_map(config: RouteMapConfig) -> tuple[RouteMap, DenseRoute]:
    road_map = shared_map("carla/Town01.xodr")
    route = RoutePlanner(road_map).plan(
        (338.70, 226.75, 0.0), (321.99, 194.67, 0.0), start_yaw_rad=math.radians(270), goal_yaw_rad=math.pi
    )
    return RouteMap(road_map, route, config), route


@needs_shared
def test_zero_noise_is_exact_and_noise_is_seeded():
    noisy_map, route = _town01_route_map(RouteMapConfig())
    exact_map = RouteMap(None, route, EXACT, roads=noisy_map.roads)
    x, y, _ = route.xyz_m[5]
    yaw = float(route.yaw_rad[5])
    exact = exact_map.render(x, y, yaw)
    # zero sigmas: a generator changes nothing, whatever its seed
    np.testing.assert_array_equal(exact_map.render(x, y, yaw, np.random.default_rng(1)), exact)
    np.testing.assert_array_equal(exact_map.render(x, y, yaw, np.random.default_rng(2)), exact)
    assert exact[V0, U0, 0] > 0 and exact[V0, U0, 1] == 255  # the ego is on the road and the route
    # noise: the same seed gives the same picture; another seed another one
    a = noisy_map.render(x, y, yaw, np.random.default_rng(7))
    b = noisy_map.render(x, y, yaw, np.random.default_rng(7))
    c = noisy_map.render(x, y, yaw, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, exact)
    # every call draws fresh noise from the stream
    rng = np.random.default_rng(7)
    first, second = noisy_map.render(x, y, yaw, rng), noisy_map.render(x, y, yaw, rng)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)


# -- the next maneuver -----------------------------------------------------------------


@needs_shared
def test_next_maneuver_on_a_town01_left_turn():
    rmap, route = _town01_route_map(EXACT)
    lanes = shared_map("carla/Town01.xodr").lanes
    in_junction = np.array([lanes[k].in_junction for k in route.lane_keys])
    junction_s = float(route.s_m[np.argmax(in_junction)])
    last_turn = int(np.flatnonzero(route.command == RoadOption.LEFT)[-1])
    # from the start: the left turn, where its 10 m approach to the junction begins
    command, distance = rmap.next_maneuver(0)
    assert command == RoadOption.LEFT
    assert distance == pytest.approx(junction_s - 10.0, abs=1.5)
    assert distance > 5.0
    # a few metres on, the distance shrinks by as much
    i = int(np.searchsorted(route.s_m, 4.0))
    assert rmap.next_maneuver(i) == (RoadOption.LEFT, pytest.approx(distance - route.s_m[i]))
    # inside the turn: LEFT at distance 0
    assert rmap.next_maneuver(last_turn) == (RoadOption.LEFT, 0.0)
    # after it: follow the lane to the goal
    after = last_turn + 1
    assert rmap.next_maneuver(after) == (
        RoadOption.LANEFOLLOW,
        pytest.approx(route.length_m - route.s_m[after]),
    )
    with pytest.raises(IndexError):
        rmap.next_maneuver(len(route))


def test_next_maneuver_picks_the_first_of_several():
    cmd = np.full(100, RoadOption.LANEFOLLOW)
    cmd[20:25] = RoadOption.CHANGELANELEFT
    cmd[60:70] = RoadOption.RIGHT
    route = polyline_route(np.c_[np.arange(100.0) * 2.0, np.zeros(100)], cmd)
    rmap = RouteMap(None, route, EXACT, roads=EMPTY_ROADS)
    assert rmap.next_maneuver(0) == (RoadOption.CHANGELANELEFT, 40.0)
    assert rmap.next_maneuver(25) == (RoadOption.RIGHT, 70.0)
    assert rmap.next_maneuver(70) == (RoadOption.LANEFOLLOW, 58.0)


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size_px": 4},
        {"m_per_px": 0.25},
        {"m_per_px": -2.0},
        {"gps_sigma_m": -1.0},
        {"heading_sigma_deg": math.nan},
        {"channels": ("road", "lanes")},
        {"channels": ()},
        {"ego_row_px": 64},
        {"route_width_px": 0},
    ],
)
def test_config_rejects_bad_values_in_one_line(kwargs):
    with pytest.raises(ConfigError) as err:
        RouteMapConfig(**kwargs)
    assert "\n" not in str(err.value) and "RouteMapConfig." in str(err.value)
