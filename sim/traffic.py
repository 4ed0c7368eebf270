"""NPC vehicle traffic: lane following on random routes, IDM car following, signals,
stop signs and first-come-first-served yielding at junctions.

NPC vehicles are lane-locked: each holds a lane, a distance ``s`` along it and a
short random path of the lanes it will take next. Per tick one compiled kernel
(:func:`_traffic_step`) finds every NPC's nearest constraint ahead - the leader on
its path (another NPC or the ego), a walker in front, or the stop line when its
light is red or amber, its stop sign is not yet served, or its junction is not
free - turns it into an IDM acceleration and advances it.

Junction priority rule (unsignalled junctions, and every junction as a safety net):
a vehicle enters a junction connecting lane only after it reserves it, and it may
reserve it only when it is the first vehicle before the stop line, no vehicle is on
or has reserved a conflicting connecting lane (crossing or merging, from
:mod:`sim.signals`), the ego is neither on nor about to enter a conflicting lane, and
the exit lane has room for it. Reservations are granted in tick order, then by
NPC index, so the first to arrive goes first; they are released when the vehicle
leaves the junction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from sim.collision import argsort
from sim.errors import LoopdriveError
from sim.idm import IDM_COLUMNS, IDMParams, idm_accel_one
from sim.lanetable import LaneTable, lane_z, pose_on_segment, segment_index_near
from sim.scenario import TrafficConfig
from sim.state import ActorType, LightState
from sim.vehicle import VEHICLE_PARAMS

__all__ = ["Traffic", "JunctionLanes", "PATH_LANES"]

#: lanes ahead each NPC has chosen (its current lane excluded)
PATH_LANES = 8
#: actors further apart in height (m) are on different levels (a bridge and the road below)
LEVEL_M = 2.5
#: how far ahead (m) of its front NPCs look for leaders on any lane
NEAR_AHEAD_M = 10.0
NEAR_AHEAD_MAX_M = 40.0
#: how far ahead (m) NPCs look for leaders and stop lines
LOOKAHEAD_M = 120.0
#: NPCs ask for their junction lane this far (m) beyond their comfortable stopping distance
REQUEST_MARGIN_M = 6.0
_RED, _YELLOW, _STOP = int(LightState.RED), int(LightState.YELLOW), int(LightState.STOP)


@dataclass(frozen=True)
class JunctionLanes:
    """Junction connecting lanes numbered 0..J-1 and which pairs conflict."""

    jl_index: np.ndarray  # (L,) int64: lane -> junction-lane number, -1 outside junctions
    conflict: np.ndarray  # (J, J) bool

    @classmethod
    def none(cls, lane_count: int) -> JunctionLanes:
        return cls(np.full(lane_count, -1, np.int64), np.zeros((0, 0), np.bool_))


#: the NPC drivers' intelligent-driver-model parameters (sim.idm); the hard braking
#: limit of each NPC is set from its vehicle type
NPC_IDM = IDMParams(time_headway_s=1.2, min_gap_m=2.5, max_accel_mps2=1.5, comfort_decel_mps2=2.5)
_IDM_B = IDM_COLUMNS.index("comfort_decel_mps2")
_IDM_B_MAX = IDM_COLUMNS.index("max_brake_mps2")
#: NPC types and the vehicle parameters that size them (sim.vehicle)
NPC_TYPES = {ActorType.CAR: "car", ActorType.TRUCK: "truck", ActorType.BICYCLE: "bicycle"}
#: lateral acceleration (m/s^2) NPCs accept in curves
LATERAL_ACCEL_MPS2 = 2.5

#: the per-NPC arrays of :class:`Traffic` live as the rows of three blocks (floats, ints,
#: flags): one contiguous piece of memory each, and three arguments for the tick kernel
#: instead of twenty. Each row is also an attribute of that name (a view).
FLOAT_ROWS = (
    "s", "speed", "accel", "desired", "speed_cap", "half_len", "half_wid", "height",
    "x", "y", "z", "yaw", "accel_override", "offset_m",
)  # fmt: skip
INT_ROWS = ("lane", "reserved", "seg")
FLAG_ROWS = ("stop_served", "dead", "parked", "hidden", "ignore_rules")
_S, _SPEED, _ACCEL, _DESIRED, _SPEED_CAP, _HALF_LEN, _HALF_WID, _HEIGHT = range(8)
_X, _Y, _Z, _YAW, _ACCEL_OVERRIDE, _OFFSET = range(8, 14)
_LANE, _RESERVED, _SEG = range(3)
_STOP_SERVED, _DEAD, _PARKED, _HIDDEN, _IGNORE_RULES = range(5)


@numba.njit(cache=True)
def _splitmix(state):
    """Counter-based random numbers (deterministic per NPC, no global generator)."""
    z = (state + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    state = z
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return state, z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _pick_successor(succ_off, succ, lane, rng_state, i):
    n = succ_off[lane + 1] - succ_off[lane]
    if n <= 0:
        return -1
    rng_state[i], r = _splitmix(rng_state[i])
    return succ[succ_off[lane] + np.int64(r % np.uint64(n))]


@numba.njit(cache=True)
def _chain_by_lane(lane, first, after):
    """Chain the vehicles of each lane in index order: ``first[l]`` is the first vehicle
    on lane l (-1: none), ``after[j]`` the one after j. ``first`` stays allocated between
    ticks, all -1: :func:`_unchain` clears what this set."""
    for j in range(lane.shape[0] - 1, -1, -1):
        after[j] = first[lane[j]]
        first[lane[j]] = j


@numba.njit(cache=True)
def _unchain(lane, first):
    for j in range(lane.shape[0]):
        first[lane[j]] = -1


@numba.njit(cache=True)
def _leader_gap(i, lane, s, speed, half_len, length, path, ego, parked, first, after):
    """Bumper-to-bumper gap (m) and speed of the nearest vehicle ahead on i's path
    (parked vehicles are not lane leaders: :func:`_near_ahead` sees them where they stand).
    ``first``/``after``: the vehicles of each lane (:func:`_chain_by_lane`)."""
    best, best_v = np.inf, 0.0
    ego_half_len, ego_speed = ego[2], ego[3]
    ahead = 0.0  # distance from i to the start of the lane being scanned
    cur = lane[i]
    for k in range(-1, path.shape[1]):
        if k >= 0:
            ahead += length[cur] if k == 0 else length[path[i, k - 1]]
            cur = path[i, k]
            if cur < 0 or ahead - s[i] > LOOKAHEAD_M:
                break
        base = ahead - s[i]
        j = first[cur]
        while j >= 0:  # the vehicles on lane cur, in index order
            if j != i and not parked[j] and (k >= 0 or s[j] > s[i]):
                gap = base + s[j] - half_len[i] - half_len[j]
                if gap < best:
                    best, best_v = gap, speed[j]
            j = after[j]
        for slot in (0, 9):  # the ego's lane, and the lane under its front (a lane change)
            if int(ego[slot]) == cur and (k >= 0 or ego[slot + 1] > s[i]):
                gap = base + ego[slot + 1] - half_len[i] - ego_half_len
                if gap < best:
                    best, best_v = gap, ego_speed
        if best < np.inf:
            break
    return best, best_v


@numba.njit(cache=True)
def _near_ahead(i, x, y, z, yaw, speed, half_len, half_wid, ego, comfort_decel, by_x, x_sorted, max_half):
    """Gap (m) and speed of a vehicle just ahead of i, headed within 60 degrees of it,
    whatever lane it is on: the leader of two paths that diverge from one lane (or
    merge) until they really part. Covers up to the stopping distance (10-40 m), where
    lanes curve too little to put a neighbour-lane vehicle into the corridor.

    Only the vehicles whose x lies within the corridor's reach are looked at: ``by_x``
    orders the vehicles by x (``x_sorted``: their x in that order; -1 when an x is NaN:
    all are looked at), ``max_half`` is the largest half length and half width. Of equal
    gaps the ego's, then the lowest index's counts, as in a scan of all in index order."""
    best, best_v, best_j = np.inf, 0.0, -2
    # as far as the comfortable stopping distance (paths that split from one lane stay
    # side by side for a while: a vehicle stopped just past the split is a leader)
    reach = min(NEAR_AHEAD_MAX_M, max(NEAR_AHEAD_M, speed[i] * speed[i] / (2.0 * comfort_decel) + 5.0))
    c, sn = np.cos(yaw[i]), np.sin(yaw[i])
    lo, hi = 0, x.shape[0]
    if x_sorted.shape[0] == x.shape[0]:
        # a vehicle in the corridor is at most this far from i (its along and across bounds)
        bound = math.hypot(reach + half_len[i] + max_half[0], half_wid[i] + max_half[1] + 0.3) + 1e-6
        lo = np.searchsorted(x_sorted, x[i] - bound, side="left")
        hi = np.searchsorted(x_sorted, x[i] + bound, side="right")
    for p in range(lo - 1, hi):
        j = -1 if p < lo else (by_x[p] if x_sorted.shape[0] == x.shape[0] else p)
        if j == i:
            continue
        if j < 0:  # the ego: [lane, s, half_len, speed, x, y, yaw, half_wid, z]
            ox, oy, oz, oyaw, ohl, ohw, ov = ego[4], ego[5], ego[8], ego[6], ego[2], ego[7], ego[3]
        else:
            ox, oy, oz, oyaw, ohl, ohw, ov = x[j], y[j], z[j], yaw[j], half_len[j], half_wid[j], speed[j]
        if abs(oz - z[i]) > LEVEL_M:
            continue
        dx, dy = ox - x[i], oy - y[i]
        along = dx * c + dy * sn
        if along <= 0.0 or along > reach + half_len[i] + ohl:
            continue
        if abs(-dx * sn + dy * c) > half_wid[i] + ohw + 0.3 or np.cos(oyaw - yaw[i]) < 0.5:
            continue
        gap = along - half_len[i] - ohl
        if gap < best or (gap == best and j < best_j):
            best, best_v, best_j = gap, ov, j
    return best, best_v


@numba.njit(cache=True)
def _by_x(x, half_len, half_wid):
    """The vehicles ordered by x and their x in that order (empty when an x is NaN), and
    the largest half length and half width: the index of :func:`_near_ahead`."""
    order = argsort(x)
    x_sorted = np.empty(x.shape[0])
    for p in range(x.shape[0]):
        x_sorted[p] = x[order[p]]
        if math.isnan(x_sorted[p]):
            return order, np.empty(0), np.zeros(2)
    max_half = np.zeros(2)
    for j in range(x.shape[0]):
        max_half[0] = max(max_half[0], half_len[j])
        max_half[1] = max(max_half[1], half_wid[j])
    return order, x_sorted, max_half


@numba.njit(cache=True)
def _walker_on_point(px, py, walkers, radius):
    for w in range(walkers.shape[0]):
        if (walkers[w, 0] - px) ** 2 + (walkers[w, 1] - py) ** 2 < radius * radius:
            return True
    return False


@numba.njit(cache=True)
def _walker_gap(i, lane, s, path, pt_off, pxy, ps, length, walkers, half_len, half_wid, reach):
    """Distance (m) along i's path to the first walker on it (within its half width plus
    1 m of the centre line), looking ``reach`` m ahead; inf when none. Following the
    path, not a straight ray, catches walkers on the far side of a turn."""
    if walkers.shape[0] == 0:
        return np.inf
    base = -s[i]
    cur = lane[i]
    for k in range(-1, path.shape[1]):
        if k >= 0:
            base += length[cur]
            cur = path[i, k]
            if cur < 0:
                break
        for p in range(pt_off[cur], pt_off[cur + 1]):
            along = base + ps[p]
            if along < 0.0:
                continue
            if along > reach:
                return np.inf
            if _walker_on_point(pxy[p, 0], pxy[p, 1], walkers, half_wid[i] + 1.0):
                return along - half_len[i] - 1.2
    return np.inf


@numba.njit(cache=True)
def _claim(i, lane, path, reserved, jl_index, out):
    """Junction lanes vehicle i is on or holds, through to the junction exit (-1 padded)."""
    out[:] = -1
    n = 0
    if jl_index[lane[i]] >= 0:
        out[n] = jl_index[lane[i]]
        n += 1
    elif reserved[i] < 0:
        return 0
    for k in range(path.shape[1]):
        nxt = path[i, k]
        if nxt < 0 or n >= out.shape[0]:
            break
        if jl_index[nxt] < 0:
            if n > 0:
                break  # left the junction
            continue  # short lanes before the reserved junction lane
        out[n] = jl_index[nxt]
        n += 1
    return n


@numba.njit(cache=True)
def _claims_conflict(a, b, conflict):
    for x in a:
        if x < 0:
            break
        for y in b:
            if y < 0:
                break
            if conflict[x, y]:
                return True
    return False


@numba.njit(cache=True)
def _path_claim(i, k0, path, jl_index):
    """The junction lanes of i's path from ``path[i, k0]`` to the junction exit (-1 padded)."""
    mine = np.full(path.shape[1] + 1, -1, np.int64)
    for n, k in enumerate(range(k0, path.shape[1])):
        nxt = path[i, k]
        if nxt < 0 or jl_index[nxt] < 0:
            break
        mine[n] = jl_index[nxt]
    return mine


