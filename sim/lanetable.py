"""Driving lanes as flat arrays, for compiled per-tick code.

A :class:`LaneTable` numbers the lanes of a :class:`RoadMap` 0..L-1 and packs their
centre lines into concatenated arrays (CSR-style offsets), so numba kernels can
look up a pose by (lane, s) and follow successors without Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.maps.roadmap import LaneKey, RoadMap

__all__ = ["LaneTable", "lane_pose", "lane_z", "pose_on_segment", "segment_index", "segment_index_near"]


@dataclass(frozen=True)
class LaneTable:
    """Flat lane arrays. Point arrays are indexed ``pt_off[lane]:pt_off[lane + 1]``; ``s``
    never decreases along a lane."""

    keys: tuple[LaneKey, ...]
    index: dict[LaneKey, int]
    pt_off: np.ndarray  # (L+1,) int64
    xy: np.ndarray  # (P, 2) centre-line points
    yaw: np.ndarray  # (P,)
    z: np.ndarray  # (P,) height (m): bridges cross roads without meeting them
    s: np.ndarray  # (P,) distance along the lane
    width: np.ndarray  # (P,)
    length: np.ndarray  # (L,)
    speed_limit: np.ndarray  # (L,) m/s
    junction: np.ndarray  # (L,) int64, -1 outside junctions
    succ_off: np.ndarray  # (L+1,) int64
    succ: np.ndarray  # (E,) int64

    @classmethod
    def from_road_map(cls, road_map: RoadMap) -> LaneTable:
        keys = tuple(road_map.lanes)
        index = {k: i for i, k in enumerate(keys)}
        lanes = [road_map.lanes[k] for k in keys]
        counts = np.array([len(ln.s_m) for ln in lanes])
        pt_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        succ_lists = [[index[s] for s in ln.successors if s in index] for ln in lanes]
        succ_off = np.concatenate([[0], np.cumsum([len(s) for s in succ_lists])]).astype(np.int64)
        succ = np.array([i for lst in succ_lists for i in lst], dtype=np.int64)
        return cls(
            keys=keys,
            index=index,
            pt_off=pt_off,
            xy=np.ascontiguousarray(np.concatenate([ln.xyz_m[:, :2] for ln in lanes])),
            yaw=np.concatenate([ln.yaw_rad for ln in lanes]),
            z=np.concatenate([ln.xyz_m[:, 2] for ln in lanes]),
            s=np.concatenate([ln.s_m for ln in lanes]),
            width=np.concatenate([ln.width_m for ln in lanes]),
            length=np.array([ln.length_m for ln in lanes]),
            speed_limit=np.array([ln.speed_limit_mps for ln in lanes]),
            junction=np.array([ln.junction_id for ln in lanes], dtype=np.int64),
            succ_off=succ_off,
            succ=succ,
        )

    def __len__(self) -> int:
        return len(self.keys)

    def pose(self, lane: int, s_m: float) -> tuple[float, float, float]:
        """(x, y, yaw) on the centre line of ``lane`` at ``s_m`` (clamped to the lane)."""
        return lane_pose(self.pt_off, self.xy, self.yaw, self.s, lane, s_m)


@numba.njit(cache=True)
def segment_index(s, lo, hi, s_m):
    """Index ``a`` in ``[lo, hi - 1]`` of the polyline segment ``s[a] <= s_m < s[a + 1]``
    (clamped to the first and last segment), by bisection over the sorted ``s[lo:hi + 1]``."""
    if hi <= lo:
        return lo
    a, b = lo, hi
    while b - a > 1:
        m = (a + b) // 2
        if s[m] <= s_m:
            a = m
        else:
            b = m
    return a


@numba.njit(cache=True)
def segment_index_near(s, lo, hi, s_m, hint):
    """:func:`segment_index` by a walk from point ``hint`` (any index; a near one makes
    it fast and touches only the points in between): the same answer, as ``s`` never
    decreases along a lane."""
    if hi <= lo or s_m != s_m:  # a single point, or NaN (which bisects to lo)
        return lo
    a = min(max(hint, lo), hi - 1)
    if a > lo and s[a] > s_m:
        while a > lo and s[a] > s_m:
            a -= 1
    else:
        while a + 1 < hi and s[a + 1] <= s_m:
            a += 1
    return a


@numba.njit(cache=True)
def lane_pose(pt_off, xy, yaw, s, lane, s_m):
    """(x, y, yaw) at ``s_m`` along ``lane``: bisection, then linear interpolation."""
    lo = pt_off[lane]
    hi = pt_off[lane + 1] - 1
    if hi <= lo or s_m <= s[lo] or s_m >= s[hi]:
        return pose_on_segment(xy, yaw, s, lo, hi, s_m, lo)
    return pose_on_segment(xy, yaw, s, lo, hi, s_m, segment_index(s, lo, hi, s_m))


@numba.njit(cache=True)
def pose_on_segment(xy, yaw, s, lo, hi, s_m, a):
    """(x, y, yaw) at ``s_m`` on the lane of points ``lo..hi``, within segment ``a``
    (:func:`segment_index`); the end points beyond the lane's ends."""
    if hi <= lo or s_m <= s[lo]:
        return xy[lo, 0], xy[lo, 1], yaw[lo]
    if s_m >= s[hi]:
        return xy[hi, 0], xy[hi, 1], yaw[hi]
    b = a + 1
    ds = s[b] - s[a]
    t = 0.0 if ds <= 0.0 else (s_m - s[a]) / ds
    dyaw = yaw[b] - yaw[a]
    if dyaw > np.pi:
        dyaw -= 2.0 * np.pi
    elif dyaw < -np.pi:
        dyaw += 2.0 * np.pi
    return xy[a, 0] + t * (xy[b, 0] - xy[a, 0]), xy[a, 1] + t * (xy[b, 1] - xy[a, 1]), yaw[a] + t * dyaw


@numba.njit(cache=True)
def lane_z(pt_off, z, s, lane, s_m):
    """Height (m) of ``lane`` at ``s_m`` (the centre-line point at or before it)."""
    return z[segment_index(s, pt_off[lane], pt_off[lane + 1] - 1, s_m)]
