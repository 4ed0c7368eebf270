"""Scripted events of a scenario, run inside the embedded world.

An :class:`EventRunner` turns a scenario's :class:`~sim.scenario.EventSpec` list into
actors and behaviours, through a few hooks of :class:`~sim.embedded.EmbeddedBackend`:

* ``fits`` (route planning): every event finds its *site* on the planned route (a
  stretch with a neighbour lane, a junction with a crossing lane, ...); a random route
  is drawn again until all fit;
* ``setup_vehicles`` / ``setup_walkers`` (reset): scripted vehicles are appended to
  :class:`~sim.traffic.Traffic` (hidden until they enter, or placed at once) and
  scripted walkers to :class:`~sim.walkers.Walkers`;
* ``signal_states`` (each tick, before anyone reads the lights): lights forced green,
  red or dark;
* ``before_traffic`` (each tick, before the NPC kernel): speeds, accelerations,
  lateral offsets and paths of scripted vehicles (:meth:`Traffic.add_scripted` hooks);
* ``after_walkers``: scripted walkers' poses;
* ``drain`` (each tick): one :data:`~sim.state.EventKind.SCRIPTED` event per event
  that fired, for the state's event list.

Event types (parameters in :mod:`sim.scenario`): ``lead_brake``, ``slow_lead``,
``stop_and_go`` (a lead vehicle on the ego's route), ``cut_in`` (from the neighbour
lane), ``pedestrian_from_occluder`` and ``jaywalker`` (a walker crossing the road),
``lane_obstacle`` (a static box in the ego's lane), ``red_light_runner`` and
``turn_across_path`` (a vehicle crossing the ego's path in a junction) and
``dark_light`` (a failed traffic light). Everything is deterministic: no random
numbers are drawn here beyond the traffic's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.scenario import EventSpec
from sim.state import ActorType, Event, EventKind, LightState

__all__ = ["EventRunner", "RouteView"]

#: route stretches shorter than this (m) hold no cut-in, obstacle or crossing walker
MIN_STRETCH_M = 40.0
_GREEN, _RED, _OFF = int(LightState.GREEN), int(LightState.RED), int(LightState.OFF)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


@dataclass
class RouteView:
    """The ego's route as scripts need it: per point its table lane, lane s, junction
    lane, and the lane sequence with where each lane starts along the route."""

    xyz: np.ndarray
    yaw: np.ndarray
    s: np.ndarray
    lane: np.ndarray
    lane_s: np.ndarray
    jl: np.ndarray
    seq_lane: np.ndarray  # (K,) distinct lanes in driving order
    seq_route_s0: np.ndarray  # (K,) route s where each begins
    seq_lane_s0: np.ndarray  # (K,) lane s at that point

    @classmethod
    def build(cls, route, index) -> RouteView:
        lane = index.lane
        starts = np.flatnonzero(np.r_[True, lane[1:] != lane[:-1]])
        return cls(
            route.xyz_m,
            route.yaw_rad,
            route.s_m,
            lane,
            index.lane_s,
            index.jl,
            lane[starts],
            route.s_m[starts],
            index.lane_s[starts],
        )

    def at(self, s_m: float) -> int:
        return int(min(len(self.s) - 1, max(0, np.searchsorted(self.s, s_m))))

    def stretches(self, ok: np.ndarray) -> list[tuple[float, float]]:
        """Route intervals (s0, s1) where ``ok`` (per point) holds throughout."""
        out, start = [], None
        for i, good in enumerate(ok):
            if good and start is None:
                start = i
            if (not good or i == len(ok) - 1) and start is not None:
                end = i if good else i - 1
                out.append((float(self.s[start]), float(self.s[end])))
                start = None
        return out

    def lane_pos(self, s_m: float) -> tuple[int, float]:
        """Table lane and lane s of route distance ``s_m``."""
        k = int(max(0, np.searchsorted(self.seq_route_s0, s_m, side="right") - 1))
        return int(self.seq_lane[k]), float(self.seq_lane_s0[k] + s_m - self.seq_route_s0[k])

    def route_s_of(self, lane: int, lane_s: float, after_s: float = -1.0) -> float | None:
        """Route distance of a point on ``lane`` (its first pass after ``after_s``)."""
        for k in np.flatnonzero(self.seq_lane == lane):
            s = float(self.seq_route_s0[k] + lane_s - self.seq_lane_s0[k])
            if s >= after_s - 5.0:
                return s
        return None


class _Ctx:
    """What the scripts read and move: the backend's route, map, traffic and walkers."""

    def __init__(self, backend):
        self.b = backend

    @property
    def route(self) -> RouteView:
        return self.b.route_view

    @property
    def traffic(self):
        return self.b.traffic

    @property
    def walkers(self):
        return self.b.walkers

    def ego_s(self) -> float:
        return float(self.b.route.s_m[self.b.route_hint])

    def ego_speed(self) -> float:
        return float(self.b.ego_speed_mps)