@numba.njit(cache=True)
def _ego_conflicts(i, k0, path, jl_index, conflict, ego_claim):
    return _claims_conflict(_path_claim(i, k0, path, jl_index), ego_claim, conflict)


@numba.njit(cache=True)
def _junction_free(i, k0, lane, path, reserved, jl_index, conflict, ego_claim, parked):
    """True when i's junction lanes (``path[i, k0:]`` through to the exit) conflict with
    no lane that another vehicle or the ego is on or holds."""
    mine = _path_claim(i, k0, path, jl_index)
    if _claims_conflict(mine, ego_claim, conflict):
        return False
    theirs = np.full(path.shape[1] + 1, -1, np.int64)
    for j in range(lane.shape[0]):
        if (
            j != i
            and not parked[j]
            and _claim(j, lane, path, reserved, jl_index, theirs) > 0
            and _claims_conflict(mine, theirs, conflict)
        ):
            return False
    return True


@numba.njit(cache=True)
def _exit_has_room(i, exit_lane, lane, s, half_len, ego, parked):
    if exit_lane < 0:
        return True
    room = 2.0 * half_len[i] + 2.0
    for j in range(lane.shape[0]):
        if j != i and lane[j] == exit_lane and not parked[j] and s[j] - half_len[j] < room:
            return False
    return not (int(ego[0]) == exit_lane and ego[1] - ego[2] < room)


