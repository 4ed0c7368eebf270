"""OpenDRIVE lane geometry (sim.maps.odr): exact geometry, and agreement with carla on the real maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import fresnel

from sim.errors import MapError
from sim.maps.odr import (
    Geometry,
    MarkColor,
    MarkType,
    object_outline_xy,
    read_opendrive,
    read_opendrive_file,
    reference_line,
    sample_lanes,
)
from tests.conftest import MAPS, needs_shared, shared_map

SHARED_XODR = [
    "carla/Town01.xodr",
    "carla/Town03.xodr",
    "carla/Town04.xodr",
    "carla/Town06.xodr",
    *(f"esmini/{p.name}" for p in sorted((MAPS / "esmini").glob("*.xodr"))),
]


# -- geometry, exact ------------------------------------------------------------------


def test_line_and_arc_are_exact():
    line = Geometry(0.0, 1.0, 2.0, math.pi / 2, 10.0, "line")
    x, y, h = line.evaluate(np.array([0.0, 4.0, 10.0]))
    assert np.allclose(x, 1.0) and np.allclose(y, [2.0, 6.0, 12.0]) and np.allclose(h, math.pi / 2)
    radius = 20.0
    arc = Geometry(0.0, 0.0, 0.0, 0.0, radius * math.pi / 2, "arc", (1.0 / radius,))
    x, y, h = arc.evaluate(np.array([radius * math.pi / 2]))
    assert (x[0], y[0], h[0]) == pytest.approx((radius, radius, math.pi / 2), abs=1e-9)
    right = Geometry(0.0, 0.0, 0.0, 0.0, radius * math.pi, "arc", (-1.0 / radius,))
    x, y, _ = right.evaluate(np.array([radius * math.pi]))
    assert (x[0], y[0]) == pytest.approx((0.0, -2 * radius), abs=1e-9)


def test_spiral_matches_fresnel_integrals():
    # A clothoid from curvature 0 to k over L: x = a*C(s/a), y = a*S(s/a), a = sqrt(pi*L/k).
    length, k_end = 80.0, 0.05
    spiral = Geometry(0.0, 0.0, 0.0, 0.0, length, "spiral", (0.0, k_end))
    s = np.linspace(0.0, length, 9)
    x, y, h = spiral.evaluate(s)
    a = math.sqrt(math.pi * length / k_end)
    fs, fc = fresnel(s / a)
    assert np.allclose(x, a * fc, atol=1e-9) and np.allclose(y, a * fs, atol=1e-9)
    assert np.allclose(h, 0.5 * k_end * s * s / length)
    # A spiral starting at non-zero curvature continues the same clothoid.
    tail = Geometry(0.0, float(x[4]), float(y[4]), float(h[4]), length / 2, "spiral", (k_end / 2, k_end))
    tx, ty, th = tail.evaluate(np.array([length / 2]))
    assert (tx[0], ty[0], th[0]) == pytest.approx((x[-1], y[-1], h[-1]), abs=1e-9)


def test_poly3_is_parametrised_by_arc_length():
    # v = u: a straight line at 45 degrees, so s = sqrt(2) * u.
    poly = Geometry(0.0, 0.0, 0.0, 0.0, 10.0, "poly3", (0.0, 1.0, 0.0, 0.0))
    x, y, h = poly.evaluate(np.array([0.0, 5.0, 10.0]))
    assert np.allclose(x, [0.0, 5 / math.sqrt(2), 10 / math.sqrt(2)], atol=1e-6)
    assert np.allclose(x, y, atol=1e-9) and np.allclose(h, math.pi / 4)


def _parabola_length(p: float) -> float:
    """Arc length of (u, v) = (q, q^2) from q = 0 to p."""
    return 0.5 * p * math.sqrt(1 + 4 * p * p) + 0.25 * math.asinh(2 * p)


def test_param_poly3_by_true_arc_length_in_both_ranges():
    # (u, v) = (p, p^2) up to p = 2, written with pRange arcLength and normalized (p = 2q).
    length = _parabola_length(2.0)
    by_length = Geometry(0.0, 0.0, 0.0, 0.0, length, "paramPoly3", (0, 1, 0, 0, 0, 0, 1, 0, 0.0))
    normalized = Geometry(0.0, 0.0, 0.0, 0.0, length, "paramPoly3", (0, 2, 0, 0, 0, 0, 4, 0, 1.0))
    for geo in (by_length, normalized):
        x, y, h = geo.evaluate(np.array([0.0, _parabola_length(1.0), length]))
        assert np.allclose(x, [0, 1, 2], atol=1e-4) and np.allclose(y, [0, 1, 4], atol=1e-4)
        assert np.allclose(h, [0.0, math.atan(2.0), math.atan(4.0)], atol=1e-4)


# -- a hand-written road: lanes, widths, offsets, marks, CARLA's y -----------------------

ROAD = """<?xml version="1.0"?>
<OpenDRIVE><header revMajor="1" revMinor="6"/>
 <road id="7" junction="-1" length="100">
  <type s="0" type="town"><speed max="30" unit="km/h"/></type>
  <planView><geometry s="0" x="10" y="20" hdg="0" length="100"><line/></geometry></planView>
  <lanes>
   <laneOffset s="0" a="0.5" b="0" c="0" d="0"/>
   <laneSection s="0">
    <left>
     <lane id="2" type="sidewalk"><width sOffset="0" a="2" b="0" c="0" d="0"/>
      <roadMark sOffset="0" type="curb" width="0.15"/></lane>
     <lane id="1" type="driving"><width sOffset="0" a="3" b="0.01" c="0" d="0"/>
      <roadMark sOffset="0" type="solid" color="white" width="0.2"/>
      <roadMark sOffset="50" type="broken" color="standard">
       <type name="x" width="0.1"><line length="4" space="8" tOffset="0" sOffset="1" width="0.1"/></type>
      </roadMark></lane>
    </left>
    <center><lane id="0" type="none">
     <roadMark sOffset="0" type="solid solid" color="yellow" width="0.1"/></lane></center>
    <right>
     <lane id="-1" type="driving"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane>
     <lane id="-2" type="parking"><border sOffset="0" a="6" b="0" c="0" d="0"/></lane>
    </right>
   </laneSection>
  </lanes>
  <objects><object id="9" type="crosswalk" s="40" t="0" hdg="1.5707963" length="6" width="3"/></objects>
  <signals><signal id="3" s="95" t="-4" orientation="+" type="1000001" dynamic="yes"/>
   <signalReference id="3" s="10" t="2" orientation="-"/></signals>
 </road>
 <junction id="4"/>