class _Script:
    """One event: finds its site, places its actors, fires and acts."""

    def __init__(self, spec: EventSpec, number: int):
        self.spec, self.p, self.number = spec, spec.params, number
        self.fired = False
        self.fire_time = math.nan
        self.log: list[str] = []

    # -- overridden by the event types ------------------------------------------------

    def fits(self, ctx: _Ctx) -> bool:
        return True

    def setup_vehicles(self, ctx: _Ctx) -> None:
        pass

    def setup_walkers(self, ctx: _Ctx) -> None:
        pass

    def fire_s(self) -> float:
        """Route progress at which this event fires (time triggers: never by distance)."""
        return math.inf if self.spec.trigger.is_time else self.spec.trigger.route_m

    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        return ""

    def act(self, ctx: _Ctx, time_s: float, dt_s: float) -> None:
        pass

    def move_walkers(self, ctx: _Ctx, dt_s: float) -> None:
        pass

    def signals(self, ctx: _Ctx, states: np.ndarray) -> None:
        pass

    # -- the common trigger -------------------------------------------------------------

    def tick(self, ctx: _Ctx, time_s: float, dt_s: float) -> None:
        trig = self.spec.trigger
        due = time_s >= trig.time_s if trig.is_time else ctx.ego_s() >= self.fire_s()
        if not self.fired and due:
            self.fired = True
            self.fire_time = time_s
            self.log.append(f"{self.spec.type} (event {self.number}): {self.on_fire(ctx, time_s)}")
        self.act(ctx, time_s, dt_s)


class _RouteFollower:
    """A scripted vehicle that keeps to the ego's route lanes (its path is refilled from
    the route each tick until it leaves it)."""

    def __init__(self, ctx: _Ctx, index: int, lane: int):
        self.i, self.k = index, int(np.flatnonzero(ctx.route.seq_lane == lane)[0])

    def follow(self, ctx: _Ctx) -> bool:
        """Refill the path; False once the vehicle is off the route."""
        t, r = ctx.traffic, ctx.route
        lane = int(t.lane[self.i])
        if t.dead[self.i]:
            return False
        while self.k < len(r.seq_lane) and r.seq_lane[self.k] != lane:
            self.k += 1
        if self.k >= len(r.seq_lane):
            return False
        ahead = r.seq_lane[self.k + 1 : self.k + 1 + t.path.shape[1]]
        t.path[self.i, : len(ahead)] = ahead
        prev = int(ahead[-1]) if len(ahead) else lane
        for n in range(len(ahead), t.path.shape[1]):
            prev = t._random_successor(prev) if prev >= 0 else -1
            t.path[self.i, n] = prev
        return True

    def route_s(self, ctx: _Ctx) -> float:
        r = ctx.route
        k = min(self.k, len(r.seq_lane) - 1)
        return float(r.seq_route_s0[k] + ctx.traffic.s[self.i] - r.seq_lane_s0[k])


# -- a lead vehicle on the ego's route ----------------------------------------------------