@numba.njit(cache=True)
def _must_stop_for_signal(i, state, to_line, v, stop_served, comfort_decel):
    """Red, amber when there is room to stop, or an unserved stop sign."""
    if state == _RED:
        return True
    if state == _YELLOW:
        return to_line > 0.5 * v * v / (2.0 * comfort_decel)
    if state == _STOP and not stop_served[i]:
        if v < 0.2 and to_line < 3.0:
            stop_served[i] = True  # a full stop at the line: now yield, then go
            return False
        return True
    return False


@numba.njit(cache=True)
def _junction_ahead(i, lane, s, path, length, junction):
    """(k, distance): the next junction i enters is entered on ``path[i, k]``, which
    starts ``distance`` m ahead of i's centre; k = -1 when none lies within the
    look-ahead. Short lanes before a junction are looked through, and a junction
    entered straight from another one (adjacent junctions) counts as a new one."""
    prev = junction[lane[i]]
    dist = length[lane[i]] - s[i]
    for k in range(path.shape[1]):
        nxt = path[i, k]
        if nxt < 0 or dist > LOOKAHEAD_M:
            break
        if junction[nxt] >= 0 and junction[nxt] != prev:
            return k, dist
        prev = junction[nxt]
        dist += length[nxt]
    return -1, np.inf


