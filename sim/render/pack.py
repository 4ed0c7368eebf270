"""World states to the kernels' flat arrays: ego poses, actor boxes, light states.

Every actor becomes a few boxes so its type reads at a glance (fractions of the
actor's half extents; heights as fractions of its full height):

* car: dark wheel block, body, a narrower glass cabin, head and tail lights;
* truck: wheel block, cab, a tall cargo box, lights;
* bicycle: a dark frame and a rider (shirt colour);
* walker: legs (trousers), torso (shirt) and head (skin) - a tall thin figure;
* static obstacle: one orange box.

Colours vary by actor id (a hash), never by frame, so an actor keeps its colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.errors import ConfigError
from sim.render import layout as L
from sim.state import ActorType

__all__ = ["Packed", "pack_states", "pack_into", "CAR_RGB", "SHIRT_RGB"]

CAR_RGB = np.array(
    [
        (236, 236, 232),
        (28, 28, 32),
        (170, 174, 180),
        (96, 100, 108),
        (176, 30, 34),
        (34, 70, 150),
        (20, 36, 80),
        (40, 110, 64),
        (228, 192, 40),
        (110, 74, 50),
        (222, 110, 30),
        (40, 140, 150),
    ],
    dtype=np.float64,
)
CARGO_RGB = np.array(
    [(232, 232, 228), (200, 202, 204), (214, 200, 170), (170, 40, 36), (60, 90, 150)], np.float64
)
SHIRT_RGB = np.array(
    [
        (220, 40, 40),
        (40, 90, 200),
        (250, 200, 40),
        (40, 160, 80),
        (240, 240, 240),
        (30, 30, 30),
        (230, 110, 30),
        (150, 60, 170),
        (60, 190, 200),
        (240, 120, 160),
    ],
    dtype=np.float64,
)
TROUSERS_RGB = np.array([(40, 46, 70), (30, 30, 30), (90, 80, 70), (70, 70, 76), (150, 130, 100)], np.float64)
SKIN_RGB = np.array([(236, 196, 164), (200, 150, 110), (150, 100, 70), (96, 64, 44)], np.float64)
GLASS_RGB = np.array([52.0, 62.0, 76.0])

# colour sources of a part
_BODY, _GLASS, _FIXED, _CARGO, _SHIRT, _TROUSERS, _SKIN = range(7)
# part: type, centre x, centre y (fractions of hx, hy), bottom, top (fractions of height),
#       half x, half y (fractions), colour source, material, fixed r, g, b
_PARTS = np.array(
    [
        (ActorType.CAR, 0.0, 0.0, 0.0, 0.26, 0.80, 0.97, _FIXED, L.MAT_PLAIN, 26, 26, 28),
        (ActorType.CAR, 0.0, 0.0, 0.16, 0.58, 1.0, 1.0, _BODY, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.CAR, -0.08, 0.0, 0.58, 1.0, 0.52, 0.88, _GLASS, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.CAR, 0.985, 0.68, 0.36, 0.48, 0.025, 0.2, _FIXED, L.MAT_NIGHT_LAMP, 255, 246, 214),
        (ActorType.CAR, 0.985, -0.68, 0.36, 0.48, 0.025, 0.2, _FIXED, L.MAT_NIGHT_LAMP, 255, 246, 214),
        (ActorType.CAR, -0.985, 0.72, 0.40, 0.52, 0.025, 0.18, _FIXED, L.MAT_NIGHT_LAMP, 240, 24, 20),
        (ActorType.CAR, -0.985, -0.72, 0.40, 0.52, 0.025, 0.18, _FIXED, L.MAT_NIGHT_LAMP, 240, 24, 20),
        (ActorType.TRUCK, 0.0, 0.0, 0.0, 0.16, 0.85, 0.96, _FIXED, L.MAT_PLAIN, 26, 26, 28),
        (ActorType.TRUCK, 0.79, 0.0, 0.12, 0.78, 0.21, 1.0, _BODY, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.TRUCK, 0.86, 0.0, 0.52, 0.74, 0.15, 1.005, _GLASS, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.TRUCK, -0.22, 0.0, 0.14, 1.0, 0.78, 1.0, _CARGO, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.TRUCK, 0.99, 0.7, 0.18, 0.24, 0.012, 0.16, _FIXED, L.MAT_NIGHT_LAMP, 255, 246, 214),
        (ActorType.TRUCK, 0.99, -0.7, 0.18, 0.24, 0.012, 0.16, _FIXED, L.MAT_NIGHT_LAMP, 255, 246, 214),
        (ActorType.TRUCK, -0.995, 0.75, 0.16, 0.22, 0.006, 0.14, _FIXED, L.MAT_NIGHT_LAMP, 240, 24, 20),
        (ActorType.TRUCK, -0.995, -0.75, 0.16, 0.22, 0.006, 0.14, _FIXED, L.MAT_NIGHT_LAMP, 240, 24, 20),
        (ActorType.BICYCLE, 0.0, 0.0, 0.0, 0.42, 1.0, 0.12, _FIXED, L.MAT_PLAIN, 40, 40, 46),
        (ActorType.BICYCLE, -0.15, 0.0, 0.30, 0.62, 0.2, 0.45, _TROUSERS, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.BICYCLE, -0.05, 0.0, 0.62, 0.90, 0.22, 0.55, _SHIRT, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.BICYCLE, 0.0, 0.0, 0.90, 1.0, 0.12, 0.28, _SKIN, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.WALKER, 0.0, 0.0, 0.0, 0.47, 0.55, 0.75, _TROUSERS, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.WALKER, 0.0, 0.0, 0.47, 0.84, 0.7, 1.0, _SHIRT, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.WALKER, 0.0, 0.0, 0.85, 1.0, 0.45, 0.45, _SKIN, L.MAT_PLAIN, 0, 0, 0),
        (ActorType.STATIC, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, _FIXED, L.MAT_PLAIN, 230, 120, 30),
    ],
    dtype=np.float64,
)
_TYPES = len(ActorType)
_PART_START = np.searchsorted(_PARTS[:, 0], np.arange(_TYPES + 1)).astype(np.int64)


@numba.njit(cache=True, _nrt=False)
def _hash(i, salt):
    h = (i * 2654435761 + salt * 40503) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 2246822519) & 0xFFFFFFFF
    return h ^ (h >> 13)


@numba.njit(cache=True, inline="always")
def _pick(palette, aid, salt):
    """The row of ``palette`` that actor ``aid`` takes (a hash, salted per part)."""
    k = _hash(aid, salt) % palette.shape[0]
    return palette[k, 0], palette[k, 1], palette[k, 2]


@numba.njit(cache=True, inline="always")
def _colour(src, aid, parts, k):
    """(r, g, b) of part ``k``: from its palette by the actor's id, or the part's fixed colour.

    Scalars, not rows: a row per part cost an allocation each (most of the packing time). The
    palettes are module constants (compiled in), so the hash's remainder is by a known size: no
    division instruction.
    """
    if src == _BODY:
        return _pick(CAR_RGB, aid, 1)
    if src == _GLASS:
        r, g, b = _pick(CAR_RGB, aid, 1)
        glass = GLASS_RGB
        return 0.3 * r + 0.7 * glass[0], 0.3 * g + 0.7 * glass[1], 0.3 * b + 0.7 * glass[2]
    if src == _CARGO:
        return _pick(CARGO_RGB, aid, 2)
    if src == _SHIRT:
        return _pick(SHIRT_RGB, aid, 3)
    if src == _TROUSERS:
        return _pick(TROUSERS_RGB, aid, 4)
    if src == _SKIN:
        return _pick(SKIN_RGB, aid, 5)
    return parts[k, 9], parts[k, 10], parts[k, 11]


# no reference counting (it never allocates): with it, every actor paid atomic counts on its arrays;
# no lock held: a thread may pack while Python steps the worlds
@numba.njit(cache=True, _nrt=False, nogil=True)
def _expand(ids, types, xyz, yaw, half, parts, part_start, out):
    """Write every actor's part boxes into ``out`` (world frame); returns the box count."""
    n = 0
    for a in range(len(ids)):
        t = types[a]
        c, s = np.cos(yaw[a]), np.sin(yaw[a])
        height = 2.0 * half[a, 2]
        for k in range(part_start[t], part_start[t + 1]):
            box = out[n]  # one row: fixed positions in it need no index arithmetic
            ox, oy = parts[k, 1] * half[a, 0], parts[k, 2] * half[a, 1]
            box[L.X] = xyz[a, 0] + c * ox - s * oy
            box[L.Y] = xyz[a, 1] + s * ox + c * oy
            box[L.Z] = xyz[a, 2] + parts[k, 3] * height
            box[L.YAW] = yaw[a]
            hx, hy = parts[k, 5] * half[a, 0], parts[k, 6] * half[a, 1]
            hz = 0.5 * (parts[k, 4] - parts[k, 3]) * height
            box[L.HX], box[L.HY], box[L.HZ] = hx, hy, hz
            box[L.R], box[L.G], box[L.B] = _colour(int(parts[k, 7]), ids[a], parts, k)
            box[L.MAT] = parts[k, 8]
            box[L.AUX] = 0.0
            box[L.AUX2] = 0.0
            box[L.RADIUS] = np.sqrt(hx**2 + hy**2 + hz**2)
            box[L.LOD_PX] = 0.0
            n += 1
    return n


