"""CARLA Leaderboard route files: the real v1/v2 files parse exactly; bad files fail in one line."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sim.errors import RouteError
from sim.maps.leaderboard import RouteSpec, read_route_file, select_route
from tests.conftest import ROUTES, needs_shared

pytestmark = needs_shared

V1_TRAINING = ROUTES / "v1" / "routes_training.xml"
V1_DEVTEST = ROUTES / "v1" / "routes_devtest.xml"
V2_DEVTEST = ROUTES / "v2" / "routes_devtest.xml"


def _write(tmp_path, text: str, name: str = "routes.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path) -> str:
    with pytest.raises(RouteError) as info:
        read_route_file(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- the real files ----------------------------------------------------------------------


def test_v1_training_routes_and_towns():
    routes = read_route_file(V1_TRAINING)
    assert len(routes) == 50
    assert Counter(r.town for r in routes) == {"Town01": 10, "Town03": 20, "Town04": 10, "Town06": 10}
    assert [r.route_id for r in routes] == [str(i) for i in range(50)]
    assert all(isinstance(r, RouteSpec) and r.source == str(V1_TRAINING) for r in routes)
    counts = [r.num_keypoints for r in routes]
    assert (min(counts), max(counts), sum(counts)) == (11, 74, 1673)


def test_v1_keypoints_yaw_pitch_in_radians():
    route = select_route(read_route_file(V1_TRAINING), 0)
    assert route.town == "Town01" and route.num_keypoints == 11
    assert route.keypoints_xyz_m.shape == (11, 3)
    np.testing.assert_allclose(route.keypoints_xyz_m[0], [338.7027893066406, 226.75003051757812, 0.0])
    # yaw 269.979 deg -> -90.021 deg, wrapped into (-pi, pi]
    assert route.keypoint_yaw_rad[0] == pytest.approx(math.radians(269.9790954589844 - 360.0))
    assert route.keypoint_yaw_rad[1] == pytest.approx(math.radians(179.83230590820312))
    # pitch 360 is level (modulo 360)
    assert route.keypoint_pitch_rad[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.abs(route.keypoint_yaw_rad) <= math.pi)


def test_v1_pitch_normalised_over_all_routes():
    pitches = np.concatenate([r.keypoint_pitch_rad for r in read_route_file(V1_TRAINING)])
    # raw pitches span -9.4 .. 372.4 degrees; normalised they are small slopes
    assert np.degrees(np.abs(pitches)).max() < 25.0


def test_v1_weather_only_on_training_route_0():
    routes = read_route_file(V1_TRAINING)
    assert routes[0].weather == {
        0.0: {
            "cloudiness": 0.0,
            "precipitation": 0.0,
            "precipitation_deposits": 0.0,
            "wind_intensity": 0.0,
            "sun_azimuth_angle": 0.0,
            "sun_altitude_angle": 70.0,
            "fog_density": 0.0,
            "fog_distance": 0.0,
            "wetness": 0.0,
        }
    }
    assert all(r.weather is None for r in routes[1:])


def test_v1_devtest():
    routes = read_route_file(V1_DEVTEST)
    assert [(r.route_id, r.town) for r in routes] == [
        ("0", "Town01"),
        ("1", "Town03"),
        ("2", "Town04"),
        ("3", "Town06"),
    ]


def test_v2_devtest_parses_without_its_town():
    routes = read_route_file(V2_DEVTEST)
    assert [(r.route_id, r.town, r.num_keypoints) for r in routes] == [
        ("0", "Town12", 35),
        ("1", "Town12", 27),
    ]
    first = routes[0]
    assert first.keypoint_yaw_rad is None and first.keypoint_pitch_rad is None
    np.testing.assert_allclose(first.keypoints_xyz_m[0], [983.5, 5382.2, 371.0])
    np.testing.assert_allclose(first.keypoints_xyz_m[-1], [75.0, 5587.0, 367.2])
    assert sorted(first.weather) == [0.0, 100.0]
    assert (
        first.weather[0.0]["sun_altitude_angle"] == 90.0
        and first.weather[100.0]["sun_altitude_angle"] == 15.0
    )
    assert "route_percentage" not in first.weather[0.0]
    assert len(first.scenario_types) == 68 and len(routes[1].scenario_types) == 51
    assert first.scenario_types[0] == "ParkingExit"


# -- select_route ----------------------------------------------------------------------------


def test_select_route_by_int_or_str():
    routes = read_route_file(V1_DEVTEST)
    assert select_route(routes, 2).town == "Town04"
    assert select_route(routes, " 3 ").town == "Town06"


def test_select_unknown_id_lists_the_range():
    with pytest.raises(RouteError) as info:
        select_route(read_route_file(V1_TRAINING), 77)
    assert str(info.value) == f"{V1_TRAINING}: no route with id '77' (available ids: 0-49)"


def test_select_unknown_id_lists_the_ids(tmp_path):
    path = _write(
        tmp_path,
        '<routes><route id="a" town="T"><waypoint x="1" y="2" z="0"/></route>'
        '<route id="b" town="T"><waypoint x="1" y="2" z="0"/></route></routes>',
    )
    with pytest.raises(RouteError, match=r"no route with id 'c' \(available ids: a, b\)"):
        select_route(read_route_file(path), "c")


# -- small files: accepted forms -------------------------------------------------------------


def test_comments_and_v2_positions_accepted(tmp_path):
    path = _write(
        tmp_path,
        """<?xml version="1.0"?>