@numba.njit(cache=True)
def _stop_line_gap(
    i,
    lane,
    s,
    speed,
    half_len,
    length,
    path,
    jl_index,
    junction,
    conflict,
    lane_state,
    reserved,
    stop_served,
    leader_gap,
    ego,
    ego_claim,
    comfort_decel,
    parked,
):
    """Gap (m) from i's front to the stop line when i must stop there; inf when it may go."""
    k, dist = _junction_ahead(i, lane, s, path, length, junction)
    if k < 0:
        return np.inf
    to_line = dist - half_len[i]
    entry = lane[i] if k == 0 else path[i, k - 1]
    if _must_stop_for_signal(i, lane_state[entry], to_line, speed[i], stop_served, comfort_decel):
        reserved[i] = -1  # waiting at a red light must not hold the junction for others
        return to_line
    jl = jl_index[path[i, k]]
    if reserved[i] == jl:
        # granted, not yet inside: the ego (which reserves nothing) may have come in since
        return to_line if _ego_conflicts(i, k, path, jl_index, conflict, ego_claim) else np.inf
    ask_at = speed[i] * speed[i] / (2.0 * comfort_decel) + REQUEST_MARGIN_M
    if to_line > ask_at:
        return np.inf  # too far to ask yet
    if leader_gap < to_line:
        return to_line  # not first in the queue: only the first vehicle may reserve
    exit_lane = path[i, k + 1] if k + 1 < path.shape[1] else -1
    if _junction_free(i, k, lane, path, reserved, jl_index, conflict, ego_claim, parked) and _exit_has_room(
        i, exit_lane, lane, s, half_len, ego, parked
    ):
        reserved[i] = jl
        return np.inf
    return to_line


