"""``loopdrive route plan`` through the real entry point: output, and one-line errors."""

from __future__ import annotations

import json

import pytest

from scripts.cli import main
from tests.conftest import MAPS, ROUTES, needs_shared

pytestmark = needs_shared

TOWN01 = str(MAPS / "carla" / "Town01.xodr")
TOWN04 = str(MAPS / "carla" / "Town04.xodr")
E6MINI = str(MAPS / "esmini" / "e6mini.xodr")
V1_DEVTEST = str(ROUTES / "v1" / "routes_devtest.xml")
V1_TRAINING = str(ROUTES / "v1" / "routes_training.xml")
V2_DEVTEST = str(ROUTES / "v2" / "routes_devtest.xml")


def plan(*args: str) -> list[str]:
    return ["route", "plan", *args]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("loopdrive: error: ")
    return lines[0][len("loopdrive: error: ") :]


def test_json_output(capsys):
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST, "--json")) == 0
    out, err = capsys.readouterr()
    records = json.loads(out)
    assert [r["route_id"] for r in records] == ["0"]
    (rec,) = records
    assert {"route_id", "town", "length_m", "reached_all_keypoints", "max_keypoint_distance_m"} <= set(rec)
    assert rec["town"] == "Town01" and rec["reached_all_keypoints"] is True
    assert rec["length_m"] == pytest.approx(762.0, abs=1.0) and rec["max_keypoint_distance_m"] < 0.7
    assert rec["warnings"] == [] and rec["keypoints"] == 11
    assert sum(rec["commands"].values()) == rec["points"] and rec["commands"]["LEFT"] > 0
    assert "skipped 3 routes of other towns (Town03: 1, Town04: 1, Town06: 1)" in err


def test_json_route_with_far_keypoint(capsys):
    assert main(plan("--map", TOWN04, "--routes", V1_TRAINING, "--route-id", "35", "--json")) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["route_id"] == "35" and rec["reached_all_keypoints"] is False
    assert rec["max_keypoint_distance_m"] == pytest.approx(9.35, abs=0.01)
    assert rec["warnings"] == [
        "route 35: key point 30 at (58.9, -310.9) is 9.35 m from the nearest driving lane; "
        "the route passes through the nearest lane point instead"
    ]


def test_text_output(capsys):
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST)) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(
        "route 0 (Town01): 762.0 m, 11 key points, all reached: yes, largest key-point distance"
    )


def test_planner_options_are_used(capsys):
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST, "--json")) == 0
    (default,) = json.loads(capsys.readouterr().out)
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST, "--spacing-m", "2", "--json")) == 0
    (coarse,) = json.loads(capsys.readouterr().out)
    assert coarse["length_m"] == pytest.approx(default["length_m"], abs=0.5)
    assert 0.45 < coarse["points"] / default["points"] < 0.55


def test_bad_planner_option(capsys):
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST, "--spacing-m", "-1")) == 2
    assert one_error_line(capsys) == "PlannerConfig.spacing_m must be a positive number, got -1.0"


def test_unknown_route_id(capsys):
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST, "--route-id", "9")) == 2
    assert one_error_line(capsys) == f"{V1_DEVTEST}: no route with id '9' (available ids: 0-3)"


def test_route_id_of_another_town(capsys):
    assert main(plan("--map", TOWN01, "--routes", V1_DEVTEST, "--route-id", "2")) == 2
    assert one_error_line(capsys) == f"{V1_DEVTEST} route 2 is in Town04, but the map {TOWN01} is Town01"


def test_no_route_for_the_town(capsys):
    assert main(plan("--map", TOWN01, "--routes", V2_DEVTEST)) == 2
    assert one_error_line(capsys) == (
        f"{V2_DEVTEST} has no route in Town01 (the town of map {TOWN01}); its routes are in Town12"
    )


def test_malformed_xml(tmp_path, capsys):
    bad = tmp_path / "broken.xml"
    bad.write_text('<routes>\n<route id="0" town="Town01">\n<waypoint x="1"\n</routes>\n')
    assert main(plan("--map", TOWN01, "--routes", str(bad))) == 2
    message = one_error_line(capsys)
    assert message.startswith(f"{bad}: not valid XML: ") and "line 4" in message


def test_missing_route_file(tmp_path, capsys):
    missing = tmp_path / "none.xml"
    assert main(plan("--map", TOWN01, "--routes", str(missing))) == 2
    assert one_error_line(capsys) == f"{missing}: no such route file"


def test_missing_map(tmp_path, capsys):
    assert main(plan("--map", str(tmp_path / "Town99.xodr"), "--routes", V1_DEVTEST)) == 2
    assert "Town99.xodr: no such map file" in one_error_line(capsys)


def test_unreachable_goal(tmp_path, capsys):
    # e6mini lane -2 runs north (y falling) without successors: going back south is impossible
    routes = tmp_path / "back.xml"
    routes.write_text(
        '<routes><route id="5" town="e6mini">'
        '<waypoint x="4.4" y="-100" z="0" yaw="-90"/><waypoint x="4.4" y="-50" z="0" yaw="-90"/>'
        "</route></routes>"
    )
    assert main(plan("--map", E6MINI, "--routes", str(routes))) == 2
    message = one_error_line(capsys)
    assert message.startswith(f"{routes} route 5: unreachable: no lane path from (")
    assert message.endswith(" (key point 0 to 1)")
