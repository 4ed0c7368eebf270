"""The privileged autopilot: the teacher and the labeller.

It reads the true :class:`~sim.state.WorldState` (never pixels) and returns the
control for any state, also one it did not drive into itself: the only memory it
keeps is a hint where on the route to search (always re-validated) and the stop
lines where it already came to a full stop.

- Lateral: pure pursuit on the dense route, the look-ahead growing with speed.
- Speed: a profile precomputed along the route from the speed limits and the
  curvature (lateral acceleration bound), with braking ahead of slow sections.
- Obstacles: every actor's box is extrapolated at constant velocity over a short
  horizon; the first point where one enters the corridor swept by the ego along
  its route becomes a leader, followed with the intelligent driver model.
- Rules: stop for red lights and amber when there is room, full stop at stop signs;
  a dark (failed) traffic light is a stop sign.
- Static obstacles (:data:`~sim.state.ActorType.STATIC`) blocking the lane are passed
  on the left once the lane beside is free over the whole manoeuvre: the path is
  shifted sideways around them (pure pursuit and the corridor both follow the shift).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field

import numba
import numpy as np

from sim.errors import ConfigError
from sim.state import ActorType, Control, LightState, WorldState

__all__ = ["AutopilotConfig", "Autopilot", "LEVEL_M"]

#: actors further apart in height (m) are on different levels (a bridge and the road below)
LEVEL_M = 2.5
#: passing a static obstacle: lateral clearance (m) beyond both half widths, the
#: distance (m) over which the path shifts, and how far ahead (m) a pass is planned
PASS_CLEARANCE_M = 0.9
PASS_RAMP_M = 9.0
PASS_PLAN_M = 40.0
#: speed (m/s) while passing an obstacle
PASS_SPEED_MPS = 6.0
#: how far (m) beyond the obstacle's end the path starts shifting back
PASS_AFTER_M = 8.0
#: a standing obstacle to pass: the ego waits this much further back (m), room to steer out
PASS_WAIT_M = 7.0
_STOPS = (LightState.STOP, LightState.OFF)  # a dark traffic light is a stop sign
_STATIC = int(ActorType.STATIC)


@dataclass(frozen=True)
class AutopilotConfig:
    """How the autopilot drives."""

    lookahead_min_m: float = field(default=4.0, metadata={"help": "pure-pursuit look-ahead at standstill"})
    lookahead_gain_s: float = field(default=0.7, metadata={"help": "look-ahead growth per m/s of speed"})
    lookahead_max_m: float = field(default=14.0, metadata={"help": "largest pure-pursuit look-ahead"})
    lateral_accel_mps2: float = field(
        default=2.0, metadata={"help": "lateral acceleration allowed in curves"}
    )
    speed_factor: float = field(default=0.95, metadata={"help": "share of the speed limit to drive at"})
    comfort_decel_mps2: float = field(default=2.5, metadata={"help": "planned braking"})
    max_accel_mps2: float = field(default=2.0, metadata={"help": "planned acceleration"})
    time_headway_s: float = field(default=1.2, metadata={"help": "time gap to a leader"})
    min_gap_m: float = field(default=3.0, metadata={"help": "gap kept to a stopped leader"})
    corridor_margin_m: float = field(
        default=0.5, metadata={"help": "lateral margin around the swept corridor"}
    )
    horizon_s: float = field(default=2.5, metadata={"help": "how far ahead actor motion is extrapolated"})
    scan_m: float = field(default=45.0, metadata={"help": "how far along the route obstacles are looked for"})

    def __post_init__(self) -> None:
        for f in self.__dataclass_fields__:
            value = getattr(self, f)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"autopilot.{f} must be a positive number, got {value}")


def _wrap(a):
    return np.remainder(a + np.pi, 2 * np.pi) - np.pi


def _clip(x: float, lo: float, hi: float) -> float:
    """``np.clip`` of one float, without numpy's per-call cost: the same result, NaN and
    signed zeros included (a bound is returned unless ``x`` is strictly inside it)."""
    x = x if (x > lo or x != x) else lo
    return x if (x < hi or x != x) else hi


@numba.njit(cache=True)
def _nearest_point(xy, lo, hi, x, y):
    """(index, distance) of the point of ``xy[lo:hi]`` nearest (x, y), the first of equals
    (``np.argmin`` of ``np.hypot``); ``lo < hi``."""
    best, best_d = lo, np.hypot(xy[lo, 0] - x, xy[lo, 1] - y)
    for k in range(lo + 1, hi):
        d = np.hypot(xy[k, 0] - x, xy[k, 1] - y)
        if d < best_d:
            best, best_d = k, d
    return best, best_d


@numba.njit(cache=True)
def _first_conflict(pts, yaws, xyz, velocity, half_extent, actor_yaw, ego_z, times, half_width, margin):
    """(actor, corridor point) of the first corridor point (of ``pts``, headings ``yaws``)
    that an actor's box enters at one of ``times``, extrapolated at constant velocity;
    the lowest actor index of equals; (-1, len(pts)) for none.

    Only actors on the ego's level that can reach the corridor's bounding box within the
    horizon count. A point is entered when the predicted centre comes closer than
    ``half_width + margin`` plus the box's extent across the corridor heading there.
    """
    n_pts, n_t = len(pts), len(times)
    lo_x, lo_y = pts[:, 0].min(), pts[:, 1].min()
    hi_x, hi_y = pts[:, 0].max(), pts[:, 1].max()
    base = half_width + margin
    px, py = np.empty(n_t), np.empty(n_t)
    best_a, best_m = -1, n_pts
    for a in range(len(xyz)):
        x, y = xyz[a, 0], xyz[a, 1]
        if not abs(xyz[a, 2] - ego_z) < LEVEL_M:  # on a bridge over or under
            continue
        out_x = max(max(lo_x - x, x - hi_x), 0.0)
        out_y = max(max(lo_y - y, y - hi_y), 0.0)
        reach = np.hypot(velocity[a, 0], velocity[a, 1]) * times[-1]
        reach += half_extent[a, 0] + half_width + margin
        if not np.hypot(out_x, out_y) <= reach:
            continue
        hl, hw = half_extent[a, 0], half_extent[a, 1]
        for t in range(n_t):
            px[t] = x + velocity[a, 0] * times[t]
            py[t] = y + velocity[a, 1] * times[t]
        # no point farther than this from every predicted centre can be entered (the
        # extent across lies between hw and hl; the slack dwarfs any rounding)
        bound = base + max(hl, hw) + 1e-6
        x0, x1, y0, y1 = px.min() - bound, px.max() + bound, py.min() - bound, py.max() + bound
        for m in range(best_m):  # only a point before the best so far can win
            qx, qy = pts[m, 0], pts[m, 1]
            if qx < x0 or qx > x1 or qy < y0 or qy > y1:
                continue
            rel_yaw = abs(math.sin(actor_yaw[a] - yaws[m]))
            limit = base + (hw + (hl - hw) * rel_yaw)
            for t in range(n_t):
                if np.hypot(px[t] - qx, py[t] - qy) < limit:
                    best_a, best_m = a, m
                    break
            if best_a == a:
                break
    return best_a, best_m


@numba.njit(cache=True)
def _nearest_static(types, xyz, velocity, half_extent, pts, yaws, s_pts, half_width, margin):
    """(actor, corridor point, lateral offset m) of the standing static actor in the
    corridor (``pts`` with headings ``yaws`` at route distances ``s_pts``) that comes
    first along it, the lowest actor index of equals; (-1, -1, 0.0) for none.

    An actor's corridor point is the one nearest its centre; it is in the corridor when
    its centre lies within its half width + ``half_width`` + ``margin`` of that point,
    across the route.
    """
    best_k, best_m, best_lateral = -1, -1, 0.0
    if len(pts) == 0:
        return best_k, best_m, best_lateral
    for k in range(len(types)):
        if types[k] != _STATIC or not np.hypot(velocity[k, 0], velocity[k, 1]) < 0.2:
            continue
        m, _ = _nearest_point(pts, 0, len(pts), xyz[k, 0], xyz[k, 1])
        dx, dy = xyz[k, 0] - pts[m, 0], xyz[k, 1] - pts[m, 1]
        lateral = -dx * math.sin(yaws[m]) + dy * math.cos(yaws[m])
        if abs(lateral) > half_extent[k, 1] + half_width + margin:
            continue
        if best_k < 0 or s_pts[m] < s_pts[best_m]:
            best_k, best_m, best_lateral = k, m, lateral
    return best_k, best_m, best_lateral


class Autopilot:
    """Drives one route. ``vehicle`` gives wheelbase_m, max_steer_rad, max_accel_mps2,
    max_brake_mps2, length_m and width_m (a :class:`sim.vehicle.VehicleParams`)."""

    _TIMES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])

    def __init__(self, route, speed_limits_mps: np.ndarray, vehicle, config: AutopilotConfig | None = None):
        self.config = config or AutopilotConfig()
        self.route = route
        self.vehicle = vehicle
        self.xy = np.ascontiguousarray(route.xyz_m[:, :2])
        self.s = np.asarray(route.s_m, dtype=np.float64)
        self.yaw = np.asarray(route.yaw_rad, dtype=np.float64)
        self.profile = self._speed_profile(np.asarray(speed_limits_mps, dtype=np.float64))
        # plain-float copies for the per-step scalar work (numpy costs ~1 us a call there)
        self._s_list: list[float] = self.s.tolist()
        self._xy_list: list[list[float]] = self.xy.tolist()
        self._profile_list: list[float] = self.profile.tolist()
        self._segment_ll: list[float | None] = [None] * len(self._s_list)  # see _foot_s
        self._stop_index = self._stop_lines()
        self._times = self._TIMES[self.config.horizon_s + 1e-9 >= self._TIMES]
        self.reset()

    def reset(self) -> None:
        self._rows_for: object = None
        self._rows: list[tuple[int, list[int]]] = []
        self._lines_ahead: dict[int, list[tuple[int, int]]] = {}  # see _stop_lines_ahead
        self._hint = 0
        self._s_now = 0.0
        self._served: set[int] = set()
        self._pass: tuple[float, float, float, float, float] | None = None  # (a, b, c, d, offset): _offset
        self._blocker: float | None = None  # route s of a static obstacle waiting to be passed

    # -- precomputation -------------------------------------------------------------

    def _speed_profile(self, limits: np.ndarray) -> np.ndarray:
        """Allowed speed at each route point: limit, curvature, and braking ahead."""
        c = self.config
        n = len(self.s)
        yaw = np.unwrap(self.yaw)
        k = 3
        kappa = np.zeros(n)
        if n > 2 * k:
            dyaw = np.abs(yaw[2 * k :] - yaw[: -2 * k]) / np.maximum(self.s[2 * k :] - self.s[: -2 * k], 1e-3)
            kappa[k:-k] = dyaw
        v_curve = np.sqrt(c.lateral_accel_mps2 / np.maximum(kappa, 1e-6))
        v = np.minimum(c.speed_factor * limits, v_curve)
        for i in range(n - 2, -1, -1):  # braking ahead of slow sections
            ds = self.s[i + 1] - self.s[i]
            v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2.0 * c.comfort_decel_mps2 * ds))
        return v

    def _stop_lines(self) -> dict:
        """Per lane, the route indices of the last point before the route leaves it
        (its stop line when the lane enters a junction); a route may pass a lane twice."""
        keys = self.route.lane_keys
        out: dict[tuple, list[int]] = {}
        for i in range(len(keys) - 1):
            if keys[i] != keys[i + 1]:
                out.setdefault(tuple(keys[i]), []).append(i)
        return out

    def _route_rows(self, signals) -> list[tuple[int, list[int]]]:
        """The signal rows whose entry lane the route leaves, with its stop-line indices;
        worked out once per signal layout (the rows of a world never change)."""
        if self._rows_for is not signals.lanes:
            self._rows_for = signals.lanes
            self._rows = [
                (r, self._stop_index[tuple(k)])
                for r, k in enumerate(signals.lanes)
                if tuple(k) in self._stop_index
            ]
            self._lines_ahead = {}
        return self._rows

    def _stop_lines_ahead(self, signals, i: int) -> list[tuple[int, int]]:
        """(signal row, stop-line index) of each row's first stop line not yet passed at
        route point i (index >= i - 1), nearest first; worked out once per route point."""
        rows = self._route_rows(signals)
        ahead = self._lines_ahead.get(i)
        if ahead is None:
            firsts = []
            for row, lines in rows:
                k = bisect_left(lines, i - 1)
                if k < len(lines):
                    firsts.append((lines[k], row))
            ahead = self._lines_ahead[i] = [(row, line_i) for line_i, row in sorted(firsts)]
        return ahead

    # -- runtime --------------------------------------------------------------------

    def locate(self, x: float, y: float, yaw: float) -> int:
        """Index of the route point nearest the ego (window search, global fallback)."""
        lo = max(0, self._hint - 20)
        hi = min(len(self._s_list), self._hint + 80)
        i, d = _nearest_point(self.xy, lo, hi, x, y)
        if d > 4.0:  # lost (a reset, a takeover): search the whole route
            d = np.hypot(self.xy[:, 0] - x, self.xy[:, 1] - y)
            heading_ok = np.abs(_wrap(self.yaw - yaw)) < np.pi / 2
            d = np.where(heading_ok, d, d + 1e3)
            i = int(np.argmin(d))
        self._hint = i
        self._s_now = self._foot_s(i, x, y)
        return i

    def _foot_s(self, i: int, x: float, y: float) -> float:
        """Distance along the route of the ego's foot on the segment next to point i."""
        j = i + 1 if i + 1 < len(self._s_list) else i - 1
        if j < 0:
            return self._s_list[i]
        k = min(i, j)
        (ax, ay), (bx, by) = self._xy_list[k], self._xy_list[k + 1]
        ll = self._segment_ll[k]
        if ll is None:
            # the squared length as numpy's dot gives it (BLAS may fuse a multiply-add),
            # worked out once per segment
            d = self.xy[k + 1] - self.xy[k]
            ll = self._segment_ll[k] = float(d @ d)
        dx, dy = bx - ax, by - ay
        t = 0.0 if ll == 0 else _clip(((x - ax) * dx + (y - ay) * dy) / ll, -1.0, 2.0)
        return self._s_list[k] + t * math.sqrt(ll)

    def act(self, state: WorldState) -> Control:
        """The control for ``state``."""
        ego = state.ego
        i = self.locate(ego.x_m, ego.y_m, ego.yaw_rad)
        self._plan_pass(state, i)
        steer = self._steer(ego, i)
        accel = self._accel(state, i)
        return Control(steer=steer, accel=accel)

    def _steer(self, ego, i: int) -> float:
        c, veh = self.config, self.vehicle
        ld = _clip(
            c.lookahead_min_m + c.lookahead_gain_s * ego.speed_mps, c.lookahead_min_m, c.lookahead_max_m
        )
        # rear axle: pure pursuit's geometry holds there
        rx = ego.x_m - veh.rear_axle_to_centre_m * math.cos(ego.yaw_rad)
        ry = ego.y_m - veh.rear_axle_to_centre_m * math.sin(ego.yaw_rad)
        s = self._s_list
        j = min(bisect_left(s, s[i] + ld), len(s) - 1)
        tx, ty = self._xy_list[j] if self._pass is None else self._path(j, j + 1)[0]
        alpha = math.atan2(ty - ry, tx - rx) - ego.yaw_rad
        dist = max(math.hypot(tx - rx, ty - ry), 1.0)
        delta = math.atan2(2.0 * veh.wheelbase_m * math.sin(alpha), dist)
        return _clip(delta / veh.max_steer_rad, -1.0, 1.0)

    def _accel(self, state: WorldState, i: int) -> float:
        ego = state.ego
        v = ego.speed_mps
        s = self._s_list
        j = min(len(s) - 1, bisect_left(s, s[i] + 2.0 + 0.5 * v))
        v0 = min(self._profile_list[i], self._profile_list[j])
        if self._pass is not None or self._blocker is not None:
            v0 = min(v0, PASS_SPEED_MPS)
        gap, lead_v = self._obstacle_gap(state, i)
        if self._blocker is not None and self._pass is None:
            gap -= PASS_WAIT_M  # wait back from an obstacle to pass: room to steer out
        line = self._stop_line_gap(state, i)
        a = self._idm(v, v0, gap, v - lead_v)
        if line < math.inf:
            a = min(a, self._idm(v, v0, line, v))
        # stop with the centre on the goal: a standing obstacle min_gap_m beyond it
        to_goal = s[-1] - self._s_now
        a = min(a, self._idm(v, v0, to_goal + self.config.min_gap_m, v))
        if to_goal < 0.5 and v < 0.5:
            a = -self.vehicle.max_brake_mps2  # hold at the goal
        if a >= 0:
            return _clip(a / self.vehicle.max_accel_mps2, 0.0, 1.0)
        return _clip(a / self.vehicle.max_brake_mps2, -1.0, 0.0)

    def _idm(self, v: float, v0: float, gap: float, closing: float) -> float:
        c = self.config
        if gap <= 0.0:
            return -self.vehicle.max_brake_mps2
        free = 1.0 - (v / max(v0, 0.1)) ** 4 if v0 > 0.05 else -1.0
        if gap == math.inf:
            return c.max_accel_mps2 * free
        s_star = c.min_gap_m + max(
            0.0, v * c.time_headway_s + v * closing / (2 * math.sqrt(c.max_accel_mps2 * c.comfort_decel_mps2))
        )
        a = c.max_accel_mps2 * (free - (s_star / gap) ** 2)
        return max(a, -self.vehicle.max_brake_mps2)

    def _horizon_m(self, speed_mps: float) -> float:
        """How far ahead to look: the scan distance, or the comfortable stopping distance
        plus a margin at speed (a highway needs more than a town street)."""
        c = self.config
        return max(c.scan_m, speed_mps * speed_mps / (2.0 * c.comfort_decel_mps2) + 20.0)

    def _obstacle_gap(self, state: WorldState, i: int) -> tuple[float, float]:
        """Distance (front bumper to the actor's near side) along the route to the first
        actor that is or will be in the corridor, and its speed along the route."""
        actors = state.actors
        if len(actors) == 0:
            return math.inf, 0.0
        c, veh = self.config, self.vehicle
        s = self._s_list
        j = bisect_left(s, s[i] + self._horizon_m(state.ego.speed_mps))
        if j <= i:
            return math.inf, 0.0
        pts, yaws = self._path(i, j), self.yaw[i:j]
        a, m = _first_conflict(
            pts,
            yaws,
            actors.xyz_m,
            actors.velocity_mps,
            actors.half_extent_m,
            actors.yaw_rad,
            state.ego.z_m,
            self._times,
            0.5 * veh.width_m,
            c.corridor_margin_m,
        )
        if a < 0:
            return math.inf, 0.0
        hl, hw = actors.half_extent_m[a, 0], actors.half_extent_m[a, 1]
        rel_yaw = abs(math.sin(actors.yaw_rad[a] - yaws[m]))
        along_extent = hl * math.sqrt(max(0.0, 1 - rel_yaw**2)) + hw * rel_yaw
        gap = float(s[i + m] - self._s_now - 0.5 * veh.length_m - along_extent)
        vx, vy = actors.velocity_mps[a]
        lead_v = float(vx * math.cos(yaws[m]) + vy * math.sin(yaws[m]))
        return gap, max(lead_v, 0.0)

    def _stop_line_gap(self, state: WorldState, i: int) -> float:
        """Distance from the front bumper to the nearest stop line the ego must stop at."""
        signals = state.signals
        if len(signals) == 0:
            return math.inf
        v = state.ego.speed_mps
        horizon = self._horizon_m(v)
        best = math.inf
        for row, line_i in self._stop_lines_ahead(signals, i):
            dist = (self._s_list[line_i] - self._s_now) - 0.5 * self.vehicle.length_m
            if dist > horizon:
                break  # nearest first: the rest lie beyond the horizon too
            st = int(signals.state[row])
            if self._must_stop(st, dist, v, line_i):
                # at a stop sign the front bumper stops ~1 m before the line, in the stop zone
                best = min(best, dist + self.config.min_gap_m - 1.0 if st in _STOPS else dist)
        return best

    def _must_stop(self, st: int, dist: float, v: float, line_i: int) -> bool:
        if st == LightState.RED:
            return dist > -1.0
        if st == LightState.YELLOW:
            return dist > v * v / (2.0 * self.vehicle.max_brake_mps2 * 0.6)
        if st in _STOPS and line_i not in self._served:
            if v < 0.05 and dist < 2.5:
                self._served.add(line_i)
                return False
            return dist > -1.0
        return False

    # -- passing static obstacles ------------------------------------------------------

    def _offset(self, s: np.ndarray) -> np.ndarray:
        """Lateral shift (m, positive right) of the path at route distances ``s``."""
        if self._pass is None:
            return np.zeros_like(s)
        a, b, c, d, off = self._pass
        up = np.clip((s - a) / max(b - a, 1e-3), 0.0, 1.0)
        down = np.clip((d - s) / max(d - c, 1e-3), 0.0, 1.0)
        return off * np.minimum(up, down)

    def _path(self, i: int, j: int) -> np.ndarray:
        """Route points i..j-1, shifted sideways where a pass is planned."""
        pts = self.xy[i:j]
        if self._pass is None:
            return pts
        off = self._offset(self.s[i:j])
        yaw = self.yaw[i:j]
        return pts + off[:, None] * np.column_stack([-np.sin(yaw), np.cos(yaw)])

    def _plan_pass(self, state: WorldState, i: int) -> None:
        """Start, keep or end a pass around a static obstacle (see the module docstring)."""
        if self._pass is not None and self._s_now > self._pass[3]:
            self._pass = None
        self._blocker = None
        if self._pass is not None:
            return
        found = self._static_blocker(state, i)
        if found is None:
            return
        s_obs, half_len, off = found
        self._blocker = s_obs
        if s_obs - half_len - self._s_now > PASS_PLAN_M:
            return
        b = s_obs - half_len - 1.5
        ramp = max(PASS_RAMP_M, 2.0 * state.ego.speed_mps)  # a longer shift at speed
        a = min(b - 3.0, max(self._s_now + 1.0, b - ramp))
        c = s_obs + half_len + PASS_AFTER_M  # pure pursuit cuts in early: return late
        plan = (a, b, c, c + PASS_RAMP_M, off)
        if self._lane_free(state, plan):
            self._pass = plan

    def _static_blocker(self, state: WorldState, i: int) -> tuple[float, float, float] | None:
        """(route s, half length, offset to pass it) of the nearest standing static actor
        in the corridor ahead; None when there is none."""
        actors, veh = state.actors, self.vehicle
        j = bisect_left(self._s_list, self._s_now + self.config.scan_m)
        k, m, lateral = _nearest_static(
            actors.type,
            actors.xyz_m,
            actors.velocity_mps,
            actors.half_extent_m,
            self.xy[i:j],
            self.yaw[i:j],
            self.s[i:j],
            0.5 * veh.width_m,
            self.config.corridor_margin_m,
        )
        if k < 0:
            return None
        hw = float(actors.half_extent_m[k, 1])
        off = min(0.0, lateral - hw - 0.5 * veh.width_m - PASS_CLEARANCE_M)
        return self._s_list[i + m], float(actors.half_extent_m[k, 0]), off

    def _lane_free(self, state: WorldState, plan) -> bool:
        """No actor but the obstacles comes within reach of the shifted part of the path
        while the ego drives past (at least 4 m/s assumed), oncoming traffic included."""
        actors, veh = state.actors, self.vehicle
        i = int(np.searchsorted(self.s, plan[0]))
        j = int(np.searchsorted(self.s, plan[3]))
        saved, self._pass = self._pass, plan
        pts, off = self._path(i, j), self._offset(self.s[i:j])
        self._pass = saved
        pts = pts[np.abs(off) > 0.5]
        if len(pts) == 0 or len(actors) == 0:
            return True
        horizon = (plan[3] - self._s_now) / max(state.ego.speed_mps, 4.0) + 1.0
        times = np.arange(0.0, horizon + 1e-9, 0.5)
        near = np.hypot(*(actors.xyz_m[:, :2] - pts.mean(axis=0)).T) < 80.0
        near &= (actors.type != ActorType.STATIC) & (np.abs(actors.xyz_m[:, 2] - state.ego.z_m) < LEVEL_M)
        for k in np.flatnonzero(near):
            pred = actors.xyz_m[k, :2] + actors.velocity_mps[k] * times[:, None]
            d = np.hypot(pred[:, None, 0] - pts[None, :, 0], pred[:, None, 1] - pts[None, :, 1])
            if d.min() < actors.half_extent_m[k, 0] + 0.5 * veh.width_m + 1.0:
                return False
        return True
