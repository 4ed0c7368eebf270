"""Collisions of oriented boxes in the ground plane (2-D separating axis theorem).

A box is its centre ``(x, y)`` (m, CARLA frame), ``yaw`` (rad) and its half length
(along the heading) and half width, as :class:`sim.state.Actors` reports them.

Boxes are **closed** sets: boxes that only touch (an edge or a corner in common, zero
area of overlap) **do** overlap. A bumper touching a bumper is a collision, and a
contact is never missed by rounding the wrong way; in return, the caller keeps the
boxes it does not want to collide (parked cars in a row) at least a few millimetres
apart. Boxes with a NaN coordinate overlap nothing.

:func:`overlapping_pairs` finds every overlapping pair among N boxes with a sweep
along x over the bounding circles (radius ``hypot(half_len, half_wid)``), a circle
test, then the exact separating-axis test; it costs a few microseconds for ~50
actors. All functions are numba kernels or thin wrappers around them.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["argsort", "boxes_overlap", "overlapping_box", "overlapping_pairs", "overlaps_with"]


@numba.njit(cache=True)
def _sat(ax, ay, ca, sa, ahl, ahw, bx, by, cb, sb, bhl, bhw) -> bool:
    """Separating-axis test with the boxes' headings given as (cos, sin)."""
    tx, ty = bx - ax, by - ay
    # |cos| and |sin| of the relative yaw: the projections of one box's axes on the other's
    c = abs(ca * cb + sa * sb)
    s = abs(ca * sb - sa * cb)
    # the four candidate axes: a's heading and its normal, then b's; overlap needs all four
    return (
        abs(tx * ca + ty * sa) <= ahl + bhl * c + bhw * s
        and abs(-tx * sa + ty * ca) <= ahw + bhl * s + bhw * c
        and abs(tx * cb + ty * sb) <= bhl + ahl * c + ahw * s
        and abs(-tx * sb + ty * cb) <= bhw + ahl * s + ahw * c
    )


@numba.njit(cache=True)
def argsort(keys: np.ndarray) -> np.ndarray:
    """Indices that sort ``keys`` (float64) ascending: a Shell sort, which numba compiles
    in a fraction of the time ``np.argsort`` takes and which is as fast at these sizes."""
    n = keys.shape[0]
    order = np.arange(n)
    gap = 1
    while gap < n // 3:
        gap = 3 * gap + 1  # Knuth's gaps 1, 4, 13, 40, ...
    while gap > 0:
        for i in range(gap, n):
            item = order[i]
            key = keys[item]
            j = i
            while j >= gap and keys[order[j - gap]] > key:
                order[j] = order[j - gap]
                j -= gap
            order[j] = item
        gap //= 3
    return order


@numba.njit(cache=True)
def boxes_overlap(
    ax: float,
    ay: float,
    ayaw: float,
    a_half_len: float,
    a_half_wid: float,
    bx: float,
    by: float,
    byaw: float,
    b_half_len: float,
    b_half_wid: float,
) -> bool:
    """Whether box a and box b overlap (touching counts; see the module docstring)."""
    return _sat(
        ax, ay, math.cos(ayaw), math.sin(ayaw), a_half_len, a_half_wid,
        bx, by, math.cos(byaw), math.sin(byaw), b_half_len, b_half_wid,
    )  # fmt: skip


