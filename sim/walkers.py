"""Walkers: on sidewalks, crossing at junctions when their light allows, jaywalking
as a setting.

The walkway network is built once per map from the OpenDRIVE sidewalk lanes
(:mod:`sim.maps.odr`; the offline ``carla.Map`` exposes no sidewalks): each sidewalk
strip's centre line is an edge, strip ends within 1.5 m of each other are one node.
Crossing edges join sidewalk nodes near a junction across the road (a crosswalk);
each lists the signal rows whose stop lines it passes, and is walked only when all
of them are red (or, unsignalled, when no vehicle is close). Mid-block crossing
edges start from the middle of long sidewalk edges; walkers take them, without
waiting, with ``TrafficConfig.jaywalk_probability`` per minute.

Per tick a compiled kernel moves every walker along its edge; the few that reach a
node choose their next edge in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np

from sim.lanetable import segment_index, segment_index_near
from sim.maps.odr import read_opendrive, sample_lanes
from sim.maps.roadmap import RoadMap
from sim.scenario import TrafficConfig
from sim.state import LightState

__all__ = ["WalkerNetwork", "Walkers", "Vehicles"]

NODE_SNAP_M = 1.5
WALK_SPEED_MPS = (1.1, 1.6)
HALF_SIZE_M = 0.3
_KIND_SIDEWALK, _KIND_CROSSING, _KIND_JAYWALK = 0, 1, 2
_RED = int(LightState.RED)

#: the per-walker arrays of :class:`Walkers` are the rows of three blocks (floats, ints,
#: flags), as :class:`sim.traffic.Traffic`'s: each row is also an attribute of that name
FLOAT_ROWS = ("u", "direction", "speed", "pending_dir", "x", "y", "z", "yaw", "half_len", "half_wid")
INT_ROWS = ("edge", "pending", "_seg")
FLAG_ROWS = ("waiting", "_at_end", "scripted")
_U, _DIRECTION, _SPEED, _PENDING_DIR, _X, _Y, _Z, _YAW, _HALF_LEN, _HALF_WID = range(10)
_EDGE, _PENDING, _SEG = range(3)
_WAITING, _AT_END, _SCRIPTED = range(3)


@dataclass
class WalkerNetwork:
    """Edges (polylines) between nodes; edge kinds: sidewalk, crossing, jaywalk."""

    e_off: np.ndarray  # (E+1,) into the point arrays
    xy: np.ndarray  # (P, 2)
    z: np.ndarray  # (P,) height (m)
    s: np.ndarray  # (P,) distance along its edge
    length: np.ndarray  # (E,)
    kind: np.ndarray  # (E,) int8
    ends: np.ndarray  # (E, 2) node at s=0 and at s=length
    node_edges: list[list[int]] = field(default_factory=list)
    crossing_rows: dict[int, tuple[int, ...]] = field(
        default_factory=dict
    )  # edge -> signal rows (filled per world)
    crossing_stop_xy: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def edge_count(self) -> int:
        return len(self.length)

    @cached_property
    def chord_sq(self) -> np.ndarray:
        """(E,) squared length of each edge's chord (first point to last), for the
        crossing test of :func:`_may_cross`; computed as ``d @ d`` as numpy rounds it."""
        out = np.zeros(self.edge_count)
        for e in range(self.edge_count):
            d = self.xy[self.e_off[e + 1] - 1] - self.xy[self.e_off[e]]
            out[e] = float(d @ d)
        return out

    @property
    def sidewalk_km(self) -> float:
        return float(self.length[self.kind == _KIND_SIDEWALK].sum()) / 1000.0

    @classmethod
    def empty(cls) -> WalkerNetwork:
        z = np.zeros(0)
        return cls(
            np.zeros(1, np.int64), np.zeros((0, 2)), z, z, z, np.zeros(0, np.int8), np.zeros((0, 2), np.int64)
        )

    @classmethod
    def from_road_map(cls, road_map: RoadMap) -> WalkerNetwork:
        strips = [
            st
            for st in sample_lanes(read_opendrive(road_map.xodr_text, source=road_map.source), step_m=1.0)
            if st.lane_type == "sidewalk" and len(st.s_m) >= 2 and float(np.median(st.width_m)) > 0.8
        ]
        if not strips:
            return cls.empty()
        builder = _Builder()
        for st in strips:
            builder.add_sidewalk(np.column_stack([st.centre_xy_m, st.z_m]))
        builder.add_crossings(road_map)
        return builder.finish()


class _Builder:
    def __init__(self):
        self.nodes: list[np.ndarray] = []
        self.edges: list[tuple[np.ndarray, int, int, int]] = []

    def node(self, p: np.ndarray) -> int:
        p = p[:2]
        for i, q in enumerate(self.nodes):
            if (
                abs(q[0] - p[0]) < NODE_SNAP_M
                and abs(q[1] - p[1]) < NODE_SNAP_M
                and math.dist(q, p) < NODE_SNAP_M
            ):
                return i
        self.nodes.append(np.asarray(p, dtype=np.float64))
        return len(self.nodes) - 1

    def add_sidewalk(self, pts: np.ndarray) -> None:
        pts = np.asarray(pts, dtype=np.float64)
        length = float(np.hypot(*np.diff(pts[:, :2], axis=0).T).sum())
        if length < 0.5:
            return
        if length > 40.0:  # split long edges: their middle node starts a mid-block crossing
            mid = len(pts) // 2
            self.add_sidewalk(pts[: mid + 1])
            self.add_sidewalk(pts[mid:])
            return
        self.edges.append((pts, self.node(pts[0]), self.node(pts[-1]), _KIND_SIDEWALK))

    def add_crossings(self, road_map: RoadMap) -> None:
        nodes = np.array(self.nodes)
        self.node_z = np.zeros(len(nodes))
        for pts, a, b, _k in self.edges:
            self.node_z[a], self.node_z[b] = pts[0, 2], pts[-1, 2]
        degree = np.zeros(len(nodes), int)
        for _, a, b, _k in self.edges:
            degree[a] += 1
            degree[b] += 1
        junction_boxes = [
            (np.array(j.min_xy) - 15, np.array(j.max_xy) + 15) for j in road_map.junctions.values()
        ]
        seen: set[tuple[int, int]] = set()
        for a in range(len(nodes)):
            near_junction = any(
                np.all(nodes[a] >= lo) and np.all(nodes[a] <= hi) for lo, hi in junction_boxes
            )
            kind = _KIND_CROSSING if near_junction else _KIND_JAYWALK
            if kind == _KIND_JAYWALK and degree[a] != 2:
                continue
            self._cross_from(road_map, nodes, a, kind, seen)

    def _cross_from(self, road_map: RoadMap, nodes: np.ndarray, a: int, kind: int, seen: set) -> None:
        d = np.hypot(nodes[:, 0] - nodes[a, 0], nodes[:, 1] - nodes[a, 1])
        for b in np.argsort(d):
            if not 5.0 <= d[b] <= 25.0:
                continue
            key = (min(a, int(b)), max(a, int(b)))
            if key in seen:
                continue
            if self._crosses_road(road_map, nodes[a], nodes[b]):
                seen.add(key)
                n = max(2, int(math.ceil(d[b])) + 1)
                pa = np.array([*nodes[a], self.node_z[a]])
                pb = np.array([*nodes[b], self.node_z[b]])
                pts = np.linspace(pa, pb, n)
                self.edges.append((pts, a, int(b), kind))
                return  # one crossing per node: the nearest across the road

    @staticmethod
    def _crosses_road(road_map: RoadMap, p: np.ndarray, q: np.ndarray) -> bool:
        """The straight walk p -> q runs over driving lanes for most of its middle."""
        ts = np.linspace(0.3, 0.7, 5)
        on = [road_map.lane_at(*(p + t * (q - p))) is not None for t in ts]
        return sum(on) >= 4

    def finish(self) -> WalkerNetwork:
        counts = [len(e[0]) for e in self.edges]
        e_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        xyz = np.concatenate([e[0] for e in self.edges])
        s = np.concatenate(
            [
                np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(e[0][:, :2], axis=0).T))])
                for e in self.edges
            ],
        )
        length = np.array([s[e_off[i + 1] - 1] for i in range(len(self.edges))])
        node_edges: list[list[int]] = [[] for _ in self.nodes]
        for i, (_, a, b, _k) in enumerate(self.edges):
            node_edges[a].append(i)
            node_edges[b].append(i)
        return WalkerNetwork(
            e_off=e_off,
            xy=np.ascontiguousarray(xyz[:, :2]),
            z=np.ascontiguousarray(xyz[:, 2]),
            s=s,
            length=length,
            kind=np.array([e[3] for e in self.edges], np.int8),
            ends=np.array([[e[1], e[2]] for e in self.edges], np.int64),
            node_edges=node_edges,
        )


@numba.njit(cache=True)
def _edge_pose(e_off, pxy, ps, edge, u):
    return _pose_in_segment(pxy, ps, segment_index(ps, e_off[edge], e_off[edge + 1] - 1, u), u)


@numba.njit(cache=True)
def _pose_in_segment(pxy, ps, a, u):
    """(x, y, heading) at ``u`` along the edge segment that starts at point ``a``."""
    b = a + 1
    ds = ps[b] - ps[a]
    t = 0.0 if ds <= 0 else min(1.0, max(0.0, (u - ps[a]) / ds))
    x = pxy[a, 0] + t * (pxy[b, 0] - pxy[a, 0])
    y = pxy[a, 1] + t * (pxy[b, 1] - pxy[a, 1])
    return x, y, np.arctan2(pxy[b, 1] - pxy[a, 1], pxy[b, 0] - pxy[a, 0])


@numba.njit(cache=True)
def _edge_z(e_off, pz, ps, edge, u):
    return pz[segment_index(ps, e_off[edge], e_off[edge + 1] - 1, u)]


@numba.njit(cache=True)
def _walk(fl, ints, flags, vel, e_off, pxy, pz, ps, length, dt):
    """Move every walker along its edge; flag those that reached an end (returns how many).
    ``fl``, ``ints``, ``flags``: the blocks of :data:`FLOAT_ROWS`, :data:`INT_ROWS`,
    :data:`FLAG_ROWS`; ``_seg`` is the segment each walker was on (a search hint, updated)."""
    u, direction, speed, x, y, z, yaw = fl[_U], fl[_DIRECTION], fl[_SPEED], fl[_X], fl[_Y], fl[_Z], fl[_YAW]
    edge, seg, waiting, at_end = ints[_EDGE], ints[_SEG], flags[_WAITING], flags[_AT_END]
    ends = 0
    for i in range(edge.shape[0]):
        at_end[i] = False
        if waiting[i]:
            vel[i, 0] = vel[i, 1] = 0.0
            continue
        e = edge[i]
        u[i] += direction[i] * speed[i] * dt
        if u[i] >= length[e]:
            u[i] = length[e]
            at_end[i] = True
            ends += 1
        elif u[i] <= 0.0:
            u[i] = 0.0
            at_end[i] = True
            ends += 1
        seg[i] = segment_index_near(ps, e_off[e], e_off[e + 1] - 1, u[i], seg[i])
        nx, ny, h = _pose_in_segment(pxy, ps, seg[i], u[i])
        vel[i, 0], vel[i, 1] = (nx - x[i]) / dt, (ny - y[i]) / dt
        x[i], y[i] = nx, ny
        z[i] = pz[seg[i]]
        yaw[i] = h if direction[i] > 0 else h + np.pi
    return ends


@numba.njit(cache=True)
def _on_road(kind, fl, ints, flags, velocity):
    """(K, 2) positions of the walkers out on the road (see :attr:`Walkers.road_xy`)."""
    x, y, edge, waiting, scripted = fl[_X], fl[_Y], ints[_EDGE], flags[_WAITING], flags[_SCRIPTED]
    out = np.empty((edge.shape[0], 2))
    k = 0
    for i in range(edge.shape[0]):
        off_sidewalk = kind.shape[0] > 0 and kind[edge[i]] != _KIND_SIDEWALK
        walking_script = scripted[i] and (velocity[i, 0] != 0.0 or velocity[i, 1] != 0.0)
        if (off_sidewalk and not waiting[i]) or walking_script:
            out[k, 0], out[k, 1] = x[i], y[i]
            k += 1
    return out[:k].copy()


@numba.njit(cache=True)
def _may_cross(edge, e_off, pxy, length, chord_sq, states, stop_xy, vx, vy, vspeed, vhalf_len):
    """No vehicle within 20 m of the crossing ``edge`` faster than 1 m/s, none standing
    on it, and then: signalised, every light whose stop line lies near the crossing is
    red; unsignalled, no vehicle within 6 m. ``states``/``stop_xy``: the signal rows;
    ``vx``..``vhalf_len``: the vehicles (the NPCs and the ego)."""
    lo, hi = e_off[edge], e_off[edge + 1]
    mid = (lo + hi - 1) // 2
    mx, my = pxy[mid, 0], pxy[mid, 1]
    half = 0.5 * length[edge]
    ax, ay = pxy[lo, 0], pxy[lo, 1]
    dx, dy = pxy[hi - 1, 0] - ax, pxy[hi - 1, 1] - ay
    ll = chord_sq[edge]
    for j in range(vx.shape[0]):  # never step out in front of a moving vehicle (turning ones too)
        if math.hypot(vx[j] - mx, vy[j] - my) < half + 20.0 and vspeed[j] > 1.0:
            return False
    for j in range(vx.shape[0]):  # a vehicle stands on the crossing: no walking through it
        t = 0.0
        if ll != 0.0:
            t = ((vx[j] - ax) * dx + (vy[j] - ay) * dy) / ll
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        if math.hypot(vx[j] - (ax + t * dx), vy[j] - (ay + t * dy)) < vhalf_len[j] + 1.0:
            return False
    near = False
    for r in range(stop_xy.shape[0]):
        if math.hypot(stop_xy[r, 0] - mx, stop_xy[r, 1] - my) < half + 8.0:
            if states[r] != _RED:
                return False
            near = True
    clear = True  # signalised: every near light is red; unsignalled: no vehicle close
    for j in range(0 if near else vx.shape[0]):
        if math.hypot(vx[j] - mx, vy[j] - my) < half + 6.0:
            clear = False
            break
    return clear


@numba.njit(cache=True)
def _crossers(ints, flags, e_off, pxy, length, chord_sq, states, stop_xy, vx, vy, vspeed, vhalf_len):
    """Indices of the waiting (unscripted) walkers whose crossing is clear now."""
    pending, waiting, scripted = ints[_PENDING], flags[_WAITING], flags[_SCRIPTED]
    out = np.empty(waiting.shape[0], np.int64)
    k = 0
    for i in range(waiting.shape[0]):
        if (
            waiting[i]
            and not scripted[i]
            and _may_cross(
                pending[i], e_off, pxy, length, chord_sq, states, stop_xy, vx, vy, vspeed, vhalf_len
            )
        ):
            out[k] = i
            k += 1
    return out[:k]


@dataclass(frozen=True)
class Vehicles:
    """Where the vehicles are, for walkers deciding to cross (arrays of length N)."""

    x: np.ndarray
    y: np.ndarray
    speed: np.ndarray
    half_len: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


class Walkers:
    """The walkers of one world (struct of arrays)."""

    def __init__(
        self, network: WalkerNetwork, config: TrafficConfig, rng: np.random.Generator, *, first_id: int
    ):
        self.net = network
        self.config = config
        self._rng = rng
        self._first_id = first_id
        self._alloc(0)

    def _alloc(self, n: int) -> None:
        self.ids = np.arange(self._first_id, self._first_id + n, dtype=np.int64)
        self._f = np.zeros((len(FLOAT_ROWS), n))
        self._i = np.zeros((len(INT_ROWS), n), np.int64)
        self._b = np.zeros((len(FLAG_ROWS), n), np.bool_)
        for block, names in ((self._f, FLOAT_ROWS), (self._i, INT_ROWS), (self._b, FLAG_ROWS)):
            for row, name in zip(block, names, strict=True):
                setattr(self, name, row)
        self.velocity = np.zeros((n, 2))
        self.direction[:] = self.pending_dir[:] = 1.0
        self.pending[:] = -1  # crossing edge a waiting walker will take
        self.half_len[:] = self.half_wid[:] = HALF_SIZE_M
        # _seg: the edge segment under each walker at the last step (a search hint);
        # scripted: moved by a scripted event (sim.events), not by step

    def add_scripted(self, x: float, y: float, z: float, yaw_rad: float) -> int:
        """Append a walker standing at (x, y, z) that only a scripted event moves (it keeps
        its pose until the script sets ``x``, ``y``, ``yaw`` and ``velocity``); returns its index."""
        n = len(self)
        old = (self._f, self._i, self._b, self.velocity)
        self._alloc(n + 1)
        for block, arr in zip((self._f, self._i, self._b), old[:3], strict=True):
            block[:, :n] = arr
        self.velocity[:n] = old[3]
        self.x[n], self.y[n], self.z[n], self.yaw[n] = x, y, z, yaw_rad
        self.waiting[n] = self.scripted[n] = True
        self.speed[n] = 0.0
        return n

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def xy(self) -> np.ndarray:
        return np.stack([self.x, self.y], axis=1) if len(self) else np.zeros((0, 2))

    @property
    def road_xy(self) -> np.ndarray:
        """Positions of the walkers out on the road (crossing, not waiting at the curb):
        the ones vehicles must brake for."""
        return _on_road(self.net.kind, self._f, self._i, self._b, self.velocity)

    def target_count(self) -> int:
        c = self.config
        if c.walker_count >= 0:
            return c.walker_count if self.net.edge_count else 0
        return min(c.max_walkers, int(round(c.walkers_per_km * self.net.sidewalk_km)))

    def spawn(self, avoid_xy: np.ndarray, count: int | None = None) -> None:
        n = self.target_count() if count is None else count
        sidewalks = (
            np.flatnonzero(self.net.kind == _KIND_SIDEWALK) if self.net.edge_count else np.zeros(0, int)
        )
        if len(sidewalks) == 0:
            self._alloc(0)
            return
        self._alloc(n)
        weights = self.net.length[sidewalks] / self.net.length[sidewalks].sum()
        for i in range(n):
            self.edge[i] = int(self._rng.choice(sidewalks, p=weights))
            self.u[i] = float(self._rng.uniform(0, self.net.length[self.edge[i]]))
            self.direction[i] = 1.0 if self._rng.random() < 0.5 else -1.0
            self.speed[i] = float(self._rng.uniform(*WALK_SPEED_MPS))
            self.x[i], self.y[i], h = _edge_pose(
                self.net.e_off, self.net.xy, self.net.s, self.edge[i], self.u[i]
            )
            self.yaw[i] = h if self.direction[i] > 0 else h + math.pi
            self.z[i] = _edge_z(self.net.e_off, self.net.z, self.net.s, self.edge[i], self.u[i])

    def step(
        self, dt_s: float, time_s: float, signal_states: np.ndarray, signals, vehicles: Vehicles
    ) -> None:
        """Advance every walker; choose new edges at nodes; cross when allowed.

        ``vehicles`` are all vehicles a walker must not step in front of (the NPCs and the ego)."""
        if len(self) == 0:
            return
        net = self.net
        ends = _walk(
            self._f, self._i, self._b, self.velocity, net.e_off, net.xy, net.z, net.s, net.length, dt_s
        )
        if ends:
            for i in np.flatnonzero(self._at_end):
                self._choose(int(i), dt_s)
        clear = _crossers(
            self._i,
            self._b,
            net.e_off,
            net.xy,
            net.length,
            net.chord_sq,
            signal_states,
            signals.stop_xy_m,
            vehicles.x,
            vehicles.y,
            vehicles.speed,
            vehicles.half_len,
        )
        for i in clear:
            self._start_edge(int(i), int(self.pending[i]), float(self.pending_dir[i]))
            self.waiting[i] = False

    def _node_here(self, i: int) -> int:
        e = self.edge[i]
        return int(self.net.ends[e, 1] if self.u[i] >= self.net.length[e] else self.net.ends[e, 0])

    def _choose(self, i: int, dt_s: float) -> None:
        net = self.net
        came = int(self.edge[i])
        node = self._node_here(i)
        options = [e for e in net.node_edges[node] if e != came] or [came]
        jay = [e for e in options if net.kind[e] == _KIND_JAYWALK]
        cross = [e for e in options if net.kind[e] == _KIND_CROSSING]
        walk = [e for e in options if net.kind[e] == _KIND_SIDEWALK]
        # jaywalk_probability is per minute; a walker reaches a node about every 20 s
        p_jay = 1.0 - (1.0 - self.config.jaywalk_probability) ** (1.0 / 3.0)
        r = self._rng.random()
        if jay and r < p_jay:
            nxt = jay[0]
        elif cross and (not walk or r < 0.4):
            nxt = cross[int(self._rng.integers(len(cross)))]
        elif walk:
            nxt = walk[int(self._rng.integers(len(walk)))]
        else:
            nxt = options[0]
        direction = 1.0 if net.ends[nxt, 0] == node else -1.0
        if net.kind[nxt] == _KIND_CROSSING:
            self.waiting[i] = True
            self.pending[i], self.pending_dir[i] = nxt, direction
            return
        self._start_edge(i, nxt, direction)

    def _start_edge(self, i: int, edge: int, direction: float) -> None:
        self.edge[i] = edge
        self.direction[i] = direction
        self.u[i] = 0.0 if direction > 0 else self.net.length[edge]
        self._seg[i] = self.net.e_off[edge] if direction > 0 else self.net.e_off[edge + 1] - 2
