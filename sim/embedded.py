"""The embedded backend: loopdrive's own world, no server and no GPU.

One tick, always in this order: ego physics (kinematic bicycle, substeps) ->
signals -> scripted events -> NPC traffic -> walkers -> collisions -> infractions ->
state. A scenario's scripted events (:mod:`sim.events`) act through the hooks of an
:class:`~sim.events.EventRunner` at the points marked in :meth:`EmbeddedBackend.tick`. Every
random choice comes from generators seeded by the reset seed, so the same scenario,
seed and ego controls give the same states bit for bit.

Map-derived structures (the parsed map, its lane table, junction conflicts) are
built once per map and kept in a :class:`MapAssets` cache that the caller may share
between backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from sim.autopilot import Autopilot, AutopilotConfig
from sim.backend import Backend
from sim.collision import overlapping_box, overlapping_pairs
from sim.errors import ConfigError
from sim.events import EventRunner, RouteView
from sim.infractions import InfractionConfig, InfractionMonitor
from sim.lanetable import LaneTable
from sim.maps import RoadMap, load_map
from sim.maps.planner import DenseRoute, RoutePlanner
from sim.routes import plan_scenario_route
from sim.scenario import Scenario
from sim.signals import JunctionIndex, SignalConfig, TrafficSignals
from sim.state import (
    Actors,
    ActorType,
    Control,
    EgoState,
    Event,
    EventKind,
    LightState,
    SignalStates,
    WorldState,
)
from sim.traffic import LEVEL_M, JunctionLanes, Traffic
from sim.vehicle import VEHICLE_PARAMS, VehicleParams, control_to_physical, step_vehicles
from sim.walkers import Vehicles, WalkerNetwork, Walkers

__all__ = ["EmbeddedBackend", "MapAssets"]

#: how far ahead (m, plus the braking distance) the ego claims its junction lanes
EGO_CLAIM_M = 8.0
_WALKER = int(ActorType.WALKER)
_RED, _OFF, _STOP = int(LightState.RED), int(LightState.OFF), int(LightState.STOP)


#: half height (m) of a walker's box
WALKER_HALF_HEIGHT_M = 0.9


@numba.njit(cache=True)
def _pack_actors(hidden, vehicles, walkers):
    """The arrays of :class:`Actors`: the vehicles that are not hidden (scripted, not
    entered yet), then the walkers; new arrays every call (states are kept by callers).
    ``vehicles`` and ``walkers``: the column tuples of :func:`_actor_arrays`."""
    t_ids, t_type, tx, ty, tz, tyaw, tspeed, thl, thw, theight = vehicles
    w_ids, wx, wy, wz, wyaw, wvel, whl, whw = walkers
    n = 0
    for i in range(hidden.shape[0]):
        n += not hidden[i]
    total = n + w_ids.shape[0]
    ids = np.empty(total, np.int64)
    types = np.empty(total, np.int8)
    xyz = np.empty((total, 3))
    yaw = np.empty(total)
    half = np.empty((total, 3))
    vel = np.empty((total, 2))
    k = 0
    for i in range(hidden.shape[0]):
        if hidden[i]:
            continue
        ids[k], types[k], yaw[k] = t_ids[i], t_type[i], tyaw[i]
        xyz[k, 0], xyz[k, 1], xyz[k, 2] = tx[i], ty[i], tz[i]
        half[k, 0], half[k, 1], half[k, 2] = thl[i], thw[i], 0.5 * theight[i]
        vel[k, 0], vel[k, 1] = tspeed[i] * np.cos(tyaw[i]), tspeed[i] * np.sin(tyaw[i])
        k += 1
    for i in range(w_ids.shape[0]):
        ids[k], types[k], yaw[k] = w_ids[i], _WALKER, wyaw[i]
        xyz[k, 0], xyz[k, 1], xyz[k, 2] = wx[i], wy[i], wz[i]
        half[k, 0], half[k, 1], half[k, 2] = whl[i], whw[i], WALKER_HALF_HEIGHT_M
        vel[k, 0], vel[k, 1] = wvel[i, 0], wvel[i, 1]
        k += 1
    return ids, types, xyz, yaw, half, vel


@numba.njit(cache=True)
def _ego_touches(
    ex, ey, eyaw, ehl, ehw, ez, tx, ty, tz, tyaw, thl, thw, t_ids, t_type, wx, wy, wz, wyaw, whl, whw, w_ids
):
    """(K, 2) int64: (id, ActorType) of the vehicles, then the walkers, whose boxes overlap
    the ego's box (centre, yaw, half length, half width) on its level (height ``ez``)."""
    cars = overlapping_box(ex, ey, eyaw, ehl, ehw, tx, ty, tyaw, thl, thw, -1)
    walkers = overlapping_box(ex, ey, eyaw, ehl, ehw, wx, wy, wyaw, whl, whw, -1)
    out = np.empty((cars.shape[0] + walkers.shape[0], 2), np.int64)
    k = 0
    for j in cars:
        if abs(tz[j] - ez) < LEVEL_M:  # not a bridge over or under the ego
            out[k, 0], out[k, 1] = t_ids[j], t_type[j]
            k += 1
    for j in walkers:
        if abs(wz[j] - ez) < LEVEL_M:
            out[k, 0], out[k, 1] = w_ids[j], _WALKER
            k += 1
    return out[:k]