class _Lead(_Script):
    """The lead vehicle of lead_brake, slow_lead and stop_and_go."""

    def fits(self, ctx: _Ctx) -> bool:
        r = ctx.route
        s0 = self.p.gap_m + 4.6
        outside = np.flatnonzero((r.jl < 0) & (r.s >= s0))
        return len(outside) > 0 and r.s[-1] - r.s[outside[0]] > 30.0

    def setup_vehicles(self, ctx: _Ctx) -> None:
        r, t = ctx.route, ctx.traffic
        i0 = int(np.flatnonzero((r.jl < 0) & (r.s >= self.p.gap_m + 4.6))[0])
        (self.i,) = t.add_scripted(ActorType.CAR)
        lane, s = int(r.lane[i0]), float(r.lane_s[i0])
        t.place_on_lane(self.i, lane, s)
        self.cruise = float(t.speed_cap[self.i])
        if self.spec.type == "lead_brake":  # its cruising speed; the others drive the limit until the trigger
            t.speed_cap[self.i] = self.p.speed_mps
        self.follower = _RouteFollower(ctx, self.i, lane)
        self.on_route = self.follower.follow(ctx)

    def act(self, ctx: _Ctx, time_s: float, dt_s: float) -> None:
        if self.on_route:
            self.on_route = self.follower.follow(ctx)
        if self.fired:
            self.drive(ctx.traffic, time_s - self.fire_time)

    def brake(self, t, decel: float) -> None:
        t.accel_override[self.i] = -decel

    def release(self, t) -> None:
        t.accel_override[self.i] = np.nan

    def drive(self, t, since_s: float) -> None:
        raise NotImplementedError


class _LeadBrake(_Lead):
    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        return f"vehicle {ctx.traffic.ids[self.i]} brakes at {self.p.decel_mps2:g} m/s^2"

    def drive(self, t, since_s: float) -> None:
        if not hasattr(self, "stopped_at"):
            self.brake(t, self.p.decel_mps2)
            if t.speed[self.i] <= 0.0:
                self.stopped_at = since_s
        elif since_s - self.stopped_at >= self.p.hold_s:
            self.release(t)


class _SlowLead(_Lead):
    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        return f"vehicle {ctx.traffic.ids[self.i]} slows to {self.p.speed_mps:g} m/s"

    def drive(self, t, since_s: float) -> None:
        t.speed_cap[self.i] = self.p.speed_mps if since_s < self.p.duration_s else self.cruise


class _StopAndGo(_Lead):
    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        return f"vehicle {ctx.traffic.ids[self.i]} starts {self.p.cycles} stop-and-go cycles"

    def drive(self, t, since_s: float) -> None:
        period = self.p.go_s + self.p.stop_s
        if since_s >= self.p.cycles * period:
            t.speed_cap[self.i] = self.cruise
            self.release(t)
            return
        t.speed_cap[self.i] = self.p.speed_mps
        if since_s % period < self.p.go_s:
            self.release(t)
        else:
            self.brake(t, self.p.decel_mps2)


# -- cut-in -------------------------------------------------------------------------------------