@numba.njit(cache=True)
def _advance(i, lane, s, path, reserved, stop_served, dead, rng, length, succ_off, succ, jl_index):
    """Move i onto the next lanes of its path once it passes the end of its lane."""
    k_last = path.shape[1] - 1
    while s[i] > length[lane[i]]:
        nxt = path[i, 0]
        if nxt < 0:
            dead[i] = True  # a dead end: the owner respawns it elsewhere
            s[i] = length[lane[i]]
            return
        s[i] -= length[lane[i]]
        lane_before = lane[i]
        lane[i] = nxt
        for k in range(k_last):
            path[i, k] = path[i, k + 1]
        path[i, k_last] = (
            -1 if path[i, k_last - 1] < 0 else _pick_successor(succ_off, succ, path[i, k_last - 1], rng, i)
        )
        stop_served[i] = False
        if jl_index[nxt] >= 0 or jl_index[lane_before] >= 0:
            reserved[i] = jl_index[nxt]  # holds the junction lane it is on; released on exit


@numba.njit(cache=True)
def _desired_speed(i, lane, s, path, desired, speed_cap, curve_speed, speed_limit, length):
    """The speed i aims for: its share of the limit, slowed for curves on this and the next lane."""
    cur = lane[i]
    v0 = min(desired[i] * speed_limit[cur], curve_speed[cur], speed_cap[i])
    nxt = path[i, 0]
    if nxt >= 0 and length[cur] - s[i] < 25.0:
        v0 = min(v0, curve_speed[nxt], desired[i] * speed_limit[nxt])
    return v0


@numba.njit(cache=True)
def _traffic_step(
    fl,
    ints,
    flags,
    path,
    rng,
    idm,
    pt_off,
    pxy,
    pyaw,
    pz,
    ps,
    length,
    speed_limit,
    curve_speed,
    succ_off,
    succ,
    jl_index,
    junction,
    conflict,
    lane_state,
    ego,
    ego_claim,
    walkers,
    dt,
    lane_first,
):
    """One tick of every NPC (see :meth:`Traffic.step`); ``fl``, ``ints``, ``flags``: the
    blocks of :data:`FLOAT_ROWS`, :data:`INT_ROWS` and :data:`FLAG_ROWS`."""
    s, speed, accel, desired, speed_cap = fl[_S], fl[_SPEED], fl[_ACCEL], fl[_DESIRED], fl[_SPEED_CAP]
    half_len, half_wid, x, y, z, yaw = fl[_HALF_LEN], fl[_HALF_WID], fl[_X], fl[_Y], fl[_Z], fl[_YAW]
    accel_override, offset = fl[_ACCEL_OVERRIDE], fl[_OFFSET]
    lane, reserved, seg = ints[_LANE], ints[_RESERVED], ints[_SEG]
    stop_served, dead = flags[_STOP_SERVED], flags[_DEAD]
    parked, ignore_rules = flags[_PARKED], flags[_IGNORE_RULES]
    n = lane.shape[0]
    after = np.empty(n, np.int64)
    _chain_by_lane(lane, lane_first, after)  # lanes do not change until the second loop
    by_x, x_sorted, max_half = _by_x(x, half_len, half_wid)
    for i in range(n):
        if dead[i] or parked[i]:
            accel[i] = 0.0
            continue
        gap, lead_v = _leader_gap(i, lane, s, speed, half_len, length, path, ego, parked, lane_first, after)
        near, near_v = _near_ahead(
            i, x, y, z, yaw, speed, half_len, half_wid, ego, idm[i, _IDM_B], by_x, x_sorted, max_half
        )
        if near < gap:
            gap, lead_v = near, near_v
        line = np.inf
        if not ignore_rules[i]:
            line = _stop_line_gap(
                i,
                lane,
                s,
                speed,
                half_len,
                length,
                path,
                jl_index,
                junction,
                conflict,
                lane_state,
                reserved,
                stop_served,
                gap,
                ego,
                ego_claim,
                idm[i, _IDM_B],
                parked,
            )
        v0 = _desired_speed(i, lane, s, path, desired, speed_cap, curve_speed, speed_limit, length)
        a = idm_accel_one(speed[i], v0, gap, speed[i] - lead_v, idm[i], dt)
        if line < np.inf:
            a = min(a, idm_accel_one(speed[i], v0, line, speed[i], idm[i], dt))
        reach = max(25.0, speed[i] * speed[i] / (2.0 * idm[i, _IDM_B]) + 10.0)
        wgap = _walker_gap(i, lane, s, path, pt_off, pxy, ps, length, walkers, half_len, half_wid, reach)
        if wgap < np.inf:
            a = min(a, idm_accel_one(speed[i], v0, wgap, speed[i], idm[i], dt))
        if not np.isnan(accel_override[i]):
            a = accel_override[i]  # a scripted event drives this one
        accel[i] = a
    _unchain(lane, lane_first)
    for i in range(n):
        if dead[i] or parked[i]:
            continue
        v = max(0.0, speed[i] + accel[i] * dt)
        s[i] += 0.5 * (speed[i] + v) * dt
        speed[i] = v
        _advance(i, lane, s, path, reserved, stop_served, dead, rng, length, succ_off, succ, jl_index)
        lo, hi = pt_off[lane[i]], pt_off[lane[i] + 1] - 1
        seg[i] = segment_index_near(ps, lo, hi, s[i], seg[i])  # a step on from the last tick's
        x[i], y[i], yaw[i] = pose_on_segment(pxy, pyaw, ps, lo, hi, s[i], seg[i])
        z[i] = pz[seg[i]]
        if offset[i] != 0.0:  # scripted: beside its lane (positive: to the right)
            x[i] -= offset[i] * np.sin(yaw[i])
            y[i] += offset[i] * np.cos(yaw[i])


