"""The top-down map raster (sim.maps.raster): classes, grid, marks, stop lines, cache."""

from __future__ import annotations

import json
import math
import time

import cv2
import numpy as np
import pytest

from sim.errors import ConfigError, MapError
from sim.maps.odr import MarkType, read_opendrive, sample_lanes
from sim.maps.raster import (
    DEFAULT_PALETTE,
    MapRaster,
    RasterClass,
    RasterStyle,
    build_raster,
    raster_cache_dir,
)
from sim.maps.roadmap import RoadMap
from tests.conftest import needs_shared, shared_map

C = RasterClass
MARKS = (C.MARKING_WHITE, C.MARKING_YELLOW)


# -- a small synthetic town: road 1 -> junction road 2 -> road 3, a traffic light on road 1 ----


def _lane(i: int, kind: str, width_m: float, mark: str, link: str) -> str:
    return (
        f'<lane id="{i}" type="{kind}">{link if kind == "driving" else ""}'
        f'<width sOffset="0" a="{width_m}" b="0" c="0" d="0"/>'
        f'<roadMark sOffset="0" type="{mark}" color="white" width="0.15"/></lane>'
    )


def _road(rid: int, x0: float, junction: int, links: str, centre: str, body: str = "") -> str:
    walk = junction == -1
    lanes = (
        "<lanes><laneSection s='0'><left>"
        + (_lane(2, "sidewalk", 2.0, "curb", "") if walk else "")
        + _lane(1, "driving", 3.5, "solid", '<link><predecessor id="1"/><successor id="1"/></link>')
        + f"</left><center><lane id='0' type='none'><roadMark sOffset='0' type='{centre}' color='white'"
        " width='0.15'/></lane></center><right>"
        + _lane(-1, "driving", 3.5, "solid", '<link><predecessor id="-1"/><successor id="-1"/></link>')
        + (_lane(-2, "sidewalk", 2.0, "curb", "") if walk else "")
        + "</right></laneSection></lanes>"
    )
    length = 20 if junction >= 0 else 50
    return (
        f'<road id="{rid}" junction="{junction}" length="{length}"><link>{links}</link>'
        f'<planView><geometry s="0" x="{x0}" y="0" hdg="0" length="{length}"><line/></geometry></planView>'
        f"{lanes}{body}</road>"
    )


def synthetic_town(junction_centre: str = "none", signal_s: float = 45.0) -> RoadMap:
    """Roads along +x: road 1 (0-50 m), junction road 2 (50-70 m), road 3 (70-120 m)."""
    signal = (
        f'<signals><signal id="7" name="light" s="{signal_s}" t="-5" orientation="+" dynamic="yes"'
        ' country="OpenDRIVE" type="1000001" subtype="-1" value="-1"/></signals>'
    )
    text = (
        '<?xml version="1.0"?><OpenDRIVE><header revMajor="1" revMinor="4" name="synth"/>'
        + _road(1, 0, -1, '<successor elementType="junction" elementId="100"/>', "broken", signal)
        + _road(
            2,
            50,
            100,
            '<predecessor elementType="road" elementId="1" contactPoint="end"/>'
            '<successor elementType="road" elementId="3" contactPoint="start"/>',
            junction_centre,
        )
        + _road(3, 70, -1, '<predecessor elementType="junction" elementId="100"/>', "broken")
        + '<junction id="100" name="j">'
        '<connection id="0" incomingRoad="1" connectingRoad="2" contactPoint="start">'
        '<laneLink from="-1" to="-1"/></connection>'
        '<connection id="1" incomingRoad="3" connectingRoad="2" contactPoint="end">'
        '<laneLink from="1" to="1"/></connection></junction></OpenDRIVE>'
    )
    return RoadMap.from_xodr(f"synth_{junction_centre}_{signal_s}", text)