<!-- a comment before the root -->
<routes>
  <!-- intent of the route -->
  <route id="7" town="Town01">
    <waypoints>
      <!-- start -->
      <position x="1.5" y="-2" z="0.5"/>
      <position x="10" y="-2" z="0.5"/>
    </waypoints>
    <scenarios><scenario name="A_1" type="A"><trigger_point x="1" y="2" z="0" yaw="90"/>
      <source_dist_interval from="30" to="65"/></scenario></scenarios>
  </route>
</routes>
""",
    )
    (route,) = read_route_file(path)
    assert route.route_id == "7" and route.keypoint_yaw_rad is None and route.weather is None
    np.testing.assert_allclose(route.keypoints_xyz_m, [[1.5, -2.0, 0.5], [10.0, -2.0, 0.5]])
    assert route.scenario_types == ("A",)


def test_v1_without_z_or_yaw(tmp_path):
    path = _write(tmp_path, '<routes><route id="0" town="T"><waypoint x="1" y="2"/></route></routes>')
    (route,) = read_route_file(path)
    np.testing.assert_allclose(route.keypoints_xyz_m, [[1.0, 2.0, 0.0]])
    assert route.keypoint_yaw_rad is None


# -- errors: one line naming the file and the reason ---------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.xml"
    assert _error(path) == f"{path}: no such route file"


def test_folder(tmp_path):
    assert _error(tmp_path) == f"{tmp_path}: is a folder, not a route file"


def test_malformed_xml_names_line(tmp_path):
    path = _write(tmp_path, '<routes>\n  <route id="0" town="T">\n    <waypoint x="1" y="2"\n</routes>\n')
    message = _error(path)
    assert message.startswith(f"{path}: not valid XML: ")
    assert "at line 4" in message


def test_not_xml(tmp_path):
    path = _write(tmp_path, "# just text\n", name="notes.xml")
    message = _error(path)
    assert message.startswith(f"{path}: not valid XML:") and "line 1" in message


def test_empty_file(tmp_path):
    assert _error(_write(tmp_path, "")).startswith(
        f"{tmp_path / 'routes.xml'}: not valid XML: no element found"
    )


def test_wrong_root(tmp_path):
    path = _write(tmp_path, "<OpenDRIVE><header/></OpenDRIVE>")
    assert _error(path) == f"{path}: not a route file: the root element is <OpenDRIVE>, expected <routes>"


def test_no_route(tmp_path):
    path = _write(tmp_path, "<routes>\n</routes>")
    assert _error(path) == f"{path}: the <routes> element holds no <route>"


def test_route_without_id(tmp_path):
    path = _write(tmp_path, '<routes>\n<route town="T"><waypoint x="1" y="2"/></route></routes>')
    assert _error(path) == f"{path}: <route> number 0 (line 2) has no id attribute"


def test_route_without_town(tmp_path):
    path = _write(tmp_path, '<routes><route id="4"><waypoint x="1" y="2"/></route></routes>')
    assert _error(path) == f"{path}: route 4 (line 1) has no town attribute"


def test_route_without_keypoints(tmp_path):
    path = _write(tmp_path, '<routes><route id="4" town="T"><weather cloudiness="1"/></route></routes>')
    message = _error(path)
    assert message.startswith(f"{path}: route 4 (line 1) has no key points")


def test_non_numeric_coordinate(tmp_path):
    path = _write(
        tmp_path,
        '<routes>\n<route id="12" town="T">\n<waypoint x="1" y="2"/>\n'
        '<waypoint x="1" y="north"/>\n</route></routes>',
    )
    assert _error(path) == f"{path}: route 12: waypoint 1 (line 4) attribute 'y' is not a number: 'north'"


def test_non_finite_coordinate(tmp_path):
    path = _write(
        tmp_path,
        '<routes><route id="1" town="T"><waypoints><position x="nan" y="2"/></waypoints></route></routes>',
    )
    assert _error(path) == f"{path}: route 1: position 0 (line 1) attribute 'x' is not a finite number: 'nan'"


def test_missing_coordinate(tmp_path):
    path = _write(tmp_path, '<routes><route id="1" town="T"><waypoint y="2" yaw="3"/></route></routes>')
    assert _error(path) == f"{path}: route 1: waypoint 0 (line 1) attribute 'x' is missing"


def test_non_numeric_yaw_and_weather(tmp_path):
    path = _write(
        tmp_path, '<routes><route id="1" town="T"><waypoint x="1" y="2" yaw="east"/></route></routes>'
    )
    assert "route 1: waypoint 0 (line 1) attribute 'yaw' is not a number: 'east'" in _error(path)
    path = _write(
        tmp_path,
        '<routes><route id="2" town="T"><weather fog_density="thick"/>'
        '<waypoint x="1" y="2"/></route></routes>',
    )
    assert "route 2: weather (line 1) attribute 'fog_density' is not a number: 'thick'" in _error(path)


def test_duplicate_ids(tmp_path):
    path = _write(
        tmp_path,
        '<routes>\n<route id="1" town="T"><waypoint x="1" y="2"/></route>\n'
        '<route id="1" town="T"><waypoint x="1" y="2"/></route>\n</routes>',
    )
    assert _error(path) == f"{path}: route id 1 is used twice (lines 2 and 3)"


def test_mixed_v1_and_v2_keypoints(tmp_path):
    path = _write(
        tmp_path,
        '<routes><route id="1" town="T"><waypoint x="1" y="2"/>'
        '<waypoints><position x="1" y="2"/></waypoints></route></routes>',
    )
    assert "route 1 (line 1) mixes v1 <waypoint> and v2 <waypoints> key points" in _error(path)