def curve_speeds(table: LaneTable, lateral_accel_mps2: float = LATERAL_ACCEL_MPS2) -> np.ndarray:
    """Per lane, the speed (m/s) at which its tightest bend (over ~3 m) needs the given
    lateral acceleration; 100 m/s for straight lanes."""
    out = np.full(len(table), 100.0)
    for lane in range(len(table)):
        lo, hi = table.pt_off[lane], table.pt_off[lane + 1]
        if hi - lo < 4:
            continue
        yaw = np.unwrap(table.yaw[lo:hi])
        s = table.s[lo:hi]
        step = 3
        dyaw = np.abs(yaw[step:] - yaw[:-step])
        ds = np.maximum(s[step:] - s[:-step], 1e-3)
        kappa = float(np.max(dyaw / ds))
        if kappa > 1e-4:
            out[lane] = min(100.0, math.sqrt(lateral_accel_mps2 / kappa))
    return out


class Traffic:
    """The NPC vehicles of one world (struct of arrays) and their per-tick update.

    ``rng`` seeds spawning and every later random choice (through per-NPC counters),
    so a world built from the same seed replays bit for bit.
    """

    def __init__(
        self,
        table: LaneTable,
        junctions: JunctionLanes,
        config: TrafficConfig,
        rng: np.random.Generator,
        *,
        idm: IDMParams = NPC_IDM,
    ):
        self.table = table
        self.junctions = junctions
        self.config = config
        self.idm_params = idm
        self._rng = rng
        self.curve_speed = curve_speeds(table)
        self._lane_first = np.full(len(table), -1, np.int64)  # the tick kernel's scratch: vehicles by lane
        self._alloc(0)

    def _alloc(self, n: int) -> None:
        self.ids = np.arange(1, n + 1, dtype=np.int64)
        self.type = np.zeros(n, np.int8)
        self.idm = self.idm_params.table(n)
        self.path = np.full((n, PATH_LANES), -1, np.int64)
        self.rng_state = np.zeros(n, np.uint64)
        self._f = np.zeros((len(FLOAT_ROWS), n))
        self._i = np.zeros((len(INT_ROWS), n), np.int64)
        self._b = np.zeros((len(FLAG_ROWS), n), np.bool_)
        self._bind_rows()
        self.desired[:] = 1.0
        self.speed_cap[:] = 40.0
        self.reserved[:] = -1
        self._reset_script()

    def _bind_rows(self) -> None:
        """The rows of the blocks as attributes: ``self.x`` is ``self._f[_X]``, and so on."""
        for block, names in ((self._f, FLOAT_ROWS), (self._i, INT_ROWS), (self._b, FLAG_ROWS)):
            for row, name in zip(block, names, strict=True):
                setattr(self, name, row)

    def _reset_script(self) -> None:
        """The hooks of scripted events (:mod:`sim.events`); all off for ordinary NPCs:
        ``parked`` stands still, not a lane leader (seen where it stands); ``hidden`` not in
        the world yet (parked far away, left out of states); ``ignore_rules`` drives through
        red lights, stop signs, junctions; ``accel_override`` m/s^2 instead of the IDM's
        (NaN: none); ``offset_m`` lateral offset from its lane centre (positive: right)."""
        self.parked[:] = self.hidden[:] = self.ignore_rules[:] = False
        self.accel_override[:] = np.nan
        self.offset_m[:] = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def target_count(self, lane_km: float) -> int:
        c = self.config
        if c.vehicle_count >= 0:
            return c.vehicle_count
        return min(c.max_vehicles, int(round(c.vehicles_per_km * lane_km)))

    def spawn(
        self, count: int, avoid_xy: np.ndarray, avoid_radius_m: float = 20.0, min_spacing_m: float = 10.0
    ):
        """Place ``count`` NPCs on random non-junction lanes, spaced apart and away from
        ``avoid_xy`` (K, 2) (the ego's start). Raises when none fits."""
        self._alloc(count)
        if count == 0:
            return
        t = self.table
        free = np.flatnonzero((t.junction < 0) & (t.length > 12.0))
        if len(free) == 0:
            raise LoopdriveError(
                "traffic: the map has no lane outside junctions long enough to spawn a vehicle on"
            )
        weights = t.length[free] / t.length[free].sum()
        placed: list[tuple[float, float]] = []
        for i in range(count):
            self._draw_type(i)
            for _ in range(60):
                lane = int(self._rng.choice(free, p=weights))
                lo, hi = self.half_len[i] + 1.0, t.length[lane] - self.half_len[i] - 1.0
                if hi <= lo:
                    continue
                s = float(self._rng.uniform(lo, hi))
                x, y, _ = t.pose(lane, s)
                if self._clear(x, y, placed, avoid_xy, avoid_radius_m, min_spacing_m):
                    break
            else:
                self._alloc_keep(i)
                break
            placed.append((x, y))
            self._place(i, lane, s)
        if len(self) == 0 or (self.config.vehicle_count >= 0 and len(self) < count):
            raise LoopdriveError(
                f"traffic: nowhere to spawn {count} vehicles, only {len(self)} fit at {min_spacing_m:.0f} m "
                "spacing away from the ego's start (lower traffic.vehicle_count or use vehicles_per_km)"
            )

    def _clear(self, x, y, placed, avoid_xy, avoid_radius_m, min_spacing_m) -> bool:
        if len(avoid_xy) and np.min(np.hypot(avoid_xy[:, 0] - x, avoid_xy[:, 1] - y)) < avoid_radius_m:
            return False
        return all(math.hypot(px - x, py - y) >= min_spacing_m for px, py in placed)

    def _alloc_keep(self, n: int) -> None:
        """Truncate to the first ``n`` NPCs (when the rest could not be placed)."""
        for name in ("ids", "idm", "type", "path", "rng_state"):
            setattr(self, name, getattr(self, name)[:n].copy())
        self._f, self._i, self._b = (block[:, :n].copy() for block in (self._f, self._i, self._b))
        self._bind_rows()
        self._reset_script()

    def _draw_type(self, i: int) -> None:
        c = self.config
        r = self._rng.random()
        kind = (
            ActorType.TRUCK
            if r < c.truck_share
            else (ActorType.BICYCLE if r < c.truck_share + c.bicycle_share else ActorType.CAR)
        )
        params = VEHICLE_PARAMS[NPC_TYPES[kind]]
        self.type[i] = int(kind)
        self.half_len[i], self.half_wid[i] = params.length_m / 2, params.width_m / 2
        self.height[i] = params.height_m
        self.idm[i, _IDM_B_MAX] = params.max_brake_mps2
        self.idm[i, _IDM_B] = min(self.idm[i, _IDM_B], params.max_brake_mps2)
        self.speed_cap[i] = min(
            params.max_speed_mps, 8.0 if kind == ActorType.BICYCLE else params.max_speed_mps
        )
        self.desired[i] = float(np.clip(self._rng.normal(1.0, c.speed_factor_sigma), 0.7, 1.2))
        self.rng_state[i] = np.uint64(self._rng.integers(0, 2**63))

    def _place(self, i: int, lane: int, s: float) -> None:
        t = self.table
        self.lane[i], self.s[i] = lane, s
        prev = lane
        for k in range(PATH_LANES):
            nxt = self._random_successor(prev)
            self.path[i, k] = nxt
            if nxt < 0:
                break
            prev = nxt
        self.x[i], self.y[i], self.yaw[i] = t.pose(lane, s)
        self.z[i] = lane_z(t.pt_off, t.z, t.s, lane, s)
        self.speed[i] = 0.0
        self.dead[i] = False
        self.reserved[i] = self.junctions.jl_index[lane]

    def _random_successor(self, lane: int) -> int:
        t = self.table
        lo, hi = t.succ_off[lane], t.succ_off[lane + 1]
        return -1 if hi <= lo else int(t.succ[lo + self._rng.integers(hi - lo)])

    #: where hidden vehicles wait, far from any map (each its own spot: they never touch)
    HIDDEN_XY_M = 1.0e7

    def add_scripted(self, kind: ActorType, count: int = 1, *, length_m=None, width_m=None) -> np.ndarray:
        """Append ``count`` hidden, parked vehicles of ``kind`` for a scripted event
        (optionally sized ``length_m`` x ``width_m``); returns their indices. Call before
        the walkers are built (their ids follow the vehicles')."""
        n0 = len(self)
        old = {name: getattr(self, name) for name in ("type", "idm", "path", "rng_state", "_f", "_i", "_b")}
        self._alloc(n0 + count)
        for name, arr in old.items():
            if name.startswith("_"):  # a block: one row per attribute
                getattr(self, name)[:, :n0] = arr
            else:
                getattr(self, name)[:n0] = arr
        params = VEHICLE_PARAMS[NPC_TYPES.get(kind, "car")]
        for i in range(n0, n0 + count):
            self.type[i] = int(kind)
            self.half_len[i] = 0.5 * (length_m or params.length_m)
            self.half_wid[i] = 0.5 * (width_m or params.width_m)
            self.height[i] = params.height_m if kind != ActorType.STATIC else 1.2
            self.idm[i, _IDM_B_MAX] = params.max_brake_mps2
            self.speed_cap[i] = params.max_speed_mps
            self.rng_state[i] = np.uint64(self._rng.integers(0, 2**63))
            self.hide(i)
        return np.arange(n0, n0 + count)

    def hide(self, i: int) -> None:
        """Take vehicle i out of the world (parked far away, left out of states)."""
        self.hidden[i] = self.parked[i] = True
        self.x[i], self.y[i] = self.HIDDEN_XY_M + 100.0 * i, self.HIDDEN_XY_M
        self.speed[i] = 0.0
        self.reserved[i] = -1
        self.path[i] = -1

    def place_on_lane(self, i: int, lane: int, s: float, *, speed_mps: float = 0.0, offset_m: float = 0.0):
        """Put vehicle i on ``lane`` at ``s`` (``offset_m`` to the side), visible; its path
        is drawn at random (a script may overwrite ``path[i]``)."""
        t = self.table
        self._place(i, lane, s)
        self.hidden[i] = self.parked[i] = False
        self.speed[i] = speed_mps
        self.offset_m[i] = offset_m
        if offset_m:
            self.x[i] -= offset_m * math.sin(self.yaw[i])
            self.y[i] += offset_m * math.cos(self.yaw[i])
        self.z[i] = lane_z(t.pt_off, t.z, t.s, lane, s)

    def respawn_dead(self, avoid_xy: np.ndarray) -> None:
        """NPCs that reached a dead end start again elsewhere, away from the ego."""
        if not np.count_nonzero(self.dead):  # the common case, checked cheaply (a quarter of .any()'s cost)
            return
        for i in np.flatnonzero(self.dead & ~self.hidden):
            t = self.table
            free = np.flatnonzero((t.junction < 0) & (t.length > 12.0))
            others = [(self.x[j], self.y[j]) for j in range(len(self)) if j != i and not self.dead[j]]
            for _ in range(60):
                lane = int(self._rng.choice(free))
                s = float(
                    self._rng.uniform(self.half_len[i] + 1.0, max(self.half_len[i] + 1.5, t.length[lane] - 5))
                )
                x, y, _ = t.pose(lane, s)
                if self._clear(x, y, others, avoid_xy, 40.0, 10.0):
                    self._place(i, lane, s)
                    break

    def step(
        self,
        dt_s: float,
        lane_state: np.ndarray,
        ego: np.ndarray,
        ego_claim: np.ndarray,
        walkers_xy: np.ndarray,
    ) -> None:
        """Advance every NPC by ``dt_s``.

        ``lane_state`` (L,) int8 is the LightState controlling each entry lane (-1: none);
        ``ego`` = [lane index or -1, s, half length, speed, x, y, yaw, half width, z,
        second lane or -1, s on it] places the ego on the lanes and in the plane;
        ``ego_claim`` (int64, -1 padded) lists the junction lanes (numbers of
        :class:`JunctionLanes`) the ego is on or about to enter, through to the exit.
        """
        t, j = self.table, self.junctions
        _traffic_step(
            self._f, self._i, self._b, self.path, self.rng_state, self.idm,
            t.pt_off, t.xy, t.yaw, t.z, t.s, t.length, t.speed_limit, self.curve_speed, t.succ_off, t.succ,
            j.jl_index, t.junction, j.conflict,
            lane_state, ego, ego_claim, walkers_xy, dt_s, self._lane_first,
        )  # fmt: skip