@numba.njit(cache=True)
def _npc_touches(tx, ty, tz, tyaw, thl, thw, wx, wy, wz, wyaw, whl, whw):
    """(K, 2) int64: the overlapping pairs (a, b), a < b, of the vehicles and walkers
    numbered vehicles first, on one level, leaving out pairs of two walkers."""
    n = tx.shape[0]
    z = np.concatenate((tz, wz))
    pairs = overlapping_pairs(
        np.concatenate((tx, wx)),
        np.concatenate((ty, wy)),
        np.concatenate((tyaw, wyaw)),
        np.concatenate((thl, whl)),
        np.concatenate((thw, whw)),
    )
    out = np.empty_like(pairs)
    k = 0
    for p in range(pairs.shape[0]):
        a, b = pairs[p, 0], pairs[p, 1]
        if a < n and abs(z[a] - z[b]) < LEVEL_M:
            out[k, 0], out[k, 1] = a, b
            k += 1
    return out[:k]


@numba.njit(cache=True)
def _actor_arrays(ego, hidden, vehicles, walkers):
    """One call for what the tick needs of the actors' boxes: the arrays of :class:`Actors`
    (:func:`_pack_actors`), the ego's contacts (:func:`_ego_touches`; the ego's box and
    height first) and the touching NPC pairs (:func:`_npc_touches`).

    ``ego``: (x, y, yaw, half length, half width, height); ``vehicles``: (ids, type, x, y,
    z, yaw, speed, half length, half width, height); ``walkers``: (ids, x, y, z, yaw,
    velocity, half length, half width)."""
    t_ids, t_type, tx, ty, tz, tyaw, _, thl, thw, _ = vehicles
    w_ids, wx, wy, wz, wyaw, _, whl, whw = walkers
    ids, types, xyz, yaw, half, vel = _pack_actors(hidden, vehicles, walkers)
    touches = _ego_touches(*ego, tx, ty, tz, tyaw, thl, thw, t_ids, t_type, wx, wy, wz, wyaw, whl, whw, w_ids)
    pairs = _npc_touches(tx, ty, tz, tyaw, thl, thw, wx, wy, wz, wyaw, whl, whw)
    return ids, types, xyz, yaw, half, vel, touches, pairs


@numba.njit(cache=True)
def _nearest_route_point(xyz, hint, x, y):
    """(index, distance) of the route point nearest (x, y): first in the window around
    ``hint`` (10 back, 40 ahead), over the whole route when that one is over 4 m away."""
    lo, hi = max(0, hint - 10), min(xyz.shape[0], hint + 40)
    i, dist = lo, math.hypot(xyz[lo, 0] - x, xyz[lo, 1] - y)
    for p in range(lo + 1, hi):
        d = math.hypot(xyz[p, 0] - x, xyz[p, 1] - y)
        if d < dist:
            i, dist = p, d
    if dist > 4.0:
        i, dist = 0, math.hypot(xyz[0, 0] - x, xyz[0, 1] - y)
        for p in range(1, xyz.shape[0]):
            d = math.hypot(xyz[p, 0] - x, xyz[p, 1] - y)
            if d < dist:
                i, dist = p, d
    return i, dist