</OpenDRIVE>
"""


def _strips(text: str = ROAD, step_m: float = 0.5):
    return {s.lane_id: s for s in sample_lanes(read_opendrive(text), step_m)}


def test_lane_borders_widths_and_carla_frame():
    strips = _strips()
    assert set(strips) == {2, 1, 0, -1, -2}
    # Reference line runs +x at OpenDRIVE y = 20, i.e. CARLA y = -20; left (+t) is CARLA -y.
    centre = strips[0]
    assert np.allclose(centre.outer_xy_m[0], (10.0, -20.5)) and np.allclose(centre.width_m, 0.0)
    left, right = strips[1], strips[-1]
    assert np.allclose(left.inner_xy_m[:, 1], -20.5)
    assert np.allclose(left.width_m, 3.0 + 0.01 * left.s_m)
    assert np.allclose(left.outer_xy_m[:, 1], -20.5 - left.width_m)
    assert np.allclose(right.outer_xy_m[:, 1], -20.5 + 3.5) and np.allclose(right.width_m, 3.5)
    # A border record gives the outer border's distance from the centre lane: 6 m.
    parking = strips[-2]
    assert np.allclose(parking.outer_xy_m[:, 1], -20.5 + 6.0) and np.allclose(parking.width_m, 2.5)
    assert np.allclose(strips[2].inner_xy_m, left.outer_xy_m)
    assert np.allclose(left.yaw_rad, 0.0) and np.allclose(left.t_dir_xy, (0.0, -1.0))
    assert left.s_m[0] == 0.0 and left.s_m[-1] == 100.0 and np.diff(left.s_m).max() <= 0.5 + 1e-9
    assert (left.road_id, left.section_index, left.lane_type, left.junction_id) == (7, 0, "driving", -1)
    assert strips[2].lane_type == "sidewalk" and strips[-2].lane_type == "parking"


def test_road_marks_per_sample():
    strips = _strips()
    left = strips[1]
    before, after = left.s_m < 50, left.s_m >= 50
    assert (left.mark_type[before] == MarkType.SOLID).all()
    assert (left.mark_type[after] == MarkType.BROKEN).all()
    assert np.allclose(left.mark_width_m[before], 0.2) and np.isnan(left.mark_width_m[after]).all()
    assert (left.mark_color == MarkColor.WHITE).sum() == before.sum()
    assert (left.mark_color[after] == MarkColor.STANDARD).all()
    assert (left.mark_index[before] == 0).all() and (left.mark_index[after] == 1).all()
    assert 50.0 in left.s_m  # a record start is sampled exactly
    line = left.road_marks[1].lines[0]
    assert (line.length_m, line.space_m, line.s_offset_m, line.width_m) == (4.0, 8.0, 1.0, 0.1)
    assert (strips[0].mark_type == MarkType.SOLID_SOLID).all()
    assert (strips[0].mark_color == MarkColor.YELLOW).all()
    assert (strips[2].mark_type == MarkType.CURB).all()
    assert (strips[-1].mark_index == -1).all() and (strips[-1].mark_type == MarkType.NONE).all()


def test_speed_signals_objects_junctions():
    od = read_opendrive(ROAD)
    road = od.roads[7]
    assert od.junction_ids == (4,)
    assert road.speeds == ((0.0, pytest.approx(30 / 3.6)),)
    assert [(s.id, s.s_m, s.is_reference, s.orientation) for s in road.signals] == [
        ("3", 95.0, False, "+"),
        ("3", 10.0, True, "-"),
    ]
    outline = object_outline_xy(road, road.objects[0])
    # 6 m long across the road (hdg 90 degrees), 3 m wide along it, centred at s=40, t=0.
    assert outline.min(axis=0) == pytest.approx((10 + 40 - 1.5, -20 - 3.0), abs=1e-6)
    assert outline.max(axis=0) == pytest.approx((10 + 40 + 1.5, -20 + 3.0), abs=1e-6)


_SECOND_SECTION = (
    '</laneSection><laneSection s="60"><center><lane id="0" type="none"/></center>'
    '<right><lane id="-1" type="driving"><width sOffset="0" a="3" b="0" c="0" d="0"/></lane></right>'
    "</laneSection>"
)


def test_lane_offset_jump_belongs_to_the_next_section():
    text = ROAD.replace(
        '<laneOffset s="0" a="0.5" b="0" c="0" d="0"/>',
        '<laneOffset s="0" a="0.5" b="0" c="0" d="0"/><laneOffset s="60" a="-2" b="0" c="0" d="0"/>',
    ).replace("</laneSection>", _SECOND_SECTION)
    strips = sample_lanes(read_opendrive(text))
    first = next(s for s in strips if s.key == (7, 0, -1))
    second = next(s for s in strips if s.key == (7, 1, -1))
    assert first.s_m[-1] == 60.0 and np.allclose(first.inner_xy_m[:, 1], -20.5)
    assert second.s_m[0] == 60.0 and np.allclose(second.inner_xy_m[:, 1], -18.0)


def test_width_jump_inside_a_section_keeps_both_sides():
    text = ROAD.replace(
        '<width sOffset="0" a="3.5" b="0" c="0" d="0"/>',
        '<width sOffset="0" a="3.5" b="0" c="0" d="0"/><width sOffset="30.25" a="2" b="0" c="0" d="0"/>',
    )
    right = _strips(text)[-1]
    i = int(np.searchsorted(right.s_m, 30.25))
    assert right.s_m[i] == 30.25 and right.s_m[i - 1] == pytest.approx(30.25 - 1e-6)
    assert (right.width_m[i - 1], right.width_m[i]) == (3.5, 2.0)


# -- bad input ---------------------------------------------------------------------------

_TWICE = ROAD.replace("</OpenDRIVE>", ROAD[ROAD.index("<road") : ROAD.index("<junction")] + "</OpenDRIVE>")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<OpenDRIVE><road", "bad.xodr: not valid XML"),
        ("<osm/>", "bad.xodr: not an OpenDRIVE file (root element is <osm>)"),
        ("<OpenDRIVE/>", "bad.xodr: the OpenDRIVE file has no <road>"),
        (ROAD.replace(' length="100"><line/>', "><line/>"), "<geometry> has no 'length' attribute (road 7)"),
        (ROAD.replace('hdg="0" length', 'hdg="north" length'), "hdg='north' is not a number (road 7)"),
        (ROAD.replace('<road id="7"', '<road id="main"'), "<road> id='main' is not an integer"),
        (ROAD.replace("<line/>", "<clothoid/>"), "has no line/arc/spiral/poly3/paramPoly3 child"),
        (ROAD.replace("<lanes>", "<x>").replace("</lanes>", "</x>"), "road has no <lanes> (road 7)"),
        (_TWICE, "road id 7 appears twice"),
    ],
)
def test_bad_files_give_one_line(text, message):
    with pytest.raises(MapError) as info:
        read_opendrive(text, source="bad.xodr")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("bad.xodr: ")


def test_missing_file(tmp_path):
    with pytest.raises(MapError, match="nope.xodr: no such OpenDRIVE file"):
        read_opendrive_file(tmp_path / "nope.xodr")
    with pytest.raises(MapError, match="sample step must be positive"):
        sample_lanes(read_opendrive(ROAD), 0.0)


# -- the real maps, against carla ---------------------------------------------------------


def _polyline_distance(points: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to a polyline, and the foot's fractional index along it.

    Only the segments next to each point's 4 nearest vertices are tried (a KD-tree), which
    is exact wherever the polyline's vertices are denser than the point's distance to it.
    """
    from scipy.spatial import cKDTree

    k = min(4, len(line))
    _, near = cKDTree(line).query(points, k=k)
    near = near.reshape(len(points), k)
    seg = np.clip(np.concatenate([near - 1, near], axis=1), 0, len(line) - 2)  # (P, 2k) segment ids
    a, d = line[seg], line[seg + 1] - line[seg]
    ll = np.maximum((d * d).sum(-1), 1e-12)
    t = np.clip(((points[:, None, :] - a) * d).sum(-1) / ll, 0.0, 1.0)
    dist = np.linalg.norm(points[:, None, :] - (a + t[..., None] * d), axis=-1)
    best = dist.argmin(1)
    rows = np.arange(len(points))
    return dist[rows, best], seg[rows, best] + t[rows, best]


