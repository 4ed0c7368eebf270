"""Oriented-box overlap on hand-made cases whose answer is known from the geometry.

Touching boxes overlap (closed sets, see :mod:`sim.collision`). Exactly touching cases
are built axis-aligned, where every coordinate is exact in binary floating point; the
rotated cases are built 1 mm apart or 1 mm into each other, far above rounding
(~1e-15 m) and far below any box size, so each must come out one way.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.collision import boxes_overlap, overlapping_pairs, overlaps_with

MM = 1e-3


def _rot(yaw: float, u: float, v: float) -> tuple[float, float]:
    """A box-local offset (u forward, v right) in the world frame."""
    return u * math.cos(yaw) - v * math.sin(yaw), u * math.sin(yaw) + v * math.cos(yaw)


def _both_orders(a, b) -> bool:
    """The answer, checked to be symmetric in a and b and to match the batched kernel."""
    ab, ba = boxes_overlap(*a, *b), boxes_overlap(*b, *a)
    assert ab == ba
    arrays = [np.array([a[k], b[k]], dtype=float) for k in range(5)]
    pairs = overlapping_pairs(*arrays)
    assert pairs.tolist() == ([[0, 1]] if ab else [])
    return ab


def test_identical_boxes_overlap():
    box = (3.0, -2.0, 0.7, 2.3, 0.95)
    assert _both_orders(box, box)


def test_separated_along_x():
    a = (0.0, 0.0, 0.0, 2.0, 1.0)
    assert not _both_orders(a, (4.0 + MM, 0.0, 0.0, 2.0, 1.0))
    assert _both_orders(a, (4.0 - MM, 0.0, 0.0, 2.0, 1.0))


def test_touching_edges_and_corners_count_as_overlap():
    a = (0.0, 0.0, 0.0, 2.0, 1.0)
    assert _both_orders(a, (4.0, 0.0, 0.0, 2.0, 1.0))  # face to face
    assert _both_orders(a, (0.0, 2.0, 0.0, 2.0, 1.0))  # side to side
    assert _both_orders(a, (4.0, 2.0, 0.0, 2.0, 1.0))  # corner to corner, one point in common
    assert not _both_orders(a, (4.0 + MM, 2.0, 0.0, 2.0, 1.0))
    assert not _both_orders(a, (4.0, 2.0 + MM, 0.0, 2.0, 1.0))


def test_separated_only_along_a_rotated_axis():
    """Two parallel planks at 45 degrees, 0.2 m apart side by side: their axis-aligned
    bounds overlap by metres, and only the planks' own normal separates them."""
    yaw = math.pi / 4
    a = (0.0, 0.0, yaw, 3.0, 0.5)
    ox, oy = _rot(yaw, 0.0, 1.2)  # 1.2 m to the right of a: a gap of 1.2 - 2 * 0.5
    b = (ox, oy, yaw, 3.0, 0.5)
    reach = 3.0 * math.cos(yaw) + 0.5 * math.sin(yaw)  # half size of each axis-aligned bound
    assert abs(ox) < 2 * reach and abs(oy) < 2 * reach  # the bounds overlap
    assert not _both_orders(a, b)
    ox, oy = _rot(yaw, 0.0, 1.0 - MM)
    assert _both_orders(a, (ox, oy, yaw, 3.0, 0.5))
    # two diamonds (squares at 45 degrees) along the diagonal: the gap along (1, 1) is
    # (4 - 2 * sqrt(2)) / sqrt(2) = 0.83 m, yet the bounds overlap by 0.83 m on each axis
    assert not _both_orders((0.0, 0.0, yaw, 1.0, 1.0), (2.0, 2.0, yaw, 1.0, 1.0))


@pytest.mark.parametrize("yaw_b", [0.2, -0.35, 1.0])
def test_rotated_corner_to_corner_one_mm(yaw_b):
    """B's rear-left corner meets A's front-right corner (2, 1) from the diagonal, its
    edges leaving the corner away from A; 1 mm out along the diagonal they do not touch,
    1 mm in they do."""
    a = (0.0, 0.0, 0.0, 2.0, 1.0)
    hl, hw = 1.5, 0.8
    diag = (math.sqrt(0.5), math.sqrt(0.5))
    for gap, expected in ((MM, False), (-MM, True)):
        corner = (2.0 + gap * diag[0], 1.0 + gap * diag[1])
        # B's rear-left corner is at local (-hl, -hw): its centre lies at corner - R(yaw) (-hl, -hw)
        cx, cy = _rot(yaw_b, -hl, -hw)
        b = (corner[0] - cx, corner[1] - cy, yaw_b, hl, hw)
        assert _both_orders(a, b) is expected, (gap, yaw_b)