def _labels_along(raster: MapRaster, x0: float, x1: float, y: float) -> np.ndarray:
    xs = np.arange(x0, x1, raster.m_per_px / 2)
    return raster.label_at(np.stack([xs, np.full_like(xs, y)], axis=1))


def test_synthetic_town_surfaces_marks_and_stop_line():
    raster = build_raster(synthetic_town(), use_cache=False)
    # Right lane (heading +x) is CARLA y > 0; sidewalks beyond 3.5 m; junction 50-70 m.
    assert (_labels_along(raster, 1, 48, 1.75) == C.ROAD).all()
    assert (_labels_along(raster, 51, 69, 1.75) == C.JUNCTION).all()
    assert (_labels_along(raster, 1, 49, 4.6) == C.SIDEWALK).all()
    assert (_labels_along(raster, 51, 69, 4.6) == C.OFF_ROAD).all()  # the junction road has no sidewalk
    assert (_labels_along(raster, 1, 49, 5.5) == C.CURB).mean() > 0.95  # the sidewalk's curb mark
    assert (_labels_along(raster, 1, 49, 3.5) == C.MARKING_WHITE).all()  # solid edge line
    # Broken centre line: 3 m painted, 6 m gap, from s = 0 of road 1 (x = 0).
    centre = np.isin(_labels_along(raster, 0.2, 44.8, 0.0), MARKS)
    xs = np.arange(0.2, 44.8, 0.05)
    assert (centre == (np.mod(xs, 9.0) < 3.0)).mean() > 0.97
    # The file gives no centre mark inside the junction: none is drawn there.
    assert not np.isin(_labels_along(raster, 50.5, 69.5, 0.0), MARKS).any()
    # A traffic light on road 1 puts a stop line across the lane entering the junction.
    assert (_labels_along(raster, 49.7, 49.95, 1.75) == C.STOP_LINE).all()
    assert raster.label_at(np.array([49.8, 0.5])) == C.STOP_LINE
    assert raster.label_at(np.array([49.8, -1.75])) != C.STOP_LINE  # the lane leaving the junction
    assert raster.label_at(np.array([49.3, 1.75])) != C.STOP_LINE  # 0.4 m deep
    n, _ = cv2.connectedComponents((raster.labels == C.STOP_LINE).astype(np.uint8))
    assert n - 1 == 1


def test_junction_marks_only_when_the_file_has_them():
    raster = build_raster(synthetic_town(junction_centre="solid"), use_cache=False)
    assert np.isin(_labels_along(raster, 50.5, 69.5, 0.0), MARKS).mean() > 0.97


def test_stop_line_needs_a_signal_near_the_junction():
    far = synthetic_town(signal_s=5.0)  # 45 m before the junction
    assert (build_raster(far, use_cache=False).labels == C.STOP_LINE).any()
    style = RasterStyle(stop_line_max_distance_m=20.0)
    assert not (build_raster(far, use_cache=False, style=style).labels == C.STOP_LINE).any()


def test_grid_is_not_mirrored_and_round_trips():
    raster = build_raster(synthetic_town(), use_cache=False)
    ox, oy = raster.origin_xy_m
    assert ox == pytest.approx(-10.0) and oy == pytest.approx(-15.5)  # 10 m margin, snapped to 0.1 m
    h, w = raster.shape
    assert (h, w) == (310, 1400)
    assert raster.world_to_pixel((ox + 0.05, oy + 0.05)).tolist() == [0, 0]  # origin = corner of (0, 0)
    assert raster.world_to_pixel((ox - 0.01, oy - 0.01)).tolist() == [-1, -1]
    assert raster.pixel_to_world([0, 0]) == pytest.approx((ox + 0.05, oy + 0.05))
    row, col = raster.world_to_pixel((25.0, 1.75))
    assert raster.world_to_pixel((25.0, 2.75)).tolist() == [row + 10, col]  # +y is down the rows
    assert raster.world_to_pixel((26.0, 1.75)).tolist() == [row, col + 10]  # +x is along the columns
    rc = np.array([[0, 0], [17, 400], [h - 1, w - 1]])
    assert (raster.world_to_pixel(raster.pixel_to_world(rc)) == rc).all()
    # The right lane (y > 0) is in the lower half of the picture.
    assert raster.labels[row, col] == C.ROAD
    assert raster.labels[raster.world_to_pixel((25.0, 4.6))[0], col] == C.SIDEWALK
    assert raster.extent_xy_m == pytest.approx((ox, oy, ox + w * 0.1, oy + h * 0.1))


