"""RoadMap over carla.Map on the real maps in ../shared/maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.errors import MapError
from sim.maps import LaneKey, load_map
from sim.maps.lanegraph import LaneGraph, lane_joins
from tests.conftest import MAPS, needs_shared, shared_map

ALL_XODR = sorted(str(p.relative_to(MAPS)) for p in MAPS.glob("*/*.xodr")) if MAPS.is_dir() else []

# Figures from ../shared/maps/PROVENANCE.md (carla 0.9.16): junctions and landmarks.
PROVENANCE = {
    "carla/Town01.xodr": (12, 94),
    "carla/Town03.xodr": (34, 0),
    "carla/Town04.xodr": (27, 174),
    "carla/Town06.xodr": (23, 82),
    "esmini/fabriksgatan_traffic_lights.xodr": (1, 3),
    "esmini/straight_500m_signs.xodr": (0, 19),
}


@needs_shared
@pytest.mark.parametrize("relpath", ALL_XODR)
def test_every_map_loads_with_consistent_lanes(relpath):
    road_map = shared_map(relpath)
    assert road_map.lanes
    for lane in road_map.lanes.values():
        steps = np.hypot(*np.diff(lane.xyz_m[:, :2], axis=0).T)
        # dense centre lines: the resolution is measured along the road's reference line,
        # so points on the outside of a curve lie up to ~30 % further apart
        assert steps.max() <= 1.5 * road_map.resolution_m
        assert steps.min() > 0.005 or lane.length_m < 0.01  # Town03 has a 15 µm connector lane
        assert np.all(np.diff(lane.s_m) >= 0)
        assert np.all(lane.width_m > 0)
        if len(steps) > 3 and steps.min() > 0.5:
            # yaw points along the direction of travel
            heading = np.arctan2(np.diff(lane.xyz_m[:, 1]), np.diff(lane.xyz_m[:, 0]))
            mid = (
                lane.yaw_rad[:-1] + 0.5 * np.remainder(np.diff(lane.yaw_rad) + np.pi, 2 * np.pi) - 0.5 * np.pi
            )
            dyaw = np.abs(np.remainder(heading - mid + np.pi, 2 * np.pi) - np.pi)
            assert np.median(dyaw) < math.radians(5), lane.key


@needs_shared
@pytest.mark.parametrize("relpath", sorted(PROVENANCE))
def test_junctions_and_signals_match_provenance(relpath):
    road_map = shared_map(relpath)
    junctions, landmarks = PROVENANCE[relpath]
    assert len(road_map.junctions) == junctions
    assert len(road_map.signals) == landmarks


@needs_shared
def test_town01_signals_are_traffic_lights_and_speed_limits():
    kinds = {s.kind for s in shared_map("carla/Town01.xodr").signals}
    assert kinds == {"traffic_light", "speed_limit"}


@needs_shared
def test_speed_limit_from_road_type():
    road_map = shared_map("carla/Town01.xodr")
    # Town01 roads carry <speed max="25" unit="mph"/>
    assert {round(lane.speed_limit_mps, 3) for lane in road_map.lanes.values()} == {round(25 * 0.44704, 3)}


@needs_shared
def test_lane_under_a_position_and_distance_along_it():
    road_map = shared_map("carla/Town01.xodr")
    lane = max(road_map.lanes.values(), key=lambda ln: ln.length_m)
    i = len(lane.s_m) // 2
    x, y, _ = lane.xyz_m[i]
    yaw = lane.yaw_rad[i]
    pos = road_map.lane_at(x, y, yaw_rad=yaw)
    assert pos is not None and pos.key == lane.key
    assert pos.s_m == pytest.approx(lane.s_m[i], abs=1e-6)
    # 1 m to the driver's right (CARLA: y right, so right = (-sin yaw, cos yaw))
    rx, ry = -math.sin(yaw), math.cos(yaw)
    pos = road_map.lane_at(x + rx, y + ry, yaw_rad=yaw)
    assert pos is not None and pos.key == lane.key
    assert pos.lateral_m == pytest.approx(1.0, abs=0.05)
    assert road_map.distance_along_lane(lane.key, x + rx, y + ry) == pytest.approx(lane.s_m[i], abs=0.05)
    # 40 m off any road
    x0, y0, x1, y1 = road_map.bounds
    assert road_map.lane_at(x1 + 40.0, y1 + 40.0) is None


@pytest.mark.parametrize("spec", ["carla/Town03.xodr", "generated:0"])
def test_project_by_grid_is_the_k_d_tree_projection(spec):
    """project() finds its point on a grid; the answer must be the k-d tree's, ties and
    all (Town03 has up to 8 lane points at one spot, where only the tree's order decides)."""
    road_map = load_map(spec) if spec.startswith("generated") else shared_map(spec)
    xy = road_map._points[0]
    rng = np.random.default_rng(0)
    by_grid = 0
    for n in range(3000):
        p = xy[rng.integers(len(xy))] + (rng.normal(0.0, [0.0, 0.3, 3.0][n % 3], 2))
        if n % 10 == 9:
            p = rng.uniform(xy.min(axis=0) - 30.0, xy.max(axis=0) + 30.0)
        yaw = None if n % 4 == 0 else float(rng.uniform(-math.pi, math.pi))
        x, y = float(p[0]), float(p[1])
        assert road_map.project(x, y, yaw_rad=yaw) == road_map._project_by_tree(x, y, 8, yaw), (x, y, yaw)
        by_grid += road_map._grid.choose(x, y, yaw, 8) >= 0
    assert by_grid > 2000  # the tree answers the ties only


@pytest.mark.parametrize("spec", ["carla/Town03.xodr", "generated:0"])
def test_compiled_refine_is_the_python_refine(spec):
    """The foot on a lane, compiled (numpy's dot product and Python's hypot reproduced),
    is the numpy and Python one, bit for bit, wherever the point lies."""
    from sim.maps.roadmap import _compiled_refine

    road_map = load_map(spec) if spec.startswith("generated") else shared_map(spec)
    if not _compiled_refine():
        pytest.skip("numpy's or Python's rounding is not reproduced on this machine: Python refines")
    keys = list(road_map.lanes)
    rng = np.random.default_rng(1)
    for n in range(4000):
        lane = road_map.lanes[keys[rng.integers(len(keys))]]
        j = int(rng.integers(len(lane.s_m)))
        spread = [0.0, 0.01, 0.5, 3.0, 30.0][n % 5]
        x, y = (lane.xyz_m[j, :2] + rng.normal(0.0, spread, 2)).tolist()
        got, want = road_map._refine(lane, j, x, y), road_map._refine_py(lane, j, x, y)
        assert got == want and [type(v) for v in got] == [type(v) for v in want], (lane.key, j, x, y)


@needs_shared
def test_neighbour_lanes_drive_the_same_way():
    road_map = shared_map("carla/Town04.xodr")
    pairs = [(k, lane.left) for k, lane in road_map.lanes.items() if lane.left is not None]
    assert len(pairs) > 50
    for key, left in pairs:
        a, b = road_map.lanes[key], road_map.lanes[left]
        assert abs(math.remainder(a.yaw_rad[0] - b.yaw_rad[0], 2 * math.pi)) < math.radians(30)
        # the left neighbour lies to the left: negative lateral offset
        pos = road_map._refine(a, 0, *b.xyz_m[0, :2])
        assert pos.lateral_m < 0


@needs_shared
@pytest.mark.parametrize("relpath", ["carla/Town01.xodr", "carla/Town04.xodr", "carla/Town06.xodr"])
def test_carla_towns_are_strongly_connected_without_gaps(relpath):
    road_map = shared_map(relpath)
    assert LaneGraph(road_map).is_strongly_connected()
    joins = lane_joins(road_map)
    assert max(j.gap_m for j in joins) < 0.01
    assert max(j.kink_deg for j in joins) < 1.0


@needs_shared
def test_one_way_road_is_not_strongly_connected():
    road_map = shared_map("esmini/straight_500m.xodr")
    graph = LaneGraph(road_map)
    assert not graph.is_strongly_connected()
    assert graph.largest_component_share() == pytest.approx(0.5, abs=0.01)
    assert all(not lane.successors for lane in road_map.lanes.values())


def test_content_hash_keys_the_text():
    a = load_map(MAPS / "esmini/straight_500m.xodr") if MAPS.is_dir() else None
    if a is None:
        pytest.skip("../shared/maps is absent")
    assert len(a.content_hash) == 64
    b = load_map(MAPS / "esmini/straight_500m_signs.xodr")
    assert a.content_hash != b.content_hash


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (None, ".xodr", "no such map file"),
        ("hello", ".xodr", "not an OpenDRIVE file"),
        ("<OpenDRIVE></OpenDRIVE>", ".xodr", "no driving lanes"),
        ("x", ".txt", "unknown map format"),
    ],
)
def test_bad_map_files_give_one_line(tmp_path, content, suffix, message):
    path = tmp_path / f"town{suffix}"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MapError, match=message) as info:
        load_map(path)
    assert "\n" not in str(info.value) and "town" in str(info.value)


def test_bad_generated_spec():
    with pytest.raises(MapError, match="generated:abc: the seed"):
        load_map("generated:abc")


def test_folder_is_not_a_map(tmp_path):
    with pytest.raises(MapError, match="is a folder"):
        load_map(tmp_path)


def test_lane_key_is_a_plain_tuple():
    assert LaneKey(1, 0, -1) == (1, 0, -1)