class _CutIn(_Script):
    """Appears behind the ego in the neighbour lane (drawn beside the ego's lane with a
    lateral offset, so it keeps to the ego's route), overtakes, and cuts in."""

    def fits(self, ctx: _Ctx) -> bool:
        r, rm, b = ctx.route, ctx.b.road_map, ctx.b
        keys = b.assets.table.keys
        for side, attr in ((-1.0, "left"), (1.0, "right")):
            ok = np.array(
                [
                    r.jl[i] < 0 and getattr(rm.lanes[keys[r.lane[i]]], attr) is not None
                    for i in range(len(r.s))
                ]
            )
            for s0, s1 in r.stretches(ok):
                start = max(s0 + self.p.behind_m + 2.0, self.spec.trigger.route_m)
                if s1 - start >= MIN_STRETCH_M:
                    self.site_s, self.side = start, side
                    lane = rm.lanes[keys[r.lane[r.at(start)]]]
                    self.width = float(np.median(lane.width_m))
                    return True
        return False

    def setup_vehicles(self, ctx: _Ctx) -> None:
        (self.i,) = ctx.traffic.add_scripted(ActorType.CAR)
        self.phase = "hidden"

    def fire_s(self) -> float:
        return self.site_s

    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        t, r = ctx.traffic, ctx.route
        start = max(0.0, ctx.ego_s() - self.p.behind_m)
        lane, s = r.lane_pos(start)
        t.place_on_lane(
            self.i, lane, s, speed_mps=ctx.ego_speed() + self.p.overtake_mps, offset_m=self.side * self.width
        )
        t.parked[self.i] = False
        t.ignore_rules[self.i] = True
        t.accel_override[self.i] = 0.0
        self.follower = _RouteFollower(ctx, self.i, lane)
        self.follower.follow(ctx)
        self.phase = "overtaking"
        return f"vehicle {t.ids[self.i]} overtakes in the {'left' if self.side < 0 else 'right'} lane"

    def act(self, ctx: _Ctx, time_s: float, dt_s: float) -> None:
        if self.phase in ("hidden", "done"):
            return
        t = ctx.traffic
        if not self.follower.follow(ctx):
            self._release(t)
            return
        ahead = self.follower.route_s(ctx) - ctx.ego_s()
        if self.phase == "overtaking":
            t.accel_override[self.i] = (
                0.0 if t.speed[self.i] < ctx.ego_speed() + self.p.overtake_mps + 2 else -1.0
            )
            if ahead >= self.p.ahead_m:
                self.phase, self.cut_t = "cutting", time_s
                self.log.append(
                    f"cut_in (event {self.number}): vehicle {t.ids[self.i]} cuts in {ahead:.1f} m ahead"
                )
        if self.phase == "cutting":
            frac = min(1.0, (time_s - self.cut_t) / self.p.duration_s)
            t.offset_m[self.i] = self.side * self.width * (1.0 - frac)
            if frac >= 1.0:
                self._release(t)

    def _release(self, t) -> None:
        t.offset_m[self.i] = 0.0
        t.accel_override[self.i] = np.nan
        t.ignore_rules[self.i] = False
        t.speed_cap[self.i] = self.p.speed_mps
        self.phase = "done"


# -- walkers crossing ------------------------------------------------------------------------------


def _road_edges(road_map, x: float, y: float, yaw: float) -> tuple[float, float]:
    """Lateral distances (m, right positive) of the road's right and left edges from
    (x, y) across heading ``yaw``: where no driving lane lies under the point any more."""
    nx, ny = -math.sin(yaw), math.cos(yaw)
    edges = []
    for sign in (1.0, -1.0):
        last_on, d = 0.0, 0.0
        while d < 30.0 and d - last_on < 2.0:  # gaps under 2 m (a median) are still road
            d += 0.25
            if road_map.lane_at(x + sign * d * nx, y + sign * d * ny) is not None:
                last_on = d
        edges.append(sign * last_on)
    return edges[0], edges[1]


class _Crossing(_Script):
    """A walker crosses the road in front of the ego (jaywalker; with a parked car hiding
    it: pedestrian_from_occluder)."""

    occluder = False

    def fits(self, ctx: _Ctx) -> bool:
        r = ctx.route
        for s0, s1 in r.stretches(r.jl < 0):
            site = max(s0 + 15.0, self.spec.trigger.route_m + self.p.distance_m)
            if site + 8.0 <= s1:
                self.site_s = site
                i = r.at(site)
                x, y, yaw = float(r.xyz[i, 0]), float(r.xyz[i, 1]), float(r.yaw[i])
                right, left = _road_edges(ctx.b.road_map, x, y, yaw)
                sign = 1.0 if self.p.side == "right" else -1.0
                edge = abs(right if sign > 0 else left)
                # the parked car and the walker stand clear of the ego's corridor (2.6 m off its lane)
                self.car_lat = sign * max(2.6, edge - 0.7)
                self.lat0 = self.car_lat if self.occluder else sign * max(edge + 0.6, 2.7)
                self.lat1 = (left - 1.2) if sign > 0 else (right + 1.2)  # the far kerb
                self.base = (x, y, yaw, float(r.xyz[i, 2]))
                return True
        return False

    def _point(self, lateral: float, along: float = 0.0) -> tuple[float, float]:
        x, y, yaw, _ = self.base
        return (
            x + along * math.cos(yaw) - lateral * math.sin(yaw),
            y + along * math.sin(yaw) + lateral * math.cos(yaw),
        )

    def setup_vehicles(self, ctx: _Ctx) -> None:
        if not self.occluder:
            return
        t, r = ctx.traffic, ctx.route
        (self.car,) = t.add_scripted(ActorType.CAR)
        lane, s = r.lane_pos(self.site_s - 3.6)
        t.place_on_lane(self.car, lane, s, offset_m=self.car_lat)
        t.parked[self.car] = True

    def setup_walkers(self, ctx: _Ctx) -> None:
        x, y = self._point(self.lat0)
        heading = self.base[2] + (-math.pi / 2 if self.lat1 < self.lat0 else math.pi / 2)
        self.w = ctx.walkers.add_scripted(x, y, self.base[3], heading)
        self.lat = self.lat0

    def fire_s(self) -> float:
        return self.site_s - self.p.distance_m

    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        return f"walker {ctx.walkers.ids[self.w]} steps onto the road {self.p.distance_m:g} m ahead"

    def move_walkers(self, ctx: _Ctx, dt_s: float) -> None:
        w = ctx.walkers
        if not self.fired or self.lat == self.lat1:
            w.velocity[self.w] = 0.0
            return
        step = math.copysign(min(self.p.speed_mps * dt_s, abs(self.lat1 - self.lat)), self.lat1 - self.lat)
        self.lat += step
        x, y = self._point(self.lat)
        w.velocity[self.w] = ((x - w.x[self.w]) / dt_s, (y - w.y[self.w]) / dt_s)
        w.x[self.w], w.y[self.w] = x, y