def test_rgb_crop_and_label_at():
    raster = build_raster(synthetic_town(), use_cache=False)
    rgb = raster.to_rgb()
    assert rgb.shape == (*raster.shape, 3) and rgb.dtype == np.uint8
    assert (rgb == DEFAULT_PALETTE[raster.labels]).all()
    grey = np.repeat(np.arange(len(C), dtype=np.uint8)[:, None], 3, axis=1)
    assert (raster.to_rgb(grey)[..., 0] == raster.labels).all()
    with pytest.raises(ConfigError, match="palette must be"):
        raster.to_rgb(np.zeros((3, 3), np.uint8))
    part = raster.crop((40.0, -2.0), (60.0, 2.0))
    r0, c0 = raster.world_to_pixel((40.0, -2.0))
    assert part.origin_xy_m == pytest.approx(raster.pixel_to_world([r0, c0]) - 0.05)
    assert (part.labels == raster.labels[r0 : r0 + part.shape[0], c0 : c0 + part.shape[1]]).all()
    assert part.shape == (41, 201)
    assert raster.label_at(np.array([[1e4, 0.0]])).tolist() == [C.OFF_ROAD]


def test_bad_settings_give_one_line():
    town = synthetic_town()
    for bad in (0.0, -1.0, math.nan, 1000.0):
        with pytest.raises(ConfigError, match="m_per_px must be between"):
            build_raster(town, m_per_px=bad, use_cache=False)
    with pytest.raises(ConfigError, match="RasterStyle.broken_line_m must be positive"):
        RasterStyle(broken_line_m=0.0)
    with pytest.raises(ConfigError, match="RasterStyle.margin_m must be a finite number >= 0"):
        RasterStyle(margin_m=-1.0)


# -- the cache -------------------------------------------------------------------------------