@dataclass(frozen=True, eq=False)
class Packed:
    """A batch of states as arrays: ``ego`` (B, EGO_FIELDS), ``actors`` (A, BOX_FIELDS) world
    boxes of every frame, frame ``b``'s at ``actor_off[b]:actor_off[b + 1]``, ``sig`` (B, M) int8."""

    ego: np.ndarray
    actors: np.ndarray
    actor_off: np.ndarray
    sig: np.ndarray


def pack_states(states, signal_rows: int) -> Packed:
    """Pack a list of :class:`sim.state.WorldState` (light states must have ``signal_rows`` rows).

    Runs on every rendered step: few numpy calls, every per-state list built in one pass.
    """
    b = len(states)
    ego = np.array([(s.ego.x_m, s.ego.y_m, s.ego.z_m, s.ego.yaw_rad) for s in states], np.float64)
    ego = ego.reshape(b, L.EGO_FIELDS)
    if signal_rows:
        sig = np.array([_lights(s, signal_rows) for s in states], np.int8).reshape(b, signal_rows)
    else:
        sig = np.zeros((b, 0), np.int8)
    actors = [s.actors for s in states]
    if b == 1:
        a = actors[0]
        ids, types, xyz, yaw, half = a.id, a.type, a.xyz_m, a.yaw_rad, a.half_extent_m
        counts = np.array([len(ids)], np.int64)
    else:
        ids = np.concatenate([a.id for a in actors])
        types = np.concatenate([a.type for a in actors])
        xyz = np.concatenate([a.xyz_m for a in actors])
        yaw = np.concatenate([a.yaw_rad for a in actors])
        half = np.concatenate([a.half_extent_m for a in actors])
        counts = np.array([len(a.id) for a in actors], np.int64)
    ids, xyz, yaw, half = _actor_columns(ids, xyz, yaw, half)
    box_off = np.zeros(b + 1, np.int64)
    total = _box_offsets(types, counts, _PART_START, box_off)
    if total < 0:
        raise _type_error()
    actors = np.empty((total, L.BOX_FIELDS))
    _expand(ids, types, xyz, yaw, half, _PARTS, _PART_START, actors)
    return Packed(ego, actors, box_off, sig)