class _Occluded(_Crossing):
    occluder = True


# -- a static obstacle in the lane ---------------------------------------------------------------


class _LaneObstacle(_Script):
    def fits(self, ctx: _Ctx) -> bool:
        r = ctx.route
        for s0, s1 in r.stretches(r.jl < 0):
            site = max(s0 + 25.0, self.spec.trigger.route_m)
            if site + 20.0 <= s1:
                self.site_s = site
                return True
        return False

    def setup_vehicles(self, ctx: _Ctx) -> None:
        t = ctx.traffic
        (self.i,) = t.add_scripted(ActorType.STATIC, length_m=self.p.length_m, width_m=self.p.width_m)
        lane, s = ctx.route.lane_pos(self.site_s)
        t.place_on_lane(self.i, lane, s)
        t.parked[self.i] = True
        self.fired = True  # there from the start
        self.log.append(
            f"lane_obstacle (event {self.number}): obstacle {t.ids[self.i]} at {self.site_s:.0f} m"
        )
        self.stuck_s = np.zeros(0)

    #: NPC vehicles do not pass obstacles: one queued behind it this long (s) turns off the road
    STUCK_S = 4.0

    def act(self, ctx: _Ctx, time_s: float, dt_s: float) -> None:
        """An NPC vehicle queued behind the obstacle for ``STUCK_S`` leaves the road (it
        re-enters the world elsewhere, as a dead end's NPC does)."""
        t = ctx.traffic
        if len(self.stuck_s) != len(t):
            self.stuck_s = np.zeros(len(t))
        c, sn = math.cos(t.yaw[self.i]), math.sin(t.yaw[self.i])
        dx, dy = t.x[self.i] - t.x, t.y[self.i] - t.y
        along, across = dx * c + dy * sn, np.abs(-dx * sn + dy * c)
        queued = (t.speed < 0.2) & (along > 0) & (along < 25.0) & (across < 2.0) & ~t.parked & ~t.hidden
        self.stuck_s = np.where(queued, self.stuck_s + dt_s, 0.0)
        t.dead |= self.stuck_s > self.STUCK_S


# -- vehicles crossing the ego's path in a junction ----------------------------------------------