def _jumps(strip) -> np.ndarray:
    """Road s where the file itself jumps (a width or heading that does not continue).

    The sampler keeps both sides of a record start 1e-6 m apart, so a jump shows as a
    pair of samples that far apart in s but more than 1 cm apart in space.
    """
    step = np.linalg.norm(np.diff(strip.centre_xy_m, axis=0), axis=1)
    pair = (np.diff(strip.s_m) < 1e-5) & (step > 0.01)
    return strip.s_m[1:][pair]


@needs_shared
@pytest.mark.parametrize("relpath", SHARED_XODR)
def test_driving_lanes_match_roadmap(relpath):
    """Every driving lane's centre lies within 5 cm of the same RoadMap lane's centre line.

    Distances are to that lane's polyline (stricter than ``RoadMap.project``, which may
    answer with an overlapping junction lane). The RoadMap is traced every 25 cm, so its
    straight chords cut tight junction turns by millimetres only. RoadMap smooths the
    file's own jumps (a width that does not continue) over one step, so samples within
    1 m of one are left out. Widths agree within 1 cm.
    """
    from sim.maps import load_map

    road_map = load_map(MAPS / relpath, resolution_m=0.25)
    od = read_opendrive(road_map.xodr_text, source=relpath)
    driving = [s for s in sample_lanes(od) if s.lane_id != 0 and s.lane_type == "driving"]
    assert {s.key for s in driving} == set(road_map.lanes)
    worst_centre = worst_width = 0.0
    for strip in driving:
        lane = road_map.lanes[strip.key]
        dist, _ = _polyline_distance(strip.centre_xy_m, lane.xyz_m[:, :2])
        for s_jump in _jumps(strip):
            dist[np.abs(strip.s_m - s_jump) < 1.0] = 0.0
        worst_centre = max(worst_centre, float(dist.max()))
        # RoadMap's points project onto our centre line; interpolate our width there.
        _, where = _polyline_distance(lane.xyz_m[:, :2], strip.centre_xy_m)
        ours = np.interp(where, np.arange(len(strip.width_m)), strip.width_m)
        worst_width = max(worst_width, float(np.abs(ours - lane.width_m).max()))
    assert worst_centre < 0.05, f"{relpath}: centre line off by {worst_centre:.3f} m"
    assert worst_width < 0.01, f"{relpath}: width off by {worst_width:.3f} m"