def test_cache_round_trip_and_recovery(tmp_path):
    town = synthetic_town()
    built = build_raster(town, cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npy")
    npy = tmp_path / files[1]
    meta = json.loads((tmp_path / files[0]).read_text())
    assert meta["content_hash"] == town.content_hash and meta["m_per_px"] == 0.1
    assert meta["shape"] == list(built.shape) and meta["origin_xy_m"] == list(built.origin_xy_m)
    cached = build_raster(town, cache_dir=tmp_path)
    assert isinstance(cached.labels, np.memmap) and not cached.labels.flags.writeable
    assert (np.asarray(cached.labels) == built.labels).all() and cached.origin_xy_m == built.origin_xy_m
    # A truncated array is rebuilt, not trusted, and the cache is repaired.
    npy.write_bytes(npy.read_bytes()[:100])
    rebuilt = build_raster(town, cache_dir=tmp_path)
    assert not isinstance(rebuilt.labels, np.memmap) and (rebuilt.labels == built.labels).all()
    assert isinstance(build_raster(town, cache_dir=tmp_path).labels, np.memmap)
    # A sidecar that does not match (other map, other shape) is not trusted either.
    meta["shape"] = [1, 1]
    (tmp_path / files[0]).write_text(json.dumps(meta))
    assert not isinstance(build_raster(town, cache_dir=tmp_path).labels, np.memmap)
    (tmp_path / files[0]).write_text("{not json")
    assert not isinstance(build_raster(town, cache_dir=tmp_path).labels, np.memmap)
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no temporary files left
    # Another scale is another entry.
    build_raster(town, cache_dir=tmp_path, m_per_px=0.2)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_cache_dir_follows_loopdrive_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPDRIVE_CACHE", str(tmp_path / "c"))
    assert raster_cache_dir() == tmp_path / "c" / "rasters"
    build_raster(synthetic_town())
    assert len(list((tmp_path / "c" / "rasters").glob("*.npy"))) == 1
    monkeypatch.delenv("LOOPDRIVE_CACHE")
    assert raster_cache_dir().parts[-3:] == (".cache", "loopdrive", "rasters")


# -- the real maps -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def town01():
    road_map = shared_map("carla/Town01.xodr")
    return road_map, build_raster(road_map, use_cache=False)


@needs_shared
def test_town01_classes_as_the_file_gives_them(town01):
    road_map, raster = town01
    counts = np.bincount(raster.labels.ravel(), minlength=len(C))
    for cls in (C.ROAD, C.JUNCTION, C.SHOULDER, C.SIDEWALK, C.CURB, C.MARKING_YELLOW, C.STOP_LINE):
        assert counts[cls] > 1000, cls.name
    # Town01's file has only yellow centre marks and no crosswalk objects.
    assert counts[C.MARKING_WHITE] == 0 and counts[C.CROSSWALK] == 0
    assert raster.shape == (3654, 4311)
    x0, y0, x1, y1 = road_map.bounds
    ex0, ey0, ex1, ey1 = raster.extent_xy_m
    assert ex0 < x0 - 10 and ey0 < y0 - 10 and ex1 > x1 + 10 and ey1 > y1 + 10


@needs_shared
def test_town01_lanes_land_on_their_classes(town01):
    road_map, raster = town01
    outside = np.concatenate([ln.xyz_m[:, :2] for ln in road_map.lanes.values() if not ln.in_junction])
    inside = np.concatenate([ln.xyz_m[:, :2] for ln in road_map.lanes.values() if ln.in_junction])
    assert np.isin(raster.label_at(outside), (C.ROAD, C.STOP_LINE, C.JUNCTION)).all()
    assert (raster.label_at(outside) == C.ROAD).mean() > 0.98
    assert (raster.label_at(inside) == C.JUNCTION).mean() > 0.94
    od = read_opendrive(road_map.xodr_text)
    walks = [s for s in sample_lanes(od) if s.lane_type == "sidewalk" and not s.in_junction]
    centres = np.concatenate([s.centre_xy_m for s in walks])
    assert (raster.label_at(centres) == C.SIDEWALK).mean() > 0.98


@needs_shared
def test_town01_stop_lines_at_every_signalled_entry(town01):
    road_map, raster = town01
    n, comp = cv2.connectedComponents((raster.labels == C.STOP_LINE).astype(np.uint8))
    assert n - 1 == 36  # 12 T-junctions x 3 signalled entries
    # Each lies across the end of a lane that enters a junction.
    ends = np.array(
        [
            ln.xyz_m[-1, :2]
            for ln in road_map.lanes.values()
            if not ln.in_junction and any(road_map.lanes[k].in_junction for k in ln.successors)
        ]
    )
    for i in range(1, n):
        rows, cols = np.nonzero(comp == i)
        centre = raster.pixel_to_world([rows.mean(), cols.mean()])
        assert np.hypot(*(ends - centre).T).min() < 0.5


def _runs_m(on: np.ndarray, step_m: float) -> tuple[float, float]:
    """Median lengths (m) of the on and off runs inside a boolean profile."""
    edges = np.flatnonzero(np.diff(on.astype(np.int8))) + 1
    runs = np.diff(edges) * step_m
    first_on = on[edges[0]]
    on_runs, off_runs = runs[0 if first_on else 1 :: 2], runs[1 if first_on else 0 :: 2]
    return float(np.median(on_runs)), float(np.median(off_runs))


def _broken_profile(relpath: str, min_samples: int = 2000):
    road_map = shared_map(relpath)
    raster = build_raster(road_map, use_cache=False)
    step = 0.02
    for strip in sample_lanes(read_opendrive(road_map.xodr_text), step):
        broken = strip.mark_type == MarkType.BROKEN
        if not strip.in_junction and broken.all() and len(strip.s_m) > min_samples:
            # a ~1 px line on a slanted road: look 15 cm either side of the border
            across = np.linspace(-0.15, 0.15, 7)[None, :, None] * strip.t_dir_xy[:, None, :]
            yield np.isin(raster.label_at(strip.outer_xy_m[:, None, :] + across), MARKS).any(axis=1), step


@needs_shared
@pytest.mark.parametrize(
    ("relpath", "dash_m", "gap_m"),
    [
        ("carla/Town01.xodr", 3.0, 6.0),  # CARLA's broken line: 3 m painted, 6 m gap
        ("esmini/fabriksgatan_traffic_lights.xodr", 3.0, 8.0),  # the file's own <line length=3 space=8>
        ("esmini/e6mini.xodr", 6.0, 12.0),  # <line length=6 space=12>
    ],
)
def test_broken_lines_have_the_right_rhythm(relpath, dash_m, gap_m):
    profiles = list(_broken_profile(relpath))
    assert profiles
    for on, step in profiles[:5]:
        dash, gap = _runs_m(on, step)
        # cv2 fills the outline too: a dash is about one pixel (0.1 m) longer
        assert dash == pytest.approx(dash_m + 0.1, abs=0.1) and gap == pytest.approx(gap_m - 0.1, abs=0.1)


@needs_shared
def test_double_centre_line_is_two_lines():
    road_map = shared_map("carla/Town03.xodr")
    raster = build_raster(road_map, use_cache=False)
    strip = next(s for s in sample_lanes(read_opendrive(road_map.xodr_text)) if s.key == (18, 0, 0))
    double = np.flatnonzero(strip.mark_type == MarkType.SOLID_SOLID)
    assert len(double) > 80 and (strip.mark_type[: double[0]] == MarkType.NONE).all()
    across = np.linspace(-0.5, 0.5, 201)[:, None]
    checked = double[5:-5:3]
    two = 0
    for i in checked:
        profile = raster.label_at(strip.outer_xy_m[i] + across * strip.t_dir_xy[i]) == C.MARKING_YELLOW
        two += int(np.sum(np.diff(profile.astype(np.int8)) == 1) + profile[0]) == 2
    assert two / len(checked) > 0.85


@needs_shared
def test_town04_crosswalks_and_white_marks():
    raster = build_raster(shared_map("carla/Town04.xodr"), use_cache=False)
    counts = np.bincount(raster.labels.ravel(), minlength=len(C))
    assert counts[C.CROSSWALK] > 50_000 and counts[C.MARKING_WHITE] > 150_000
    n, _ = cv2.connectedComponents((raster.labels == C.STOP_LINE).astype(np.uint8))
    assert n - 1 == 43


@needs_shared
@pytest.mark.slow
def test_town04_build_time(tmp_path):
    road_map = shared_map("carla/Town04.xodr")
    start = time.perf_counter()
    raster = build_raster(road_map, cache_dir=tmp_path)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    cached = build_raster(road_map, cache_dir=tmp_path)
    warm = time.perf_counter() - start
    assert raster.shape == cached.shape and cold < 10.0 and warm < 1.0


def test_too_large_a_raster_is_refused():
    # A 2 km margin around the 120 m town makes 4.1 x 4.0 km, 1.7e11 pixels at 1 cm/px.
    with pytest.raises(MapError, match="raster at 0.01 m/px is too large; use a coarser m_per_px"):
        build_raster(synthetic_town(), m_per_px=0.01, use_cache=False, style=RasterStyle(margin_m=2000.0))