class _CrossingVehicle(_Script):
    """red_light_runner (a side road, straight across) and turn_across_path (oncoming,
    turning): the first junction of the route that has such a lane."""

    def fits(self, ctx: _Ctx) -> bool:
        r = ctx.route
        for s0, s1 in r.stretches(r.jl >= 0):
            if s0 < self.spec.trigger.route_m + self.p.distance_m:
                continue
            found = self._candidate(ctx, r.at(s0), r.at(s1))
            if found is not None:
                self.lane, self.lane_cp_s, self.cp_s, self.entry_i = found
                return True
        return False

    def _candidate(self, ctx: _Ctx, i0: int, i1: int):
        b = ctx.b
        table, jl_of, conflict = (
            b.assets.table,
            b.assets.junction_lanes.jl_index,
            b.assets.junction_lanes.conflict,
        )
        r = ctx.route
        if i0 == 0:
            return None
        entry_yaw = float(r.yaw[i0])
        if self.spec.type == "red_light_runner" and not self._ego_has_light(ctx, int(r.lane[i0 - 1])):
            return None
        ego_jl = {int(j) for j in r.jl[i0 : i1 + 1] if j >= 0}
        pts = r.xyz[i0 : i1 + 1, :2]
        for lane in range(len(table)):
            j = jl_of[lane]
            if j < 0 or not any(conflict[j, e] for e in ego_jl):
                continue
            lo, hi = table.pt_off[lane], table.pt_off[lane + 1]
            yaws = table.yaw[lo:hi]
            if not self._wanted(_wrap(float(yaws[0]) - entry_yaw), _wrap(float(yaws[-1]) - float(yaws[0]))):
                continue
            d = np.hypot(
                table.xy[lo:hi, None, 0] - pts[None, :, 0], table.xy[lo:hi, None, 1] - pts[None, :, 1]
            )
            a, m = np.unravel_index(int(np.argmin(d)), d.shape)
            if d[a, m] < 2.0 and self._predecessor(ctx, lane) is not None:
                return lane, float(table.s[lo + a]), float(r.s[i0 + m]), i0
        return None

    def _wanted(self, d_entry: float, turn: float) -> bool:
        if self.spec.type == "red_light_runner":
            return abs(math.sin(d_entry)) > 0.8 and abs(turn) < 0.35
        return math.cos(d_entry) < -0.8 and abs(turn) > 0.8

    def _ego_has_light(self, ctx: _Ctx, entry_lane: int) -> bool:
        sig = ctx.b.signals
        row = sig.controlled_index.get(ctx.b.assets.table.keys[entry_lane])
        return row is not None and row < sig.light_count

    @staticmethod
    def _predecessor(ctx: _Ctx, lane: int) -> int | None:
        """The lane (outside junctions) that leads into junction lane ``lane``."""
        table = ctx.b.assets.table
        preds = [
            table.index[k] for k in ctx.b.road_map.lanes[table.keys[lane]].predecessors if k in table.index
        ]
        preds = [p for p in preds if table.junction[p] < 0]
        return preds[0] if preds else None

    def setup_vehicles(self, ctx: _Ctx) -> None:
        (self.i,) = ctx.traffic.add_scripted(ActorType.CAR)
        self.entry = self._predecessor(ctx, self.lane)
        self.phase = "hidden"

    def fire_s(self) -> float:
        return self.cp_s - self.p.distance_m

    def on_fire(self, ctx: _Ctx, time_s: float) -> str:
        t, table = ctx.traffic, ctx.b.assets.table
        to_cp = self.cp_s - ctx.ego_s()
        t_ego = to_cp / max(ctx.ego_speed(), 4.0)
        back = self.p.speed_mps * max(1.0, t_ego - self.p.lead_s)
        if back <= self.lane_cp_s:
            lane, s = self.lane, self.lane_cp_s - back
        else:
            lane, s = self.entry, max(2.5, float(table.length[self.entry]) - (back - self.lane_cp_s))
        t.place_on_lane(self.i, lane, s, speed_mps=self.p.speed_mps)
        if lane == self.entry:
            t.path[self.i, 0] = self.lane
            for k in range(1, t.path.shape[1]):
                t.path[self.i, k] = (
                    t._random_successor(int(t.path[self.i, k - 1])) if t.path[self.i, k - 1] >= 0 else -1
                )
        t.parked[self.i] = False
        t.ignore_rules[self.i] = True
        t.accel_override[self.i] = 0.0
        self.phase = "crossing"
        what = "runs the red light" if self.spec.type == "red_light_runner" else "turns across the ego's path"
        return f"vehicle {t.ids[self.i]} {what}"

    def act(self, ctx: _Ctx, time_s: float, dt_s: float) -> None:
        if self.phase != "crossing":
            return
        t = ctx.traffic
        past = t.lane[self.i] not in (self.entry, self.lane) and t.junctions.jl_index[t.lane[self.i]] < 0
        if past or time_s - self.fire_time > 20.0:
            t.ignore_rules[self.i] = False
            t.accel_override[self.i] = np.nan
            self.phase = "done"

    def signals(self, ctx: _Ctx, states: np.ndarray) -> None:
        """red_light_runner: from the trigger until the runner and the ego are through (30 s
        at most), the ego's entry light is green and every other light of the junction red."""
        if self.spec.type != "red_light_runner" or not self.fired:
            return
        through = self.phase == "done" and ctx.ego_s() > self.cp_s + 15.0
        if through or ctx.b.time_s - self.fire_time > 30.0:
            return
        sig, r = ctx.b.signals, ctx.route
        entry_key = ctx.b.assets.table.keys[int(r.lane[self.entry_i - 1])]
        row = sig.controlled_index[entry_key]
        rows = np.flatnonzero(sig.junction_of_row == sig.junction_of_row[row])
        rows = rows[rows < sig.light_count]
        states[rows] = _RED
        states[row] = _GREEN