@needs_shared
@pytest.mark.parametrize(
    ("relpath", "tolerance_m"),
    [
        ("carla/Town01.xodr", 0.005),
        ("carla/Town04.xodr", 0.005),
        ("esmini/curves_elevation.xodr", 0.005),  # spirals
        ("esmini/jolengatan.xodr", 0.005),  # long paramPoly3 (arcLength)
        # carla.Osm2Odr's tight junction paramPoly3 (normalized): carla tabulates those
        # coarsely (its headings differ by up to 1 degree), ours follow the curve itself
        ("osm/montlake_roundabout.osm", 0.03),
    ],
)
def test_centre_matches_carla_waypoints_exactly(relpath, tolerance_m):
    """Against ``get_waypoint_xodr`` at the same (road, lane, s), every sample of every driving lane."""
    road_map = shared_map(relpath)
    carla_map = road_map.carla_map
    od = read_opendrive(road_map.xodr_text)
    worst = 0.0
    for strip in (s for s in sample_lanes(od, 1.0) if s.lane_type == "driving" and s.lane_id):
        for i in range(1, len(strip.s_m) - 1):  # carla may pick the neighbouring section at the ends
            wp = carla_map.get_waypoint_xodr(strip.road_id, strip.lane_id, float(strip.s_m[i]))
            assert wp is not None and wp.section_id == strip.section_index
            loc = wp.transform.location
            worst = max(worst, math.hypot(loc.x - strip.centre_xy_m[i, 0], loc.y - strip.centre_xy_m[i, 1]))
            assert wp.lane_width == pytest.approx(strip.width_m[i], abs=1e-3)
    assert worst < tolerance_m, f"{relpath}: {worst:.4f} m"