def test_rotated_vertex_to_edge_one_mm():
    """A diamond's left vertex approaching the middle of A's front face."""
    a = (0.0, 0.0, 0.0, 2.0, 1.0)
    for gap, expected in ((MM, False), (-MM, True)):
        b = (2.0 + math.sqrt(2.0) + gap, 0.5, math.pi / 4, 1.0, 1.0)
        assert _both_orders(a, b) is expected


def test_one_box_inside_another():
    big = (10.0, 5.0, 0.4, 6.0, 3.0)
    small = (10.5, 5.2, -1.1, 0.5, 0.2)
    assert _both_orders(big, small)


def test_t_bone_without_any_corner_inside():
    """A long thin bar through a square: no corner of either box lies inside the other,
    so a corner-in-polygon test would miss it; the separating-axis test does not."""
    square = (0.0, 0.0, 0.3, 1.0, 1.0)
    bar = (0.0, 0.0, 0.3 + math.pi / 2, 5.0, 0.1)
    assert _both_orders(square, bar)
    ox, oy = _rot(0.3, 1.0 + 0.1 + MM, 0.0)  # slid forward until it just clears the front face
    assert not _both_orders(square, (ox, oy, 0.3 + math.pi / 2, 5.0, 0.1))


def test_nan_boxes_overlap_nothing():
    a = (0.0, 0.0, 0.0, 2.0, 1.0)
    assert not boxes_overlap(*a, math.nan, 0.0, 0.0, 2.0, 1.0)
    assert not boxes_overlap(*a, 0.0, 0.0, math.nan, 2.0, 1.0)
    x = np.array([0.0, math.nan, 1.0, math.nan])
    zeros, ones = np.zeros(4), np.ones(4)
    assert overlapping_pairs(x, zeros, zeros, ones, ones).tolist() == [[0, 2]]


def _random_boxes(rng, n, spread):
    x = rng.uniform(-spread, spread, n)
    y = rng.uniform(-spread, spread, n)
    yaw = rng.uniform(-math.pi, math.pi, n)
    half_len = rng.uniform(0.2, 5.0, n)
    half_wid = rng.uniform(0.1, 1.5, n)
    return x, y, yaw, half_len, half_wid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlapping_pairs_matches_pairwise(seed):
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 200, 60.0)
    expected = [
        [i, j]
        for i in range(200)
        for j in range(i + 1, 200)
        if boxes_overlap(*(b[i] for b in boxes), *(b[j] for b in boxes))
    ]
    got = overlapping_pairs(*boxes)
    assert got.dtype == np.int64 and got.shape == (len(expected), 2)
    assert got.tolist() == expected
    assert 50 < len(expected) < 2000  # the case is neither empty nor saturated
    # more pairs than the initial buffer (2 N) when crowded
    crowded = _random_boxes(rng, 100, 8.0)
    pairs = overlapping_pairs(*crowded)
    assert len(pairs) > 200
    assert all(boxes_overlap(*(b[i] for b in crowded), *(b[j] for b in crowded)) for i, j in pairs)


def test_overlapping_pairs_edge_sizes():
    empty = np.zeros(0)
    assert overlapping_pairs(empty, empty, empty, empty, empty).shape == (0, 2)
    one = np.ones(1)
    assert overlapping_pairs(one, one, one, one, one).shape == (0, 2)
    # ties everywhere: five identical boxes, every pair, in order
    five = np.ones(5)
    assert overlapping_pairs(five, five, five, five, five).tolist() == [
        [i, j] for i in range(5) for j in range(i + 1, 5)
    ]


def test_overlaps_with_index_and_box():
    rng = np.random.default_rng(5)
    boxes = _random_boxes(rng, 60, 30.0)
    pairs = overlapping_pairs(*boxes)
    for i in (0, 17, 59):
        expected = sorted({int(j) for p, q in pairs for j in (p, q) if i in (p, q)} - {i})
        got = overlaps_with(i, *boxes)
        assert got.dtype == np.int64 and got.tolist() == expected
        # the same box given by value also finds itself
        box = tuple(b[i] for b in boxes)
        assert overlaps_with(box, *boxes).tolist() == sorted([*expected, i])
    assert overlaps_with(np.int64(3), *boxes).tolist() == overlaps_with(3, *boxes).tolist()
    with pytest.raises(IndexError):
        overlaps_with(60, *boxes)
    with pytest.raises(ValueError):
        overlaps_with((0.0, 0.0, 0.0), *boxes)