def pack_into(state, k: int, ego: np.ndarray, sig: np.ndarray, boxes: np.ndarray) -> int:
    """Pack one state into row ``k`` of ``ego`` (B, EGO_FIELDS) and ``sig`` (B, M) and into
    ``boxes[k]`` (B, capacity, BOX_FIELDS), as :func:`pack_states` packs a frame; returns its
    box count. When that is more than the capacity, ``boxes[k]`` is left as it was."""
    e = state.ego
    ego[k, L.EGO_X], ego[k, L.EGO_Y], ego[k, L.EGO_Z], ego[k, L.EGO_YAW] = e.x_m, e.y_m, e.z_m, e.yaw_rad
    if sig.shape[1]:
        sig[k] = _lights(state, sig.shape[1])
    a = state.actors
    ids, xyz, yaw, half = _actor_columns(a.id, a.xyz_m, a.yaw_rad, a.half_extent_m)
    n = _expand_fitting(ids, a.type, xyz, yaw, half, _PARTS, _PART_START, boxes[k])
    if n < 0:
        raise _type_error()
    return n


def _lights(state, signal_rows: int):
    light = state.signals.state
    if len(light) != signal_rows:
        raise ConfigError(
            f"the state has {len(light)} signal rows but the scene was built for {signal_rows}; "
            "build the StaticScene with this world's signals"
        )
    return light


def _actor_columns(ids, xyz, yaw, half):
    """The actor arrays as the kernels take them (types as they are: the kernels check them)."""
    f64 = np.float64
    return np.asarray(ids, np.int64), np.asarray(xyz, f64), np.asarray(yaw, f64), np.asarray(half, f64)


def _type_error() -> ConfigError:
    return ConfigError(f"actor types must be ActorType values 0..{_TYPES - 1}")


@numba.njit(cache=True, _nrt=False, inline="always")
def _parts_of(t, part_start):
    """How many boxes an actor of type ``t`` has; -1 for a type outside ActorType."""
    if t < 0 or t >= len(part_start) - 1:
        return -1
    return part_start[t + 1] - part_start[t]


@numba.njit(cache=True, _nrt=False, nogil=True)
def _expand_fitting(ids, types, xyz, yaw, half, parts, part_start, out):
    """:func:`_expand` into ``out`` if the boxes fit in it; returns their count either way
    (-1 for a type outside ActorType)."""
    n = 0
    for a in range(len(ids)):
        parts_a = _parts_of(types[a], part_start)
        if parts_a < 0:
            return -1
        n += parts_a
    if n <= len(out):
        _expand(ids, types, xyz, yaw, half, parts, part_start, out)
    return n


@numba.njit(cache=True, _nrt=False)
def _box_offsets(types, counts, part_start, box_off):
    """Frame ``b``'s boxes start at ``box_off[b]`` (the parts of its ``counts[b]`` actors); the total
    (-1 for a type outside ActorType)."""
    a = 0
    for b in range(len(counts)):
        n = 0
        for _ in range(counts[b]):
            parts_a = _parts_of(types[a], part_start)
            if parts_a < 0:
                return -1
            n += parts_a
            a += 1
        box_off[b + 1] = box_off[b] + n
    return box_off[len(counts)]