@numba.njit(cache=True)
def _route_claim(i, s, jl, junction_start, entry_row, states, half_len, speed):
    """The junction lanes (-1 padded, at most 6) the ego at route point i claims: those
    of the next junction on its route, once it is within its claim distance and the
    light of its entry lane (signal row ``entry_row[i]``) is not red; those it is on."""
    claim = np.full(6, -1, np.int64)
    j, n = junction_start[i], jl.shape[0]
    if j >= n:
        return claim
    if jl[i] < 0:
        ahead = s[j] - s[i] - half_len
        if ahead > EGO_CLAIM_M + speed * speed / 6.0 or (speed < 0.5 and ahead > 3.0):
            return claim
        if entry_row[i] >= 0 and states[entry_row[i]] == _RED:
            return claim
    k, last = 0, -2
    while j < n and jl[j] >= 0 and k < claim.shape[0]:
        if jl[j] != last:
            claim[k] = last = jl[j]
            k += 1
        j += 1
    return claim


@numba.njit(cache=True)
def _ego_on_route(
    xyz, hint, s, lane, lane_s, jl, junction_start, entry_row, states, cx, cy, yaw, speed, half_len, half_wid
):
    """The route part of :meth:`EmbeddedBackend._ego_on_lanes` in one call: the route point
    i nearest the ego's centre (:func:`_nearest_route_point` from ``hint``), its distance,
    the ego's vector (height from point i) and its junction claim. Within 3 m of the route
    the vector's lane and s are point i's and the claim :func:`_route_claim`'s; farther
    off, lane -1 and no claim (the caller looks for the lane under the ego)."""
    i, dist = _nearest_route_point(xyz, hint, cx, cy)
    vec = np.empty(11)
    vec[0], vec[1], vec[2], vec[3], vec[4], vec[5] = -1.0, 0.0, half_len, speed, cx, cy
    vec[6], vec[7], vec[8], vec[9], vec[10] = yaw, half_wid, xyz[i, 2], -1.0, 0.0
    if dist > 3.0:
        claim = np.full(6, -1, np.int64)
    else:
        vec[0], vec[1] = lane[i], lane_s[i]
        claim = _route_claim(i, s, jl, junction_start, entry_row, states, half_len, speed)
    return i, dist, vec, claim


@numba.njit(cache=True)
def _vehicles_and_ego(x, y, speed, half_len, ex, ey, e_speed, e_half_len):
    """(4, N+1): the NPCs' x, y, speed and half length, then the ego's."""
    n = x.shape[0]
    out = np.empty((4, n + 1))
    out[0, :n], out[1, :n], out[2, :n], out[3, :n] = x, y, speed, half_len
    out[0, n], out[1, n], out[2, n], out[3, n] = ex, ey, e_speed, e_half_len
    return out


@numba.njit(cache=True)
def _set_lane_states(states, signal_lane, lane_state):
    """The light of each signal row on its entry lane; a dark light is an all-way stop."""
    for r in range(states.shape[0]):
        lane_state[signal_lane[r]] = _STOP if states[r] == _OFF else states[r]


@dataclass
class MapAssets:
    """Everything built once per map: the map, lane table, junctions, planner, walkways."""

    road_map: RoadMap
    table: LaneTable
    junctions: JunctionIndex
    junction_lanes: JunctionLanes
    planner: RoutePlanner
    walkways: WalkerNetwork

    @classmethod
    def build(cls, road_map: RoadMap) -> MapAssets:
        table = LaneTable.from_road_map(road_map)
        junctions = JunctionIndex(road_map)
        jl = np.array([junctions.lane_index.get(k, -1) for k in table.keys], dtype=np.int64)
        conflict = np.ascontiguousarray(junctions.conflicts, dtype=np.bool_)
        return cls(
            road_map=road_map,
            table=table,
            junctions=junctions,
            junction_lanes=JunctionLanes(jl, conflict),
            planner=RoutePlanner(road_map),
            walkways=WalkerNetwork.from_road_map(road_map),
        )


