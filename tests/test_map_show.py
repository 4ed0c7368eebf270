"""``loopdrive map show``: the picture of a map, with a planned Leaderboard route."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from scripts import map_show
from scripts.cli import main
from sim.maps.raster import DEFAULT_PALETTE, RasterClass, build_raster
from tests.conftest import MAPS, ROUTES, needs_shared, shared_map

TOWN01 = MAPS / "carla" / "Town01.xodr"
DEVTEST_V1 = ROUTES / "v1" / "routes_devtest.xml"


def _show(argv: list[str]) -> int:
    """``map show`` through its own parser and run(), as the CLI calls it."""
    parser = argparse.ArgumentParser(prog="loopdrive map show")
    map_show.register(parser)
    args = parser.parse_args(argv)
    return args.func(args)


def _read_rgb(path) -> np.ndarray:
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert picture is not None, f"{path} is not a readable picture"
    return picture[..., ::-1]


def _count(picture: np.ndarray, rgb) -> int:
    return int(np.all(picture == np.asarray(rgb, np.uint8), axis=-1).sum())


@needs_shared
def test_town01_picture_at_full_resolution(tmp_path, capsys):
    out = tmp_path / "town01.png"
    assert _show([str(TOWN01), "--out", str(out), "--max-size", "5000"]) == 0
    picture = _read_rgb(out)
    assert picture.shape == (3654, 4311, 3)  # the 0.1 m/px raster, not shrunk
    wanted = ("OFF_ROAD", "ROAD", "JUNCTION", "SIDEWALK", "CURB", "MARKING_YELLOW", "STOP_LINE")
    for cls in (RasterClass[name] for name in wanted):
        assert _count(picture, DEFAULT_PALETTE[cls]) > 1000, cls.name
    assert capsys.readouterr().out.strip() == f"wrote {out} (4311 x 3654 px, 0.1 m per pixel)"


@needs_shared
def test_town01_picture_shrunk_to_max_size(tmp_path, capsys):
    out = tmp_path / "small.png"
    assert _show([str(TOWN01), "--out", str(out), "--max-size", "1000"]) == 0
    picture = _read_rgb(out)
    assert picture.shape == (848, 1000, 3)
    colours, counts = np.unique(picture.reshape(-1, 3), axis=0, return_counts=True)
    assert (counts > 500).sum() >= 4  # grass, road, junction, sidewalk at least survive averaging
    assert _count(picture, DEFAULT_PALETTE[RasterClass.OFF_ROAD]) > 0.5 * picture.shape[0] * picture.shape[1]
    assert "1000 x 848 px" in capsys.readouterr().out


@needs_shared
def test_route_drawn_with_start_and_goal(tmp_path):
    out = tmp_path / "route.png"
    argv = [str(TOWN01), "--out", str(out), "--routes", str(DEVTEST_V1), "--route-id", "0"]
    argv += ["--max-size", "2000"]
    assert _show(argv) == 0
    picture = _read_rgb(out)
    assert _count(picture, map_show.ROUTE_RGB) > 2000
    # The first key point is green, the last red, at their places on the picture.
    from sim.maps.leaderboard import read_route_file, select_route

    route = select_route(read_route_file(DEVTEST_V1), "0")
    raster = build_raster(shared_map("carla/Town01.xodr"))  # from the cache the command filled
    scale = 2000 / raster.shape[1]
    ends = ((route.keypoints_xyz_m[0], map_show.START_RGB), (route.keypoints_xyz_m[-1], map_show.GOAL_RGB))
    for point, colour in ends:
        col, row = ((point[:2] - np.array(raster.origin_xy_m)) / raster.m_per_px * scale).astype(int)
        assert (picture[row - 1 : row + 2, col - 1 : col + 2] == colour).all(axis=-1).any()
    assert _count(picture, map_show.START_RGB) > 20 and _count(picture, map_show.GOAL_RGB) > 20


def test_draw_route_places_line_arrows_and_circles():
    picture = np.zeros((200, 400, 3), np.uint8)
    route = np.stack([np.linspace(2.0, 38.0, 100), np.full(100, 10.0)], axis=1)  # along +x at y = 10 m
    map_show.draw_route(picture, (0.0, 0.0), 0.1, 1.0, route, route[[0, 50, -1]])
    # Arrows every 60 px (6 m): tails at x = 5, 11, 17 ... m, heads 2.1 m further on.
    assert (picture[100, 100] == map_show.ROUTE_RGB).all()  # the line, at row y/0.1, col x/0.1
    assert (picture[92, 100] == 0).all() and (picture[108, 100] == 0).all()  # 2 px thick, no arrow here
    assert (picture[95, 126] == map_show.ROUTE_RGB).all() and (picture[105, 126] == map_show.ROUTE_RGB).all()
    assert (picture[100, 20] == map_show.START_RGB).all() and (picture[100, 380] == map_show.GOAL_RGB).all()
    assert (picture[100, 200] == map_show.KEYPOINT_RGB).all()
    # Arrows point the way: their heads widen the line more near their tips than their tails.
    route_px = np.all(picture == map_show.ROUTE_RGB, axis=-1)
    width = route_px[:, 60:340].sum(axis=0)
    assert width.max() >= 8 and np.median(width) <= 4


def _cli_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("loopdrive: error: ")
    return err


@needs_shared
def test_out_into_a_missing_folder_is_one_line(tmp_path, capsys):
    out = tmp_path / "nope" / "x.png"
    err = _cli_error(["map", "show", str(TOWN01), "--out", str(out)], capsys)
    assert f"{out}: the folder {out.parent} does not exist" in err
    assert not out.parent.exists()


@needs_shared
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "{tmp}/x.jpg"], "x.jpg: the picture is written as PNG"),
        (["--out", "{tmp}/x.png", "--route-id", "3"], "--route-id needs --routes ROUTES.xml"),
        (["--out", "{tmp}/x.png", "--max-size", "10"], "--max-size must be a whole number of pixels >= 64"),
        (["--out", "{tmp}/x.png", "--routes", str(DEVTEST_V1), "--route-id", "1"], "route 1 is in Town03"),
        (["--out", "{tmp}/x.png", "--routes", str(DEVTEST_V1), "--route-id", "9"], "no route with id '9'"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    argv = ["map", "show", str(TOWN01), *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    assert message in _cli_error(argv, capsys)
    assert not list(tmp_path.iterdir())


def test_missing_map_is_one_line(tmp_path, capsys):
    err = _cli_error(["map", "show", str(tmp_path / "none.xodr"), "--out", str(tmp_path / "x.png")], capsys)
    assert "none.xodr: no such map file" in err


@needs_shared
def test_out_naming_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "d.png").mkdir()
    argv = ["map", "show", str(TOWN01), "--out", str(tmp_path / "d.png")]
    assert "d.png: is a folder" in _cli_error(argv, capsys)