@numba.njit(cache=True)
def overlapping_pairs(
    x: np.ndarray, y: np.ndarray, yaw: np.ndarray, half_len: np.ndarray, half_wid: np.ndarray
) -> np.ndarray:
    """Every overlapping pair ``(i, j)``, ``i < j``, among N boxes, as a (K, 2) int64 array.

    Inputs are 1-D float arrays of length N. Rows are sorted by ``i`` then ``j``, so the
    result does not depend on how the boxes lie.
    """
    n = x.shape[0]
    radius = np.empty(n)
    low = np.empty(n)
    for i in range(n):
        radius[i] = math.sqrt(half_len[i] * half_len[i] + half_wid[i] * half_wid[i])
        low[i] = x[i] - radius[i]
        if math.isnan(low[i]) or math.isnan(y[i]):
            low[i] = np.inf  # sorted last; a NaN box overlaps nothing
    order = argsort(low)
    pairs = np.empty((max(16, 2 * n), 2), np.int64)
    k = 0
    for a in range(n):
        i = order[a]
        high = x[i] + radius[i]
        for b in range(a + 1, n):
            j = order[b]
            if low[j] > high:
                break  # sorted by low: no later box reaches back to box i
            dx, dy, reach = x[j] - x[i], y[j] - y[i], radius[i] + radius[j]
            if dx * dx + dy * dy > reach * reach:
                continue
            # cos and sin only here: few pairs get past the circle test
            if not _sat(
                x[i], y[i], math.cos(yaw[i]), math.sin(yaw[i]), half_len[i], half_wid[i],
                x[j], y[j], math.cos(yaw[j]), math.sin(yaw[j]), half_len[j], half_wid[j],
            ):  # fmt: skip
                continue
            if k == pairs.shape[0]:
                grown = np.empty((2 * k, 2), np.int64)
                for p in range(k):  # a loop: slice assignment takes numba seconds to compile
                    grown[p, 0], grown[p, 1] = pairs[p, 0], pairs[p, 1]
                pairs = grown
            pairs[k, 0], pairs[k, 1] = min(i, j), max(i, j)
            k += 1
    keys = np.empty(k)
    for p in range(k):
        keys[p] = pairs[p, 0] * n + pairs[p, 1]  # exact in float64 below 2^53
    out = np.empty((k, 2), np.int64)
    for p, q in enumerate(argsort(keys)):
        out[p, 0], out[p, 1] = pairs[q, 0], pairs[q, 1]
    return out


@numba.njit(cache=True)
def overlapping_box(bx, by, byaw, bhl, bhw, x, y, yaw, half_len, half_wid, skip):
    """Indices (ascending, int64) of the N boxes that overlap the box ``(bx, by, byaw,
    bhl, bhw)``, leaving out box ``skip`` (-1: none): :func:`overlaps_with` as a kernel,
    for compiled callers."""
    cb, sb = math.cos(byaw), math.sin(byaw)
    rb = math.hypot(bhl, bhw)
    hits = np.empty(x.shape[0], np.int64)
    k = 0
    for j in range(x.shape[0]):
        if j == skip:
            continue
        dx, dy, reach = x[j] - bx, y[j] - by, rb + math.hypot(half_len[j], half_wid[j])
        if not dx * dx + dy * dy <= reach * reach:
            continue
        if _sat(
            bx, by, cb, sb, bhl, bhw,
            x[j], y[j], math.cos(yaw[j]), math.sin(yaw[j]), half_len[j], half_wid[j],
        ):  # fmt: skip
            hits[k] = j
            k += 1
    return hits[:k].copy()


def overlaps_with(
    query: int | tuple[float, float, float, float, float],
    x: np.ndarray,
    y: np.ndarray,
    yaw: np.ndarray,
    half_len: np.ndarray,
    half_wid: np.ndarray,
) -> np.ndarray:
    """Indices (ascending, int64) of the N boxes that overlap ``query``.

    ``query`` is either the index of one of the N boxes (it is then left out of the
    answer) or a box of its own, ``(x, y, yaw, half_len, half_wid)``: "what does the
    ego touch" with the ego as index 0 of the world's arrays, or as a separate box.
    """
    if isinstance(query, int | np.integer):
        i = int(query)
        if not 0 <= i < len(x):
            raise IndexError(f"box index {i} out of range for {len(x)} boxes")
        box = (x[i], y[i], yaw[i], half_len[i], half_wid[i])
        skip = i
    else:
        box = tuple(float(v) for v in query)
        if len(box) != 5:
            raise ValueError(f"a box is (x, y, yaw, half_len, half_wid), got {len(box)} numbers")
        skip = -1
    return overlapping_box(*(float(v) for v in box), x, y, yaw, half_len, half_wid, skip)