@needs_shared
def test_town01_lane_types_and_marks():
    od = read_opendrive_file(MAPS / "carla" / "Town01.xodr")
    road = od.roads[0]
    x, y, h = reference_line(road, np.array([0.0]))
    assert (x[0], y[0], h[0]) == pytest.approx((384.58999633789063, -0.0199999995529651, 3.1410614169049995))
    lanes = {ln.id: ln for ln in road.sections[0].lanes}
    assert [(i, lanes[i].type) for i in sorted(lanes)] == [
        (-3, "sidewalk"),
        (-2, "shoulder"),
        (-1, "driving"),
        (0, "none"),
        (1, "driving"),
        (2, "shoulder"),
        (3, "sidewalk"),
    ]
    centre_mark, curb = lanes[0].road_marks[0], lanes[-2].road_marks[0]
    assert (centre_mark.type, centre_mark.color) == (MarkType.BROKEN, MarkColor.YELLOW)
    assert centre_mark.width_m == 0.125
    assert curb.type == MarkType.CURB and curb.width_m == pytest.approx(0.1524)
    strips = {s.lane_id: s for s in sample_lanes(od) if s.road_id == 0}
    # Heading pi (towards -x): +t points to OpenDRIVE -y, i.e. CARLA +y, so the right lanes
    # (t < 0) lie at CARLA y below the reference line's 0.02.
    assert strips[-1].centre_xy_m[0] == pytest.approx((384.59, 0.02 - 2.0), abs=2e-3)
    assert strips[-3].outer_xy_m[0, 1] == pytest.approx(0.02 - 8.3, abs=2e-3)
    types = {s.lane_type for s in sample_lanes(od)}
    assert {"driving", "sidewalk", "shoulder"} <= types


@needs_shared
def test_town04_parse_and_sample_are_fast():
    import time

    text = (MAPS / "carla" / "Town04.xodr").read_text()
    start = time.perf_counter()
    strips = sample_lanes(read_opendrive(text))
    elapsed = time.perf_counter() - start
    assert len(strips) == 1209 and elapsed < 3.0
