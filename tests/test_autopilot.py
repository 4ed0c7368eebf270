"""The autopilot's search kernels against the plain array formulation of the same rules
(the obstacle corridor, the standing static blocker), bit for bit, on random crowded
scenes around a winding route, with and without a pass shifting the corridor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.autopilot import LEVEL_M, PASS_CLEARANCE_M, Autopilot
from sim.maps.planner import DenseRoute, RoadOption
from sim.state import Actors, ActorType, EgoState, SignalStates, WorldState
from sim.vehicle import VEHICLE_PARAMS


def _winding_route(rng: np.random.Generator, n: int = 300) -> DenseRoute:
    heading = np.cumsum(rng.normal(0.0, 0.08, n))
    xy = np.cumsum(np.c_[np.cos(heading), np.sin(heading)], axis=0)
    s = np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
    cmd = np.full(n, RoadOption.LANEFOLLOW, np.int8)
    return DenseRoute(np.c_[xy, np.zeros(n)], heading, cmd, tuple((0, 0, -1) for _ in range(n)), s)


def _scene(rng: np.random.Generator, route: DenseRoute, i: int) -> WorldState:
    """Actors of every type near the route ahead of point i: some on it, some standing,
    some on another level, with random boxes, headings and velocities."""
    n = int(rng.integers(0, 40))
    at = np.clip(i + rng.integers(-10, 70, n), 0, len(route.s_m) - 1)
    xy = route.xyz_m[at, :2] + rng.normal(0.0, 3.0, (n, 2)) * (rng.random((n, 1)) < 0.7)
    z = rng.choice([0.0, 0.0, 0.0, 1.0, -3.0, 4.0], n)
    types = rng.choice(list(ActorType), n).astype(np.int8)
    vel = rng.normal(0.0, 4.0, (n, 2)) * (rng.random((n, 1)) < 0.7)
    half = np.c_[rng.uniform(0.2, 3.0, n), rng.uniform(0.2, 1.5, n), np.full(n, 0.8)]
    actors = Actors(np.arange(n), types, np.c_[xy, z], rng.uniform(-4.0, 4.0, n), half, vel)
    x, y = route.xyz_m[i, :2] + rng.normal(0.0, 0.5, 2)
    ego = EgoState(
        float(x), float(y), 0.0, float(route.yaw_rad[i]), float(rng.uniform(0, 15)), 0.0, 0.0, 4.6, 1.9
    )
    return WorldState(0, 0.0, ego, actors, SignalStates.empty())


def _obstacle_gap_reference(p: Autopilot, state: WorldState, i: int) -> tuple[float, float]:
    """Autopilot._obstacle_gap as (A, T, M) arrays: every actor, time and corridor point."""
    actors, c, veh = state.actors, p.config, p.vehicle
    if len(actors) == 0:
        return math.inf, 0.0
    j = int(np.searchsorted(p.s, p.s[i] + p._horizon_m(state.ego.speed_mps)))
    pts, yaws, ss = p._path(i, j), p.yaw[i:j], p.s[i:j] - p._s_now
    if len(pts) == 0:
        return math.inf, 0.0
    xy = actors.xyz_m[:, :2]
    outside = np.maximum(np.maximum(pts.min(axis=0) - xy, xy - pts.max(axis=0)), 0.0)
    reach = np.hypot(actors.velocity_mps[:, 0], actors.velocity_mps[:, 1]) * p._times[-1]
    reach += actors.half_extent_m[:, 0] + 0.5 * veh.width_m + c.corridor_margin_m
    level = np.abs(actors.xyz_m[:, 2] - state.ego.z_m) < LEVEL_M
    near = (np.hypot(outside[:, 0], outside[:, 1]) <= reach) & level
    if not near.any():
        return math.inf, 0.0
    pos, vel = actors.xyz_m[near, :2], actors.velocity_mps[near]
    hl, hw, ayaw = actors.half_extent_m[near, 0], actors.half_extent_m[near, 1], actors.yaw_rad[near]
    pred = pos[:, None, :] + vel[:, None, :] * p._times[None, :, None]
    d = np.hypot(pred[..., 0, None] - pts[None, None, :, 0], pred[..., 1, None] - pts[None, None, :, 1])
    rel_yaw = np.abs(np.sin(ayaw[:, None] - yaws[None, :]))
    lateral_extent = hw[:, None] + (hl - hw)[:, None] * rel_yaw
    hit = d < (0.5 * veh.width_m + c.corridor_margin_m + lateral_extent)[:, None, :]
    if not hit.any():
        return math.inf, 0.0
    hit_m = hit.any(axis=1)
    first_m = np.where(hit_m.any(axis=1), np.argmax(hit_m, axis=1), len(pts))
    a = int(np.argmin(first_m))
    m = int(first_m[a])
    along_extent = hl[a] * math.sqrt(max(0.0, 1 - rel_yaw[a, m] ** 2)) + hw[a] * rel_yaw[a, m]
    gap = float(ss[m] - 0.5 * veh.length_m - along_extent)
    lead_v = float(vel[a, 0] * math.cos(yaws[m]) + vel[a, 1] * math.sin(yaws[m]))
    return gap, max(lead_v, 0.0)


def _static_blocker_reference(p: Autopilot, state: WorldState, i: int) -> tuple[float, float, float] | None:
    """Autopilot._static_blocker as a loop over the standing static actors."""
    actors, veh = state.actors, p.vehicle
    static = np.flatnonzero((actors.type == ActorType.STATIC) & (np.hypot(*actors.velocity_mps.T) < 0.2))
    j = int(np.searchsorted(p.s, p._s_now + p.config.scan_m))
    pts, yaws = p.xy[i:j], p.yaw[i:j]
    best = None
    for k in static:
        d = np.hypot(pts[:, 0] - actors.xyz_m[k, 0], pts[:, 1] - actors.xyz_m[k, 1])
        if len(d) == 0:
            continue
        m = int(np.argmin(d))
        dx, dy = actors.xyz_m[k, 0] - pts[m, 0], actors.xyz_m[k, 1] - pts[m, 1]
        lateral = -dx * math.sin(yaws[m]) + dy * math.cos(yaws[m])
        hw = float(actors.half_extent_m[k, 1])
        if abs(lateral) > hw + 0.5 * veh.width_m + p.config.corridor_margin_m:
            continue
        s_obs = float(p.s[i + m])
        if best is None or s_obs < best[0]:
            off = min(0.0, lateral - hw - 0.5 * veh.width_m - PASS_CLEARANCE_M)
            best = (s_obs, float(actors.half_extent_m[k, 0]), float(off))
    return best


@pytest.mark.parametrize("passing", [False, True], ids=["corridor", "shifted-corridor"])
def test_search_kernels_match_the_array_formulation(passing):
    rng = np.random.default_rng(5 + passing)
    route = _winding_route(rng)
    limits = np.full(len(route.s_m), 13.9)
    found = {"gap": 0, "blocker": 0}
    for _ in range(400):
        pilot = Autopilot(route, limits, VEHICLE_PARAMS["car"])
        i = int(rng.integers(len(route.s_m)))
        state = _scene(rng, route, i)
        i = pilot.locate(state.ego.x_m, state.ego.y_m, state.ego.yaw_rad)
        if passing:
            s0 = pilot._s_now
            pilot._pass = (s0 + 2.0, s0 + 9.0, s0 + 20.0, s0 + 29.0, float(rng.uniform(-3.5, 0.0)))
        gap = pilot._obstacle_gap(state, i)
        assert repr(gap) == repr(_obstacle_gap_reference(pilot, state, i))
        blocker = pilot._static_blocker(state, i)
        expected = _static_blocker_reference(pilot, state, i)
        assert repr(blocker and tuple(map(float, blocker))) == repr(expected)
        found["gap"] += gap[0] < math.inf
        found["blocker"] += blocker is not None
    assert found["gap"] > 100 and found["blocker"] > 50  # the scenes exercise both searches
