"""The flat lane table: centre-line lookups by bisection and by a walk from a hint agree."""

from __future__ import annotations

import numpy as np
import pytest

from sim.lanetable import LaneTable, lane_pose, lane_z, pose_on_segment, segment_index, segment_index_near
from sim.maps import load_map


@pytest.fixture(scope="module")
def table() -> LaneTable:
    return LaneTable.from_road_map(load_map("generated:0"))


def test_s_never_decreases_along_a_lane(table):
    for lane in range(len(table)):
        s = table.s[table.pt_off[lane] : table.pt_off[lane + 1]]
        assert s[0] == 0.0 and np.all(np.diff(s) >= 0.0)


def test_walk_from_any_hint_finds_the_bisection_segment(table):
    rng = np.random.default_rng(0)
    for _ in range(20000):
        lane = int(rng.integers(len(table)))
        lo, hi = int(table.pt_off[lane]), int(table.pt_off[lane + 1]) - 1
        length = float(table.length[lane])
        s_m = float(rng.choice([rng.uniform(-2.0, length + 2.0), table.s[rng.integers(lo, hi + 1)], np.nan]))
        hint = int(rng.integers(lo - 5, hi + 5))
        a = segment_index_near(table.s, lo, hi, s_m, hint)
        assert a == segment_index(table.s, lo, hi, s_m), (lane, s_m, hint)
        pose = pose_on_segment(table.xy, table.yaw, table.s, lo, hi, s_m, a)
        assert pose == lane_pose(table.pt_off, table.xy, table.yaw, table.s, lane, s_m) or np.isnan(s_m)
        assert table.z[a] == lane_z(table.pt_off, table.z, table.s, lane, s_m)


def test_walk_on_a_single_point_and_on_repeated_points():
    s = np.array([0.0, 1.0, 1.0, 1.0, 2.5, 4.0])
    for s_m in (-1.0, 0.0, 0.5, 1.0, 1.5, 2.5, 4.0, 9.0):
        for hint in range(-1, 7):
            assert segment_index_near(s, 0, 5, s_m, hint) == segment_index(s, 0, 5, s_m)
    assert segment_index_near(s, 3, 3, 1.0, 0) == 3