@dataclass
class _RouteIndex:
    """Per route point: table lane, s along that lane, and the junction lanes claimed."""

    lane: np.ndarray  # (N,) int64
    lane_s: np.ndarray  # (N,)
    jl: np.ndarray  # (N,) int64, junction-lane number or -1
    junction_start: np.ndarray  # (N,) index of the next route point on a junction lane (N if none)
    entry_lane: np.ndarray  # (N,) table lane the route leaves into that junction (-1 if none)

    @classmethod
    def build(cls, route: DenseRoute, assets: MapAssets) -> _RouteIndex:
        table, rm = assets.table, assets.road_map
        n = len(route.s_m)
        lane = np.array([table.index[tuple(k)] for k in route.lane_keys], dtype=np.int64)
        lane_s = np.empty(n)
        for i in range(n):
            key = route.lane_keys[i]
            lane_s[i] = rm.distance_along_lane(key, route.xyz_m[i, 0], route.xyz_m[i, 1])
        jl = assets.junction_lanes.jl_index[lane]
        junction_start = np.full(n, n, np.int64)
        entry_lane = np.full(n, -1, np.int64)
        nxt, entry = n, -1
        for i in range(n - 1, -1, -1):
            if jl[i] >= 0:
                nxt = i
                entry = lane[i - 1] if i > 0 and jl[i - 1] < 0 else entry
            junction_start[i] = nxt
            entry_lane[i] = entry
        return cls(lane, lane_s, jl, junction_start, entry_lane)


@dataclass
class _Ego:
    params: VehicleParams
    x: np.ndarray = field(default_factory=lambda: np.zeros(1))  # rear axle
    y: np.ndarray = field(default_factory=lambda: np.zeros(1))
    yaw: np.ndarray = field(default_factory=lambda: np.zeros(1))
    speed: np.ndarray = field(default_factory=lambda: np.zeros(1))
    steer: np.ndarray = field(default_factory=lambda: np.zeros(1))
    target_steer: np.ndarray = field(default_factory=lambda: np.zeros(1))
    accel_cmd: np.ndarray = field(default_factory=lambda: np.zeros(1))
    accel: float = 0.0

    def __post_init__(self) -> None:
        p = self.params  # step_vehicles' per-vehicle parameter arrays, built once
        self.limits = (
            np.array([p.wheelbase_m]),
            np.array([p.max_steer_rate_radps]),
            np.array([p.max_speed_mps]),
        )
        self._centre: tuple[float, float] | None = None  # until the ego moves

    def centre(self) -> tuple[float, float]:
        if self._centre is None:
            d = self.params.rear_axle_to_centre_m
            self._centre = self.x[0] + d * math.cos(self.yaw[0]), self.y[0] + d * math.sin(self.yaw[0])
        return self._centre

    def place(self, cx: float, cy: float, yaw: float, speed: float = 0.0) -> None:
        d = self.params.rear_axle_to_centre_m
        self.x[0], self.y[0] = cx - d * math.cos(yaw), cy - d * math.sin(yaw)
        self.yaw[0], self.speed[0] = yaw, speed
        self.steer[0] = self.target_steer[0] = self.accel_cmd[0] = 0.0
        self.accel = 0.0
        self._centre = None

    def step(self, target_steer_rad: float, accel_mps2: float, dt_s: float, substeps: int) -> None:
        """Drive for ``dt_s`` (:func:`step_vehicles`); ``accel`` becomes the realised acceleration."""
        self.target_steer[0], self.accel_cmd[0] = target_steer_rad, accel_mps2
        wheelbase, steer_rate, max_speed = self.limits
        self.accel = step_vehicles(
            self.x, self.y, self.yaw, self.speed, self.steer, self.target_steer, self.accel_cmd,
            wheelbase, steer_rate, max_speed, dt_s, substeps,
        )[0]  # fmt: skip
        self._centre = None