class _DarkLight(_Script):
    def fits(self, ctx: _Ctx) -> bool:
        r, sig, keys = ctx.route, ctx.b.signals, ctx.b.assets.table.keys
        for s0, _s1 in r.stretches(r.jl >= 0):
            i0 = r.at(s0)
            if s0 < self.spec.trigger.route_m or i0 == 0:
                continue
            row = sig.controlled_index.get(keys[int(r.lane[i0 - 1])])
            if row is not None and row < sig.light_count:
                rows = np.flatnonzero(sig.junction_of_row == sig.junction_of_row[row])
                self.rows = rows[rows < sig.light_count]
                self.junction = int(sig.junction_of_row[row])
                return True
        return False

    def setup_vehicles(self, ctx: _Ctx) -> None:
        self.fired = True
        self.log.append(f"dark_light (event {self.number}): the lights of junction {self.junction} are dark")

    def signals(self, ctx: _Ctx, states: np.ndarray) -> None:
        states[self.rows] = _OFF


_SCRIPTS: dict[str, type[_Script]] = {
    "lead_brake": _LeadBrake,
    "slow_lead": _SlowLead,
    "stop_and_go": _StopAndGo,
    "cut_in": _CutIn,
    "pedestrian_from_occluder": _Occluded,
    "jaywalker": _Crossing,
    "lane_obstacle": _LaneObstacle,
    "red_light_runner": _CrossingVehicle,
    "turn_across_path": _CrossingVehicle,
    "dark_light": _DarkLight,
}


class EventRunner:
    """The scripted events of one episode in an :class:`~sim.embedded.EmbeddedBackend`
    (see the module docstring for the hooks and their order)."""

    def __init__(self, specs, backend):
        self.ctx = _Ctx(backend)
        self.scripts = [_SCRIPTS[spec.type](spec, k) for k, spec in enumerate(specs)]

    def __bool__(self) -> bool:
        return bool(self.scripts)

    def unfit(self) -> str | None:
        """The first event that finds no site on the backend's current route, described; None when all fit."""
        for sc in self.scripts:
            if not sc.fits(self.ctx):
                return f"event {sc.number} ({sc.spec.type})"
        return None

    def setup_vehicles(self) -> None:
        for sc in self.scripts:
            sc.setup_vehicles(self.ctx)

    def setup_walkers(self) -> None:
        for sc in self.scripts:
            sc.setup_walkers(self.ctx)

    def signal_states(self, states: np.ndarray) -> np.ndarray:
        for sc in self.scripts:
            sc.signals(self.ctx, states)
        return states

    def before_traffic(self, time_s: float, dt_s: float) -> None:
        for sc in self.scripts:
            sc.tick(self.ctx, time_s, dt_s)

    def after_walkers(self, dt_s: float) -> None:
        for sc in self.scripts:
            sc.move_walkers(self.ctx, dt_s)

    def drain(self, time_s: float, xyz: tuple[float, float, float]) -> list[Event]:
        """SCRIPTED events for what fired since the last call."""
        out = []
        for sc in self.scripts:
            out += [Event(EventKind.SCRIPTED, time_s, xyz, detail=text) for text in sc.log]
            sc.log.clear()
        return out