class EmbeddedBackend(Backend):
    """loopdrive's own simulator behind the backend seam."""

    def __init__(
        self,
        *,
        map_cache: dict[str, MapAssets] | None = None,
        signal_config: SignalConfig | None = None,
        infraction_config: InfractionConfig | None = None,
    ):
        self._maps = map_cache if map_cache is not None else {}
        self.signal_config = signal_config or SignalConfig()
        self.infraction_config = infraction_config or InfractionConfig()
        self.assets: MapAssets | None = None
        self.scenario: Scenario | None = None
        self.route: DenseRoute | None = None
        self.monitor: InfractionMonitor | None = None
        self._state: WorldState | None = None
        self._control = Control()
        self._seen_npc_pairs: set[tuple[int, int]] = set()
        self.events = EventRunner((), self)

    # -- building a world -------------------------------------------------------------

    def assets_for(self, map_spec: str) -> MapAssets:
        if map_spec not in self._maps:
            self._maps[map_spec] = MapAssets.build(load_map(map_spec))
        return self._maps[map_spec]

    @property
    def road_map(self) -> RoadMap:
        if self.assets is None:
            raise RuntimeError("reset the backend before reading its map")
        return self.assets.road_map

    def reset(self, scenario: Scenario, seed: int) -> WorldState:
        self.scenario = scenario
        self.episode_seed = int(seed)
        self.assets = assets = self.assets_for(scenario.map)
        self.dt_s = scenario.world.dt_s
        rng = np.random.default_rng(seed)
        self.signals = TrafficSignals(
            assets.road_map, self.signal_config, int(seed), junctions=assets.junctions
        )
        self._ego = _Ego(VEHICLE_PARAMS[scenario.world.ego_type])
        self.events = EventRunner(scenario.events, self)
        self._plan_with_events(scenario, rng)
        self._ego.place(self.route.xyz_m[0, 0], self.route.xyz_m[0, 1], float(self.route.yaw_rad[0]))
        self._hint = 0
        self._signal_lane = np.array(
            [assets.table.index[tuple(k)] for k in self.signals.lanes], dtype=np.int64
        )
        self._lane_state = np.full(len(assets.table), -1, np.int8)
        row_of_lane = np.full(len(assets.table), -1, np.int64)
        for key, row in self.signals.controlled_index.items():
            row_of_lane[assets.table.index[key]] = row
        ri = self._route_index  # the signal row of the lane each route point enters its junction from
        self._entry_row = np.where(ri.entry_lane >= 0, row_of_lane[ri.entry_lane], -1)
        self._route_start_xy = self.route.xyz_m[:1, :2]
        self._substeps = scenario.world.substeps
        # per route point: the route changes lanes there (commands 5, 6), so the ego's front
        # may be over the next lane already
        self._changing_lane = np.isin(self.route.command, (5, 6)).tolist()
        avoid = self.route.xyz_m[: min(len(self.route.s_m), 40), :2]
        self.traffic = Traffic(assets.table, assets.junction_lanes, scenario.traffic, rng)
        self.traffic.spawn(self.traffic.target_count(assets.road_map.driving_lane_km), avoid)
        self.events.setup_vehicles()
        self.walkers = Walkers(assets.walkways, scenario.traffic, rng, first_id=len(self.traffic) + 1)
        self.walkers.spawn(avoid)
        self.events.setup_walkers()
        self._tick, self._time = 0, 0.0
        self._control = Control()
        self._seen_npc_pairs = set()
        self.monitor = InfractionMonitor(assets.road_map, self.route, self.infraction_config)
        states = self.events.signal_states(self.signals.states(0.0))
        self._state = self._make_state(self.events.drain(0.0, self._ego_xyz()), states)
        self.monitor.update(self._state, ())
        return self._state

    def _plan_with_events(self, scenario: Scenario, rng: np.random.Generator) -> None:
        """Plan the route; with scripted events, draw random routes until every event
        finds its site on one (a fixed route that misses a site is a ConfigError)."""
        tries = 40 if scenario.route.is_random and self.events else 1
        for _ in range(tries):
            self.route = self._plan_route(scenario, rng)
            self._route_index = _RouteIndex.build(self.route, self.assets)
            self.route_view = RouteView.build(self.route, self._route_index)
            missing = self.events.unfit()
            if missing is None:
                return
        what = f"{tries} random routes" if tries > 1 else f"route {scenario.route.route_id or '(keypoints)'}"
        name = scenario.name or "(unnamed)"
        raise ConfigError(f"scenario {name}: {missing} finds no place on {what} of {self.road_map.name}")

    @property
    def route_hint(self) -> int:
        """Index of the route point nearest the ego (after the last tick)."""
        return self._hint

    @property
    def time_s(self) -> float:
        return self._time

    @property
    def ego_speed_mps(self) -> float:
        return float(self._ego.speed[0])

    def _ego_xyz(self) -> tuple[float, float, float]:
        cx, cy = self._ego.centre()
        return (cx, cy, self._ego_z())

    def _plan_route(self, scenario: Scenario, rng: np.random.Generator) -> DenseRoute:
        return plan_scenario_route(self.assets.planner, self.assets.road_map, scenario.route, rng)

    # -- stepping ---------------------------------------------------------------------

    def apply_control(self, control: Control) -> None:
        if not isinstance(control, Control):
            control = Control.from_array(control)
        self._control = control

    def tick(self) -> WorldState:
        if self._state is None:
            raise RuntimeError("reset the backend before ticking it")
        dt = self.dt_s
        self._step_ego(dt)
        self._time = round(self._time + dt, 9)
        self._tick += 1
        states = self.events.signal_states(self.signals.states(self._time))  # hook: forced lights
        _set_lane_states(states, self._signal_lane, self._lane_state)
        ego_vec, claim = self._ego_on_lanes(states)
        self.events.before_traffic(self._time, dt)  # hook: scripted vehicles
        t, e = self.traffic, self._ego
        t.step(dt, self._lane_state, ego_vec, claim, self.walkers.road_xy)
        t.respawn_dead(self._route_start_xy)
        ex, ey = e.centre()
        vehicles = Vehicles(*_vehicles_and_ego(t.x, t.y, t.speed, t.half_len, ex, ey, e.speed[0], ego_vec[2]))
        self.walkers.step(dt, self._time, states, self.signals, vehicles)
        self.events.after_walkers(dt)  # hook: scripted walkers
        actors, contacts, pairs = self._actors_and_touches()
        state = self._make_state((), states, actors)
        events = self.monitor.update(state, contacts) + self._npc_collisions(pairs)
        if self.events:
            events += self.events.drain(self._time, self._ego_xyz())
        if events:
            state = WorldState(
                state.tick, state.time_s, state.ego, state.actors, state.signals, tuple(events)
            )
        self._state = state
        return state

    def state(self) -> WorldState:
        if self._state is None:
            raise RuntimeError("reset the backend before reading its state")
        return self._state

    def close(self) -> None:
        self._state = None

    def _step_ego(self, dt: float) -> None:
        e = self._ego
        e.step(*control_to_physical(self._control.steer, self._control.accel, e.params), dt, self._substeps)

    def _ego_z(self) -> float:
        """The ego's height: the route's at its nearest route point (the ego drives on it)."""
        return float(self.route.xyz_m[self._hint, 2])

    def _ego_on_lanes(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ego as traffic sees it, and its junction claim.

        The vector is [lane, s, half length, speed, x, y, yaw, half width, z, lane 2,
        s 2]: the ego's lane (from its route, or the lane under it when it is off the
        route) and, where its front is over another lane (changing lanes, cutting a
        corner), that lane too, so vehicles there follow it as well.
        """
        e, ri = self._ego, self._route_index
        cx, cy = e.centre()
        yaw = float(e.yaw[0])
        half_len, half_wid = 0.5 * e.params.length_m, 0.5 * e.params.width_m
        i, dist, vec, claim = _ego_on_route(
            self.route.xyz_m, self._hint, self.route.s_m, ri.lane, ri.lane_s, ri.jl, ri.junction_start,
            self._entry_row, states, cx, cy, yaw, float(e.speed[0]), half_len, half_wid,
        )  # fmt: skip
        self._hint = i
        if dist > 3.0:  # off the route: place it on whatever lane it is on
            pos = self.road_map.lane_at(cx, cy, yaw_rad=yaw)
            if pos is not None:
                lane = self.assets.table.index[pos.key]
                vec[0], vec[1] = lane, pos.s_m
                claim[0] = self.assets.junction_lanes.jl_index[lane]
        if dist > 0.5 or self._changing_lane[i]:  # off the lane centre: what is under the front?
            fx, fy = cx + half_len * math.cos(yaw), cy + half_len * math.sin(yaw)
            pos = self.assets.road_map.lane_at(fx, fy, yaw_rad=yaw)
            if pos is not None and self.assets.table.index[pos.key] != int(vec[0]):
                vec[9], vec[10] = self.assets.table.index[pos.key], max(0.0, pos.s_m - half_len)
        return vec, claim

    def _actors_and_touches(self) -> tuple[Actors, list[tuple[int, int]], np.ndarray]:
        """The actors of the state; the ego's contacts, (actor id, ActorType) of every vehicle,
        then walker, its box overlaps; the touching NPC pairs (see :meth:`_npc_collisions`)."""
        t, w, e = self.traffic, self.walkers, self._ego
        cx, cy = e.centre()
        ego = (cx, cy, float(e.yaw[0]), 0.5 * e.params.length_m, 0.5 * e.params.width_m, self._ego_z())
        vehicles = (t.ids, t.type, t.x, t.y, t.z, t.yaw, t.speed, t.half_len, t.half_wid, t.height)
        walkers = (w.ids, w.x, w.y, w.z, w.yaw, w.velocity, w.half_len, w.half_wid)
        ids, types, xyz, yaw, half, vel, touches, pairs = _actor_arrays(ego, t.hidden, vehicles, walkers)
        actors = Actors(id=ids, type=types, xyz_m=xyz, yaw_rad=yaw, half_extent_m=half, velocity_mps=vel)
        contacts = [(a, b) for a, b in touches.tolist()] if len(touches) else []
        return actors, contacts, pairs

    def _npc_collisions(self, pairs: np.ndarray) -> list[Event]:
        """Touches between non-ego actors (vehicles and walkers), each pair once: no
        penalty, but a world where they happen is a bug worth seeing. ``pairs``: from
        :func:`_npc_touches`."""
        t, w = self.traffic, self.walkers
        if not len(pairs):
            return []
        n = len(t)
        out = []
        for a, b in pairs.tolist():  # a is a vehicle; b a vehicle (b < n) or walker b - n
            key = (int(t.ids[a]), int(t.ids[b] if b < n else w.ids[b - n]))
            if key not in self._seen_npc_pairs:
                self._seen_npc_pairs.add(key)
                other_type = int(t.type[b]) if b < n else int(ActorType.WALKER)
                out.append(
                    Event(
                        EventKind.NPC_COLLISION,
                        self._time,
                        (float(t.x[a]), float(t.y[a]), float(t.z[a])),
                        key[1],
                        other_type,
                        f"actor {key[0]} and actor {key[1]}",
                    )
                )
        return out

    def _make_state(
        self, events, states: np.ndarray | None = None, actors: Actors | None = None
    ) -> WorldState:
        e = self._ego
        cx, cy = e.centre()
        ego = EgoState(
            x_m=cx,
            y_m=cy,
            z_m=self._ego_z(),
            yaw_rad=float(e.yaw[0]),
            speed_mps=float(e.speed[0]),
            accel_mps2=float(e.accel),
            steer_rad=float(e.steer[0]),
            length_m=e.params.length_m,
            width_m=e.params.width_m,
            height_m=e.params.height_m,
        )
        if actors is None:
            actors = self._actors_and_touches()[0]
        sig = self.signals.signal_states(self._time, states) if len(self.signals) else SignalStates.empty()
        return WorldState(self._tick, self._time, ego, actors, sig, tuple(events))

    # -- helpers for drivers ------------------------------------------------------------

    def make_autopilot(self, config: AutopilotConfig | None = None) -> Autopilot:
        """The privileged autopilot for the current route."""
        if self.route is None:
            raise RuntimeError("reset the backend before asking for its autopilot")
        rm = self.road_map
        limits = np.array([rm.lanes[tuple(k)].speed_limit_mps for k in self.route.lane_keys])
        return Autopilot(self.route, limits, self._ego.params, config)
