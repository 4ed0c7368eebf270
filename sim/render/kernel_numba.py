"""The compiled CPU renderer: one numba kernel over frames x cameras.

Per (frame, camera), in this order (the torch path, :mod:`sim.render.kernel_torch`,
does the same math batched):

1. the depth buffer holds each pixel's ground distance (infinite where the pixel
   shows the background), and a coarse buffer the farthest depth of each
   ``TILE_PX`` square tile;
2. actor boxes, then static boxes grid cell by grid cell, near cells first: a box (or
   a whole cell) is skipped when its bounding sphere is beyond ``far_m``, outside
   the frustum's four side planes, narrower on screen than ``MIN_WIDTH_PX``, or
   behind every tile it may cover; otherwise it is ray-tested (exact slab test in
   the box's own frame) at each pixel of its screen rectangle whose depth is still
   beyond the box's nearest possible point, and a nearer hit takes the pixel (depth,
   box, face);
3. colouring: the background everywhere, then the pixels boxes took (listed while
   drawing): the box's surface (material, sun on the face, headlights, fog), then
   the ground pixels no box took (mip-level texel, precomputed light and fog);
4. the pixels boxes took get their ground depth back: the buffers are ready for the
   camera's next frame without a pass over every pixel.

Everything is float64, and the images are the same, bit for bit, as evaluating these
formulas pixel by pixel. The speed comes from doing less and waiting less, never from
other arithmetic: loops over contiguous tables that the compiler vectorises (culling,
texel indices, ground colour, fog and headlights), unsigned indices (no negative-index
check per access), no branches where they would be mispredicted, the frame's texels
prefetched, and a cheaper ``exp`` whose result is only used where it cannot change a
byte (:func:`_unsure`). Hot loops call only scalar helpers (numba inlines those; an
inlined helper that takes arrays costs reference counting on every pixel).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from sim.render import layout as L
from sim.render.tables import (
    HEADLIGHT_COS_INNER,
    HEADLIGHT_COS_OUTER,
    HEADLIGHT_TILT_RAD,
    HEADLIGHT_XYZ_M,
    POOL_RADIUS_M,
    POOL_SHARE,
)

__all__ = [
    "render_numba",
    "render_numba_serial",
    "serve_slots",
    "submit_slots",
    "restart_slots",
    "stop_slots",
    "fail_slots",
    "SEM_BYTES",
    "CTL_CLAIMED",
    "SEM_LOCK",
    "kernel_tables",
    "cull_table",
    "FOG_EMISSIVE",
    "DIM_LAMP",
    "DAY_LAMP",
    "WINDOW_RGB",
    "LIT_WINDOW_RGB",
    "MIN_WIDTH_PX",
    "MAT_EMISSIVE",
    "window_lit",
]

#: emissive surfaces take this share of the fog a plain surface would
FOG_EMISSIVE = 0.5
#: a traffic-light lamp that is off shows its colour times this
DIM_LAMP = 0.14
#: a street lamp or car light by day shows its colour times this
DAY_LAMP = 0.55
WINDOW_RGB = (58.0, 74.0, 92.0)
LIT_WINDOW_RGB = (250.0, 208.0, 140.0)
WINDOW_PERIOD_M = 3.0
FLOOR_M = 3.2
#: boxes narrower than this on screen (pixels, at their centre's distance) are not drawn:
#: point sampling would only make them flicker
MIN_WIDTH_PX = 0.3
#: a candidate's material once its lamp state is resolved for the frame: glows in its colour
MAT_EMISSIVE = 10
TILE_PX = L.TILE_PX
#: the tiles under a box are brought up to date once it took this many pixels: fewer rarely lower
#: a tile's farthest depth, and a tile left farther only culls less (the pixels come out the same)
TILE_UPDATE_PX = TILE_PX * TILE_PX // 2
#: ground pixels coloured at a time (their scratch stays in the first-level cache)
GROUND_CHUNK = 256
_HL_X, _HL_Y, _HL_Z = HEADLIGHT_XYZ_M
_HL_C, _HL_S = math.cos(HEADLIGHT_TILT_RAD), math.sin(HEADLIGHT_TILT_RAD)
_POOL_R2 = POOL_RADIUS_M * POOL_RADIUS_M
_BBOX_NEAR = 1e-3
#: 1 / k! for k = 0..11: the Taylor coefficients of :func:`_exp_neg`
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(12))
_EDGES = np.array(
    [[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7]]
)
# the kernel's pose tuple: (x, y, z, yaw, cos yaw, sin yaw) of the ego

#: the helpers below the kernel: compiled without the runtime's reference counting
#: (``_nrt=False``). They never allocate, and every array they touch lives in the
#: kernel's frame; with counting on, each call paid an atomic increment and decrement
#: per array argument (some 14 per drawn box, 10 per considered one): about a tenth of
#: the frame's time, measured with perf.
_helper = numba.njit(cache=True, _nrt=False)
#: per-pixel loops: also without the division-by-zero check (``error_model="numpy"``), which
#: would keep them from being vectorised; no divisor there can be zero
_pixels = numba.njit(cache=True, _nrt=False, error_model="numpy")


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask the cache for ``arr[idx]`` (1-d ``arr``) without waiting for it (LLVM's prefetch)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        aryty, idxty = sig.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ind = context.cast(builder, args[1], idxty, types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [ind])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        read, keep, data = (ir.Constant(i32, v) for v in (0, 3, 1))
        builder.call(fn, [builder.bitcast(ptr, cgutils.voidptr_t), read, keep, data])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


# -- scalar helpers (inlined) -------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def window_lit(building, face, column, floor):
    """Whether a window glows at night: a hash of its building, face, column and floor (40 %)."""
    h = (building * 7919 + face * 104729 + column * 613 + floor * 2731) & 0xFFFFF
    h = (h * 2654435761) & 0xFFFFFFFF
    return (h >> 16) % 100 < 40


@numba.njit(cache=True, inline="always")
def _window(face, ux, uy, uz, hx, hy, hz):
    """(is window, column, floor) of a box-local hit point on a building wall (column and floor
    mean nothing where it is no window). Free of branches: whether a pixel shows a window changes
    every few pixels, which a branch would mispredict."""
    side = face < 2
    u = uy + hy if side else ux + hx
    span = 2.0 * (hy if side else hx)
    v = uz + hz - 1.0  # the box starts a metre under ground
    fu = u / WINDOW_PERIOD_M
    fv = v / FLOOR_M
    col, flo = np.floor(fu), np.floor(fv)  # floats: no round trip through integers
    ok = (face < 4) & (fu - col > 0.25) & (fu - col < 0.75) & (fv - flo > 0.3) & (fv - flo < 0.78)
    ok = ok & (v > 2.5) & (u > 0.8) & (u < span - 0.8) & (v < 2.0 * hz - 2.0)
    return ok, int(col), int(flo)


@numba.njit(cache=True, inline="always")
def _exp_neg(x):
    """``exp(x)`` for ``x <= 0`` to within 1e-13 (absolute), in plain arithmetic that vectorises.

    ``exp(x / 128)`` by its Taylor polynomial (degree 11: the remainder is below 2e-16 on
    [-1/4, 0]), squared seven times; 0 below -32 (``exp(-32)`` < 2e-14). Its results differ from
    ``math.exp`` in the last bits, so the colouring only uses them where they cannot change a
    colour byte (:func:`_unsure`). Measured over 4M arguments: at most 1.4e-14 off.
    """
    y = max(x, -32.0) * 0.0078125
    e = _EXP_TAYLOR[11]
    for k in range(10, -1, -1):  # Horner
        e = _EXP_TAYLOR[k] + y * e
    for _ in range(7):
        e = e * e
    return e if x >= -32.0 else 0.0


@numba.njit(cache=True, inline="always")
def _headlight(px, py, pz, strength, range_m, exact):
    """Light of the ego's headlights at an ego-frame point (see :func:`sim.render.tables.headlight`);
    ``exact`` False: with :func:`_exp_neg` for ``math.exp``."""
    vx, vy, vz = px - _HL_X, py - _HL_Y, pz - _HL_Z
    dist = math.sqrt(vx * vx + vy * vy + vz * vz) + 1e-6
    cos_a = (vx * _HL_C - vz * _HL_S) / dist
    cone = min(1.0, max(0.0, (cos_a - HEADLIGHT_COS_OUTER) / (HEADLIGHT_COS_INNER - HEADLIGHT_COS_OUTER)))
    q = dist / range_m
    a = -(px * px + py * py) / _POOL_R2
    pool = POOL_SHARE * (math.exp(a) if exact else _exp_neg(a))
    return strength * (cone / (1.0 + q * q) + pool)


@numba.njit(cache=True, inline="always")
def _fog(t, fog_d, fog_norm, exact):
    """Share of fog in a surface ``t`` away; ``exact`` False: with :func:`_exp_neg` for ``math.exp``."""
    a = -t / fog_d
    return min(1.0, (1.0 - (math.exp(a) if exact else _exp_neg(a))) / fog_norm)


#: a colour channel whose value (before it is cut to a byte) lies within this of a whole number
#: may come out otherwise from exact and approximate ``exp``: such a pixel is redone exactly.
#: (The approximations move a value by less than 1e-9.)
UNSURE = 1e-6


@numba.njit(cache=True, inline="always")
def _unsure(v):
    """Whether ``uint8(min(255, v))`` may differ for a ``v`` within :data:`UNSURE` of this one."""
    frac = v - np.floor(v)
    return (v < 255.0 + UNSURE) & ((frac < UNSURE) | (frac > 1.0 - UNSURE))


@numba.njit(cache=True, inline="always")
def _to_ego(wx, wy, pose):
    """World (x, y) to the ego frame (relative to the ego box centre)."""
    dx, dy = wx - pose[0], wy - pose[1]
    return pose[4] * dx + pose[5] * dy, -pose[5] * dx + pose[4] * dy


@numba.njit(cache=True, inline="always")
def _pixel_range(lo, hi, centre, focal, n):
    """First and last pixel whose centre lies within [lo, hi] (image-plane units), one pixel of margin."""
    a = min(max(centre + focal * lo - 0.5, -2.0), n + 1.0)
    b = min(max(centre + focal * hi - 0.5, -2.0), n + 1.0)
    return max(0, int(math.floor(a)) - 1), min(n - 1, int(math.ceil(b)) + 1)


@numba.njit(cache=True, inline="always")
def _slab_axis(o, inv, half, axis, tmin, tmax, face):
    """One axis of the slab test of a box-local ray (origin ``o``, ``inv`` = 1 / its direction,
    the direction clamped to at least 1e-12 in size) into the box [-half, half]: the entry and exit
    distances so far and the face entered (+x, -x, +y, -y, top, bottom)."""
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    if t1 > t2:
        t1, t2 = t2, t1
    if t1 > tmin:
        tmin = t1
        face = 2 * axis + (1 if inv > 0.0 else 0)
    return tmin, min(tmax, t2), face


# -- culling -----------------------------------------------------------------------------


@_helper
def _sphere_visible(vx, vy, vz, radius, planes, far):
    """Whether a sphere at camera-relative ego-frame (vx, vy, vz) may show in the frustum within far."""
    if vx * vx + vy * vy + vz * vz > (far + radius) * (far + radius):
        return False
    for k in range(4):  # noqa: SIM110 - numba compiles loops, not all() over generators
        if planes[k, 0] * vx + planes[k, 1] * vy + planes[k, 2] * vz < -radius:
            return False
    return True


@_helper
def _occluded(tz, r0, r1, c0, c1, mind):
    """Whether every tile under the pixel rectangle is already nearer than ``mind``."""
    for tr in range(r0 // TILE_PX, r1 // TILE_PX + 1):
        for tc in range(c0 // TILE_PX, c1 // TILE_PX + 1):
            if tz[tr, tc] > mind:
                return False
    return True


@_helper
def _sphere_occluded(vx, vy, vz, radius, mind, axes, focal, tz, w, h):
    """Whether a sphere (camera-relative, ego frame) lies behind what the tiles already hold."""
    d = axes[0, 0] * vx + axes[1, 0] * vy + axes[2, 0] * vz
    near = d - radius
    if near <= _BBOX_NEAR:
        return False
    far = d + radius
    u = axes[0, 1] * vx + axes[1, 1] * vy + axes[2, 1] * vz
    v = axes[0, 2] * vx + axes[1, 2] * vy + axes[2, 2] * vz
    u_lo = (u - radius) / (near if u - radius < 0.0 else far)
    u_hi = (u + radius) / (near if u + radius > 0.0 else far)
    v_lo = (v - radius) / (near if v - radius < 0.0 else far)
    v_hi = (v + radius) / (near if v + radius > 0.0 else far)
    c0, c1 = _pixel_range(u_lo, u_hi, 0.5 * w, focal, w)
    r0, r1 = _pixel_range(-v_hi, -v_lo, 0.5 * h, focal, h)
    if r0 > r1 or c0 > c1:
        return True
    return _occluded(tz, r0, r1, c0, c1, mind)


@_pixels
def _update_tiles(tz, zbuf, r0, r1, c0, c1, w, h):
    """Recompute the farthest depth of the tiles under the rectangle.

    A whole tile's row of 8 depths is reduced by a tree of ``max`` (shorter chains than a running
    maximum; the order does not change the maximum).
    """
    for tr in range(r0 // TILE_PX, r1 // TILE_PX + 1):
        ra, rb = tr * TILE_PX, min(h, (tr + 1) * TILE_PX)
        for tc in range(c0 // TILE_PX, c1 // TILE_PX + 1):
            ca, cb = tc * TILE_PX, min(w, (tc + 1) * TILE_PX)
            m = 0.0
            if cb - ca == 8:
                for r in range(ra, rb):
                    q = np.uint64(r * w + ca)
                    m4 = max(max(zbuf[q], zbuf[q + 1]), max(zbuf[q + 2], zbuf[q + 3]))
                    n4 = max(max(zbuf[q + 4], zbuf[q + 5]), max(zbuf[q + 6], zbuf[q + 7]))
                    m = max(m, max(m4, n4))
            else:
                for r in range(ra, rb):
                    for c in range(ca, cb):
                        m = max(m, zbuf[r * w + c])
            tz[tr, tc] = m


@_helper
def _resolve(cb, n, sig_row, lamps_on):
    """Fix candidate ``n``'s lamp materials for this frame: glowing (``MAT_EMISSIVE``) or dimmed plain."""
    mat = int(cb[n, L.MAT])
    scale = 1.0
    if mat == L.MAT_SIGNAL_LAMP:
        row = int(cb[n, L.AUX])
        on = row < sig_row.shape[0] and sig_row[row] == int(cb[n, L.AUX2])
        cb[n, L.MAT] = MAT_EMISSIVE if on else L.MAT_PLAIN
        scale = 1.0 if on else DIM_LAMP
    elif mat == L.MAT_NIGHT_LAMP:
        cb[n, L.MAT] = MAT_EMISSIVE if lamps_on else L.MAT_PLAIN
        scale = 1.0 if lamps_on else DAY_LAMP
    cb[n, L.R] *= scale
    cb[n, L.G] *= scale
    cb[n, L.B] *= scale


@_helper
def _admit(boxes, i, vx, vy, vz, dist, view, tz, sig_row, lamps_on, cb, cd, n):
    """Copy box ``i`` (in view, wide enough, at camera-relative ``vx, vy, vz``, ``dist`` away) into
    the candidates unless the tiles hide it; returns the new candidate count."""
    mount, planes, axes, focal, far, w, h = view
    radius = boxes[i, L.RADIUS]
    mind = max(L.NEAR_M, dist - radius)
    if _sphere_occluded(vx, vy, vz, radius, mind, axes, focal, tz, w, h):
        return n
    for k in range(L.BOX_FIELDS):
        cb[n, k] = boxes[i, k]
    _resolve(cb, n, sig_row, lamps_on)
    cd[n] = mind
    return n + 1


@numba.njit(cache=True, inline="always")
def _cull_test(x, y, zc, radius, width2, lod_px, radius2, pose, mount, planes, focal, far):
    """Whether a box at world ``x, y`` and centre height ``zc`` (``width2`` twice its smaller half
    width, ``radius2`` twice its radius) may show: its bounding sphere within ``far`` and the
    frustum's side planes, the box wide enough on screen (``MIN_WIDTH_PX``, ``lod_px``). Free of
    branches: its camera-relative ego-frame centre and its distance, or -1 for the distance where
    a test fails."""
    dx, dy = x - pose[0], y - pose[1]
    vx, vy = pose[4] * dx + pose[5] * dy - mount[0], -pose[5] * dx + pose[4] * dy - mount[1]
    vz = zc - pose[2] - mount[2]
    r2 = vx * vx + vy * vy + vz * vz
    ok = not (r2 > (far + radius) * (far + radius))
    for k in range(4):
        ok = ok and not (planes[k][0] * vx + planes[k][1] * vy + planes[k][2] * vz < -radius)
    dist = math.sqrt(r2)
    ok = ok and not (width2 * focal < MIN_WIDTH_PX * dist)
    ok = ok and not (radius2 * focal < lod_px * dist)
    return vx, vy, vz, dist if ok else -1.0


@numba.njit(cache=True, inline="always")
def _cull_view(view):
    """The mount and the side planes of ``view`` as tuples of numbers (they stay in registers)."""
    mount, planes, axes, focal, far, w, h = view
    pl = (
        (planes[0, 0], planes[0, 1], planes[0, 2]),
        (planes[1, 0], planes[1, 1], planes[1, 2]),
        (planes[2, 0], planes[2, 1], planes[2, 2]),
        (planes[3, 0], planes[3, 1], planes[3, 2]),
    )
    return (mount[0], mount[1], mount[2]), pl, focal, far


@_pixels
def _cull(cull, a, n, pose, view, out):
    """:func:`_cull_test` of static boxes ``a:a + n`` into ``out`` (4, S): each box's camera-relative
    centre and distance (-1: culled). Free of branches, so the compiler vectorises it.

    ``cull`` (7, S): world x, y, centre z, radius, twice the smaller half width, level-of-detail
    pixels and twice the radius of every static box (:func:`cull_table`).
    """
    mnt, pl, focal, far = _cull_view(view)
    for k in range(n):
        i = _at(a, k)
        x, y, zc, radius = cull[0, i], cull[1, i], cull[2, i], cull[3, i]
        width2, lod_px, radius2 = cull[4, i], cull[5, i], cull[6, i]
        out[0, i], out[1, i], out[2, i], out[3, i] = _cull_test(
            x, y, zc, radius, width2, lod_px, radius2, pose, mnt, pl, focal, far
        )


@_pixels
def _cull_boxes(boxes, a, n, pose, view, out):
    """:func:`_cull_test` of boxes ``a:a + n`` of a (B, BOX_FIELDS) array into ``out[:, :n]``."""
    mnt, pl, focal, far = _cull_view(view)
    for k in range(n):
        b = boxes[_at(a, k)]
        width2, radius2 = 2.0 * min(b[L.HX], b[L.HY]), 2.0 * b[L.RADIUS]
        out[0, k], out[1, k], out[2, k], out[3, k] = _cull_test(
            b[L.X],
            b[L.Y],
            b[L.Z] + b[L.HZ],
            b[L.RADIUS],
            width2,
            b[L.LOD_PX],
            radius2,
            pose,
            mnt,
            pl,
            focal,
            far,
        )


# -- drawing -----------------------------------------------------------------------------


@_helper
def _bbox(cb, j, bx, by, cp, sp, pose, view, scratch):
    """Pixel rectangle (r0, r1, c0, c1) holding every pixel whose centre ray may hit candidate ``j``
    (centre ``bx, by`` and yaw cosine/sine ``cp, sp`` in the ego frame)."""
    mount, planes, axes, focal, far, w, h = view
    z_lo = cb[j, L.Z] - pose[2] - mount[2]
    z_hi = z_lo + 2.0 * cb[j, L.HZ]
    all_front = True
    for k in range(4):
        lx = cb[j, L.HX] if k & 1 else -cb[j, L.HX]
        ly = cb[j, L.HY] if k & 2 else -cb[j, L.HY]
        vx = bx + cp * lx - sp * ly - mount[0]
        vy = by + sp * lx + cp * ly - mount[1]
        d_xy = axes[0, 0] * vx + axes[1, 0] * vy
        u_xy = axes[0, 1] * vx + axes[1, 1] * vy
        v_xy = axes[0, 2] * vx + axes[1, 2] * vy
        for m in range(2):
            vz = z_hi if m else z_lo
            q = k + 4 * m
            scratch[q] = d_xy + axes[2, 0] * vz
            scratch[8 + q] = u_xy + axes[2, 1] * vz
            scratch[16 + q] = v_xy + axes[2, 2] * vz
            all_front = all_front and scratch[q] >= _BBOX_NEAR
    umin, umax, vmin, vmax = np.inf, -np.inf, np.inf, -np.inf
    for k in range(8):
        if scratch[k] >= _BBOX_NEAR:
            x, y = scratch[8 + k] / scratch[k], scratch[16 + k] / scratch[k]
            umin, umax, vmin, vmax = min(umin, x), max(umax, x), min(vmin, y), max(vmax, y)
    if not all_front:  # where an edge crosses the camera plane, its crossing bounds the picture
        for e in range(12):
            a, b = _EDGES[e, 0], _EDGES[e, 1]
            if (scratch[a] < _BBOX_NEAR) != (scratch[b] < _BBOX_NEAR):
                s = (_BBOX_NEAR - scratch[a]) / (scratch[b] - scratch[a])
                x = (scratch[8 + a] + s * (scratch[8 + b] - scratch[8 + a])) / _BBOX_NEAR
                y = (scratch[16 + a] + s * (scratch[16 + b] - scratch[16 + a])) / _BBOX_NEAR
                umin, umax, vmin, vmax = min(umin, x), max(umax, x), min(vmin, y), max(vmax, y)
    if umin > umax:
        return 0, -1, 0, -1
    c0, c1 = _pixel_range(umin, umax, 0.5 * w, focal, w)
    r0, r1 = _pixel_range(-vmax, -vmin, 0.5 * h, focal, h)
    return r0, r1, c0, c1


@_helper
def _face_lights(cb, j, wp, out):
    """Light on the six faces (+x, -x, +y, -y, top, bottom) of candidate ``j`` into ``out[j]``."""
    c, s = math.cos(cb[j, L.YAW]), math.sin(cb[j, L.YAW])
    sx, sy, sz = wp[L.W_SUN_X], wp[L.W_SUN_Y], wp[L.W_SUN_Z]
    amb, sun = wp[L.W_AMBIENT], wp[L.W_SUN]
    out[j, 0] = amb + sun * max(c * sx + s * sy, 0.0)
    out[j, 1] = amb + sun * max(-(c * sx + s * sy), 0.0)
    out[j, 2] = amb + sun * max(-s * sx + c * sy, 0.0)
    out[j, 3] = amb + sun * max(s * sx - c * sy, 0.0)
    out[j, 4] = amb + sun * max(sz, 0.0)
    out[j, 5] = amb + sun * max(-sz, 0.0)


@numba.njit(cache=True, inline="always")
def _box_distance(o, half):
    """A lower bound of every ray-test distance to a box from a camera at box-local ``o`` (half sizes
    ``half``): the distance to the box, less a margin far above the rounding of the test.

    Tighter than the bounding sphere's (the candidates' ``cd``, which orders them): a pixel whose
    depth is within it cannot be taken, so the ray test skips it (the same outcome, less work).
    """
    dx = max(abs(o[0]) - half[0], 0.0)
    dy = max(abs(o[1]) - half[1], 0.0)
    dz = max(abs(o[2]) - half[2], 0.0)
    return math.sqrt(dx * dx + dy * dy + dz * dz) * (1.0 - 1e-9)


@_pixels
def _draw_box(j, cb, cd, pose, view, rays, bufs, scratch, wp):
    """Ray-test candidate ``j`` in its screen rectangle; nearer hits take the pixel."""
    tz, flight = bufs[1], bufs[5]
    w, h = view[5], view[6]
    mount = view[0]
    bx, by = _to_ego(cb[j, L.X], cb[j, L.Y], pose)
    psi = cb[j, L.YAW] - pose[3]
    cp, sp = math.cos(psi), math.sin(psi)
    r0, r1, c0, c1 = _bbox(cb, j, bx, by, cp, sp, pose, view, scratch)
    if r0 > r1 or c0 > c1:
        return
    rx, ry = mount[0] - bx, mount[1] - by  # camera relative to the box centre, ego frame
    o = (cp * rx + sp * ry, -sp * rx + cp * ry, pose[2] + mount[2] - cb[j, L.Z] - cb[j, L.HZ])
    half = (cb[j, L.HX], cb[j, L.HY], cb[j, L.HZ])
    mind = max(cd[j], _box_distance(o, half))
    if _occluded(tz, r0, r1, c0, c1, mind):
        return
    zbuf, win, wface, won, nwon = bufs[0], bufs[2], bufs[3], bufs[8], bufs[9]
    ray_xs, ray_ys, rz_inv = rays[0], rays[1], rays[3]
    ox, oy, oz = o
    hx, hy, hz = half
    taken = 0
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            p = np.uint64(r * w + c)
            if zbuf[p] <= mind:
                continue
            ray_x, ray_y = ray_xs[p], ray_ys[p]
            dx, dy = cp * ray_x + sp * ray_y, -sp * ray_x + cp * ray_y
            inv_x = 1.0 / (dx if abs(dx) >= 1e-12 else 1e-12)
            inv_y = 1.0 / (dy if abs(dy) >= 1e-12 else 1e-12)
            tmin, tmax, face = _slab_axis(ox, inv_x, hx, 0, -np.inf, np.inf, -1)
            tmin, tmax, face = _slab_axis(oy, inv_y, hy, 1, tmin, tmax, face)
            tmin, tmax, face = _slab_axis(oz, rz_inv[p], hz, 2, tmin, tmax, face)
            if tmin <= tmax and tmin > L.NEAR_M and tmin < zbuf[p]:
                if win[p] < 0:  # first box on this pixel: the colouring visits it
                    won[nwon[0]] = p
                    nwon[0] += 1
                zbuf[p] = tmin
                win[p] = j
                wface[p] = face
                taken += 1
    if taken >= TILE_UPDATE_PX:
        _update_tiles(tz, zbuf, r0, r1, c0, c1, w, h)
    if taken > 0:
        _face_lights(cb, j, wp, flight)
        local = bufs[4]  # the colouring recomputes hit points on walls from these (the same numbers)
        local[j, 0], local[j, 1], local[j, 2], local[j, 3], local[j, 4] = ox, oy, oz, cp, sp


@_helper
def _draw_sorted(cb, cd, n0, n, pose, view, rays, bufs, scratch, wp):
    """Draw candidates ``n0:n`` near to far (a stable insertion sort of their indices: runs are short)."""
    order = bufs[6]
    for j in range(n0, n):
        k = j
        while k > n0 and cd[order[k - 1]] > cd[j]:
            order[k] = order[k - 1]
            k -= 1
        order[k] = j
    for j in range(n0, n):
        _draw_box(order[j], cb, cd, pose, view, rays, bufs, scratch, wp)


@_helper
def _visible_cells(pose, view, grid, gstart, gradius, gz, cells, cell_d):
    """Grid cells whose bounding sphere may show (``cells``, distance to the sphere ``cell_d``); the count."""
    mount, planes, axes, focal, far, w, h = view
    cw = pose[4] * mount[0] - pose[5] * mount[1] + pose[0]
    ch = pose[5] * mount[0] + pose[4] * mount[1] + pose[1]
    x0, y0, cell, rows, cols = grid[0], grid[1], grid[2], int(grid[3]), int(grid[4])
    c_lo, c_hi = max(0, int((cw - far - x0) / cell) - 1), min(cols - 1, int((cw + far - x0) / cell) + 1)
    r_lo, r_hi = max(0, int((ch - far - y0) / cell) - 1), min(rows - 1, int((ch + far - y0) / cell) + 1)
    m = 0
    for r in range(r_lo, r_hi + 1):
        for c in range(c_lo, c_hi + 1):
            k = r * cols + c
            if gstart[k] == gstart[k + 1]:
                continue
            ex, ey = _to_ego(x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell, pose)
            vx, vy, vz = ex - mount[0], ey - mount[1], gz[k] - pose[2] - mount[2]
            if _sphere_visible(vx, vy, vz, gradius[k], planes, far):
                cells[m] = k
                cell_d[m] = max(L.NEAR_M, math.sqrt(vx * vx + vy * vy + vz * vz) - gradius[k])
                m += 1
    return m


@_helper
def _draw_statics(statics, index, cb, cd, n, cells, cell_d, pose, view, rays, bufs, scratch, sig_row, wp):
    """Static boxes cell by cell, near cells first; cells hidden behind the tiles are skipped.

    ``statics`` is sorted by cell, so the boxes of a run of visible cells along a grid row are
    one range: their first tests run over it at once (:func:`_cull`).
    """
    grid, gstart, gradius, gz, cull = index
    culled = bufs[10]
    mount, planes, axes, focal, far, w, h = view
    tz = bufs[1]
    lamps_on = wp[L.W_LAMPS_ON] > 0.5
    m = _visible_cells(pose, view, grid, gstart, gradius, gz, cells, cell_d)
    j = 0
    while j < m:  # cells come in grid order: runs of them hold consecutive boxes
        a, e = gstart[cells[j]], gstart[cells[j] + 1]
        j += 1
        while j < m and gstart[cells[j]] == e:
            e = gstart[cells[j] + 1]
            j += 1
        _cull(cull, a, e - a, pose, view, culled)
    corder = bufs[7]
    for j in range(m):  # near to far, stable (an insertion sort: a few dozen cells)
        i = j
        while i > 0 and cell_d[corder[i - 1]] > cell_d[j]:
            corder[i] = corder[i - 1]
            i -= 1
        corder[i] = j
    x0, y0, cell, cols = grid[0], grid[1], grid[2], int(grid[4])
    for qq in range(m):
        q = corder[qq]
        k = cells[q]
        ex, ey = _to_ego(x0 + (k % cols + 0.5) * cell, y0 + (k // cols + 0.5) * cell, pose)
        vx, vy, vz = ex - mount[0], ey - mount[1], gz[k] - pose[2] - mount[2]
        if _sphere_occluded(vx, vy, vz, gradius[k], cell_d[q], axes, focal, tz, w, h):
            continue
        n0 = n
        for ii in range(gstart[k + 1] - gstart[k]):
            i = _at(gstart[k], ii)
            if culled[3, i] >= 0.0:
                vx, vy, vz, dist = culled[0, i], culled[1, i], culled[2, i], culled[3, i]
                n = _admit(statics, i, vx, vy, vz, dist, view, tz, sig_row, lamps_on, cb, cd, n)
        _draw_sorted(cb, cd, n0, n, pose, view, rays, bufs, scratch, wp)
    return n


# -- colouring ---------------------------------------------------------------------------


@_pixels
def _won_light(zbuf, won, n, rays, mount, wp, fog, hl, scr):
    """Fog and headlight (if the weather has them) at the hit of each won pixel (``fog[q]``, ``hl[q]``
    for pixel ``won[q]``), with :func:`_exp_neg`: the hits gathered, then loops that vectorise."""
    fog_d, fog_norm = wp[L.W_FOG_DIST], wp[L.W_FOG_NORM]
    hl_strength, hl_range = wp[L.W_HL_STRENGTH], wp[L.W_HL_RANGE]
    ts, px, py, pz = scr[0], scr[1], scr[2], scr[3]
    for q in range(n):
        ts[q] = zbuf[won[q]]
    for q in range(n):
        fog[q] = _fog(ts[q], fog_d, fog_norm, False)
    if wp[L.W_HEADLIGHTS] > 0.5:
        for q in range(n):
            p, t = won[q], ts[q]
            px[q], py[q], pz[q] = (
                mount[0] + t * rays[0, p],
                mount[1] + t * rays[1, p],
                mount[2] + t * rays[2, p],
            )
        for q in range(n):
            hl[q] = _headlight(px[q], py[q], pz[q], hl_strength, hl_range, False)


@numba.njit(cache=True, inline="always")
def _shade(rgb, emissive, f, light, tint):
    """The three channel values (before rounding) of a box pixel: its colour ``rgb``, lit by ``light``
    and tinted unless ``emissive``, fogged by ``f`` (both ways computed, then picked: cheaper than a
    mispredicted branch)."""
    f_glow = f * FOG_EMISSIVE
    k = 1.0 - f_glow if emissive else light * (1.0 - f)
    f = f_glow if emissive else f
    r, g, b = rgb if emissive else (rgb[0] * tint[0], rgb[1] * tint[1], rgb[2] * tint[2])
    return r * k + tint[3] * f + 0.5, g * k + tint[4] * f + 0.5, b * k + tint[5] * f + 0.5


@_pixels
def _colour_boxes(img, cb, rays, mount, bufs, wp, scr):
    """Colour every pixel a box won (the ``won`` list): material, the sun on its face, headlights, fog.

    Fog and headlights come from :func:`_won_light`; a pixel where one of its bytes could come out
    otherwise with the exact ``exp`` (:func:`_unsure`) is recomputed with it, as the rest would be.
    """
    zbuf, win, wface, local, flight, won, nwon = bufs[0], bufs[2], bufs[3], bufs[4], bufs[5], bufs[8], bufs[9]
    n = nwon[0]
    fog, hl = scr[4], scr[5]
    _won_light(zbuf, won, n, rays, mount, wp, fog, hl, scr)
    headlights, lamps_on = wp[L.W_HEADLIGHTS] > 0.5, wp[L.W_LAMPS_ON] > 0.5
    fog_d, fog_norm = wp[L.W_FOG_DIST], wp[L.W_FOG_NORM]
    hl_strength, hl_range = wp[L.W_HL_STRENGTH], wp[L.W_HL_RANGE]
    # tint, then fog colour
    tint = (wp[L.W_TINT_R], wp[L.W_TINT_G], wp[L.W_TINT_B], wp[L.W_FOG_R], wp[L.W_FOG_G], wp[L.W_FOG_B])
    for q in range(n):
        p = won[q]
        j = np.uint64(win[p])  # unsigned indices: no negative-index check on every access
        face = int(wface[p])
        uface = np.uint64(face)
        mat = int(cb[j, L.MAT])
        r, g, b = cb[j, L.R], cb[j, L.G], cb[j, L.B]
        emissive = mat == MAT_EMISSIVE
        if mat == L.MAT_BUILDING:
            t, ray_x, ray_y = zbuf[p], rays[0, p], rays[1, p]
            ox, oy, oz, cp, sp = local[j, 0], local[j, 1], local[j, 2], local[j, 3], local[j, 4]
            dx, dy = cp * ray_x + sp * ray_y, -sp * ray_x + cp * ray_y  # as the ray test had them
            hit_x, hit_y, hit_z = ox + t * dx, oy + t * dy, oz + t * rays[2, p]
            ok, col, flo = _window(face, hit_x, hit_y, hit_z, cb[j, L.HX], cb[j, L.HY], cb[j, L.HZ])
            emissive = ok & (window_lit(int(cb[j, L.AUX]), face, col, flo) if lamps_on else False)
            r = (LIT_WINDOW_RGB[0] if emissive else WINDOW_RGB[0]) if ok else r
            g = (LIT_WINDOW_RGB[1] if emissive else WINDOW_RGB[1]) if ok else g
            b = (LIT_WINDOW_RGB[2] if emissive else WINDOW_RGB[2]) if ok else b
        light = flight[j, uface] + hl[q] if headlights else flight[j, uface]
        vr, vg, vb = _shade((r, g, b), emissive, fog[q], light, tint)
        if _unsure(vr) | _unsure(vg) | _unsure(vb):  # rare: the exact exp
            t = zbuf[p]
            light = flight[j, uface]
            if headlights:
                px, py, pz = mount[0] + t * rays[0, p], mount[1] + t * rays[1, p], mount[2] + t * rays[2, p]
                light += _headlight(px, py, pz, hl_strength, hl_range, True)
            vr, vg, vb = _shade((r, g, b), emissive, _fog(t, fog_d, fog_norm, True), light, tint)
        img[p, 0] = np.uint8(min(255.0, vr))
        img[p, 1] = np.uint8(min(255.0, vg))
        img[p, 2] = np.uint8(min(255.0, vb))


@numba.njit(cache=True, inline="always")
def _at(start, k):
    """Index ``start + k`` as unsigned: the compiler then knows it is no negative (wrap-around) index."""
    return np.uint64(start) + np.uint64(k)


@_pixels
def _copy(dst, src):
    """``dst[:] = src`` for equal-sized 1-d arrays (numba's slice assignment goes element by element)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@_pixels
def _texel_index(gtab, q0, n, tx, ty, ce, se, scale, height, width, offset, tix):
    """Texels (flat index into the level's texture, -1 outside the raster) of ground pixels
    ``q0:q0 + n`` (one level) into ``tix``."""
    gxs, gys = gtab[0], gtab[1]
    for k in range(n):
        q = _at(q0, k)
        gx, gy = gxs[q], gys[q]
        ix = int(math.floor((tx + ce * gx - se * gy) * scale))
        iy = int(math.floor((ty + se * gx + ce * gy) * scale))
        tix[q] = offset + iy * width + ix if (0 <= iy < height and 0 <= ix < width) else -1


@_helper
def _ground_texels(pose, gstart, gtab, tex, tix):
    """The texel of every ground pixel (``tix``, see :func:`_colour_ground`), and a prefetch of each:
    the texture is large and a frame's texels scattered; requested early, they arrive while the
    boxes are coloured."""
    tex_origin, lab0, palette, coarse, loff, lh, lw, inv_scale = tex
    ce, se = pose[4], pose[5]
    tx, ty = pose[0] - tex_origin[0], pose[1] - tex_origin[1]
    for lvl in range(gstart.shape[0] - 1):
        off = 0 if lvl == 0 else loff[lvl]  # level 0: the labels; coarser levels: mean colours
        q0, n = gstart[lvl], gstart[lvl + 1] - gstart[lvl]
        _texel_index(gtab, q0, n, tx, ty, ce, se, inv_scale[lvl], lh[lvl], lw[lvl], off, tix)
    for q in range(gstart[1]):
        if tix[q] >= 0:
            _prefetch(lab0, tix[q])
    rgb = coarse.reshape(coarse.shape[0] * 3)
    for q in range(gstart[1], gstart[gstart.shape[0] - 1]):
        if tix[q] >= 0:
            _prefetch(rgb, 3 * tix[q])


@_pixels
def _ground_bytes(gtab, q0, n, rgb, fog_rgb, out):
    """Colour bytes ``out[:, :n]`` of ground pixels ``q0:q0 + n`` from their texel colours ``rgb[:, :n]``:
    lit and fogged."""
    light, fog = gtab[2], gtab[3]
    fog_r, fog_g, fog_b = fog_rgb
    for k in range(n):
        q = _at(q0, k)
        m, f = light[q], fog[q]
        out[0, k] = np.uint8(min(255.0, rgb[0, k] * m + f * fog_r + 0.5))
        out[1, k] = np.uint8(min(255.0, rgb[1, k] * m + f * fog_g + 0.5))
        out[2, k] = np.uint8(min(255.0, rgb[2, k] * m + f * fog_b + 0.5))


@_helper
def _colour_ground(flat, win, gpix, gstart, gtab, tex, wp, tix, scr):
    """Paint the ground pixels no box won (``flat``: the image as (3P,) bytes): the texel at the pixel's
    mip level, lit and fogged.

    ``gpix`` lists the camera's ground pixels level by level (level ``k``'s at ``gstart[k]:gstart[k + 1]``),
    ``gtab`` holds their ego-frame hit x, y, light times (1 - fog) and fog, ``tix`` their texels
    (:func:`_ground_texels`). ``GROUND_CHUNK`` pixels at a time (their scratch stays in the first-level
    cache): texel colours (gathered), colour bytes (vectorised), the bytes of the pixels no box won
    into the image.
    """
    tex_origin, lab0, palette, coarse, loff, lh, lw, inv_scale = tex
    rgb, out = scr
    fog_rgb = (wp[L.W_FOG_R], wp[L.W_FOG_G], wp[L.W_FOG_B])
    out0, out1, out2 = (
        math.floor(palette[0, 0] + 0.5),
        math.floor(palette[0, 1] + 0.5),
        math.floor(palette[0, 2] + 0.5),
    )  # a coarse level outside the raster: off-road
    for lvl in range(gstart.shape[0] - 1):
        for q0 in range(gstart[lvl], gstart[lvl + 1], GROUND_CHUNK):
            n = min(GROUND_CHUNK, gstart[lvl + 1] - q0)
            if lvl == 0:
                for k in range(n):
                    i = tix[_at(q0, k)]
                    lab = lab0[np.uint64(i)] if i >= 0 else 0  # outside the raster: off-road
                    rgb[0, k], rgb[1, k], rgb[2, k] = palette[lab, 0], palette[lab, 1], palette[lab, 2]
            else:
                for k in range(n):
                    i = tix[_at(q0, k)]
                    if i >= 0:
                        u = np.uint64(i)
                        rgb[0, k], rgb[1, k], rgb[2, k] = coarse[u, 0], coarse[u, 1], coarse[u, 2]
                    else:
                        rgb[0, k], rgb[1, k], rgb[2, k] = out0, out1, out2
            _ground_bytes(gtab, q0, n, rgb, fog_rgb, out)
            for k in range(n):
                p = np.uint64(gpix[_at(q0, k)])
                if win[p] < 0:
                    flat[3 * p], flat[3 * p + 1], flat[3 * p + 2] = out[0, k], out[1, k], out[2, k]


# -- tables -----------------------------------------------------------------------------


def cull_table(statics: np.ndarray) -> np.ndarray:
    """(7, S) per static box: world x, y, centre z, radius, twice the smaller half width, level-of-detail
    pixels, twice the radius: what :func:`_cull` reads."""
    b = statics
    return np.ascontiguousarray(
        np.stack(
            [
                b[:, L.X],
                b[:, L.Y],
                b[:, L.Z] + b[:, L.HZ],
                b[:, L.RADIUS],
                2.0 * np.minimum(b[:, L.HX], b[:, L.HY]),
                b[:, L.LOD_PX],
                2.0 * b[:, L.RADIUS],
            ]
        )
    )


def kernel_tables(t, levels: int) -> tuple:
    """The per-camera tables of :func:`render_numba` (``tabs``) from :class:`CameraTables` ``t``.

    (rays (C, 4, P): x, y, z and 1 / z (clamped as the slab test clamps it); background (C, 3P)
    uint8; the ground pixels level by level (C, G) with each level's start (C, levels + 1) and
    their (C, 4, G) hit x, y, light times (1 - fog) and fog (G: the most of any camera); mount;
    axes; planes; focal; depth (C, P); tile depth).
    """
    n, p = t.level.shape
    rz = t.rays[..., 2]
    rz_inv = 1.0 / np.where(np.abs(rz) >= 1e-12, rz, 1e-12)
    rays = np.concatenate([t.rays.transpose(0, 2, 1), rz_inv[:, None]], axis=1)
    bg = np.floor(t.background + 0.5).astype(np.uint8).reshape(n, 3 * p)
    g = int((t.level >= 0).sum(axis=1).max())
    gpix, gstart, gtab = np.zeros((n, g), np.int64), np.zeros((n, levels + 1), np.int64), np.zeros((n, 4, g))
    for c in range(n):
        on = np.flatnonzero(t.level[c] >= 0)
        on = on[np.argsort(t.level[c, on], kind="stable")]
        gpix[c, : len(on)] = on
        gstart[c, 1:] = np.cumsum(np.bincount(t.level[c, on], minlength=levels))
        gtab[c, :, : len(on)] = t.ground[c, on, 0], t.ground[c, on, 1], t.ground[c, on, 3], t.fog[c, on]
    arrays = (rays, bg, gpix, gstart, gtab, t.mount, t.axes, t.planes, t.focal_px, t.depth, t.tile_depth)
    return tuple(np.ascontiguousarray(a) for a in arrays)


# -- one camera, all frames ----------------------------------------------------------------


@numba.njit(cache=True)
def _render_one(img, pose, c, tabs, statics, index, actors, a0, a1, sig_row, tex, wp, scr):
    """One frame of camera ``c`` into ``img`` (H, W, 3): the steps of the module docstring."""
    rays, bg, gpix, gstart, gtab, mount, axes, planes, focal, gdist, tile0 = tabs
    cb, cd, zbuf, win, wface, local, scratch, tz, flight, cells, cell_d = scr[:11]
    order, corder, won, nwon, gscr, bscr, culled = scr[11:]
    h, w = img.shape[0], img.shape[1]
    view = (mount[c], planes[c], axes[c], focal[c], wp[L.W_FAR], w, h)
    bufs = (zbuf, tz, win, wface, local, flight, order, corder, won, nwon, culled)
    if nwon[1] != c:  # the buffers hold another camera's ground, or nothing yet
        _copy(zbuf, gdist[c])
        win[:] = -1
        nwon[1] = c
    tz[:] = tile0[c]
    nwon[0] = 0
    lamps_on = wp[L.W_LAMPS_ON] > 0.5
    n = 0
    # actors first: they are near and hide what is behind them
    _cull_boxes(actors, a0, a1 - a0, pose, view, culled)
    for k in range(a1 - a0):
        if culled[3, k] >= 0.0:
            vx, vy, vz, dist = culled[0, k], culled[1, k], culled[2, k], culled[3, k]
            n = _admit(actors, a0 + k, vx, vy, vz, dist, view, tz, sig_row, lamps_on, cb, cd, n)
    _draw_sorted(cb, cd, 0, n, pose, view, rays[c], bufs, scratch, wp)
    _draw_statics(statics, index, cb, cd, n, cells, cell_d, pose, view, rays[c], bufs, scratch, sig_row, wp)
    _ground_texels(pose, gstart[c], gtab[c], tex, gscr[0])
    flat = img.reshape(h * w * 3)
    _copy(flat, bg[c])  # the background everywhere; boxes and ground then paint over it
    pixels = img.reshape(h * w, 3)  # row-major: pixel p is row p // w, column p % w
    _colour_boxes(pixels, cb, rays[c], mount[c], bufs, wp, bscr)  # while their pixels are cached
    _colour_ground(flat, win, gpix[c], gstart[c], gtab[c], tex, wp, gscr[0], gscr[1:])
    _restore(zbuf, win, won, nwon[0], gdist[c])


@_pixels
def _restore(zbuf, win, won, n, depth):
    """Give the ``n`` pixels boxes took (``won``) their ground depth back and no box: the buffers are
    ready for the camera's next frame without touching every pixel."""
    for q in range(n):
        p = won[q]
        zbuf[p] = depth[p]
        win[p] = -1


@numba.njit(cache=True)
def _scratch(out, tabs, statics, index, actor_boxes):
    """One worker's buffers for the frames of ``out`` (B, C, H, W, 3) with at most
    ``actor_boxes`` actor boxes a frame (the other arguments as :func:`_render_frames`')."""
    p = out.shape[2] * out.shape[3]
    tiles = ((out.shape[2] + TILE_PX - 1) // TILE_PX, (out.shape[3] + TILE_PX - 1) // TILE_PX)
    cap = statics.shape[0] + actor_boxes  # statics and actors
    cells, g = index[1].shape[0], tabs[2].shape[1]  # grid cells; ground pixels a camera
    ncull = max(statics.shape[0], actor_boxes)  # boxes culled at once
    return (
        np.empty((cap, L.BOX_FIELDS)),  # candidates: boxes that may show
        np.empty(cap),  # their nearest possible distance (the drawing order)
        np.empty(p),  # depth
        np.empty(p, np.int32),  # the candidate that took each pixel (-1: none)
        np.empty(p, np.int8),  # the face it took it with
        np.empty((cap, 5)),  # per candidate drawn: the camera in its frame, its turn
        np.empty(24),  # corners of one box
        np.empty(tiles),  # the farthest depth of each tile
        np.empty((cap, 6)),  # light on each face of the candidates drawn
        np.empty(cells, np.int64),  # visible grid cells
        np.empty(cells),  # their distance
        np.empty(cap, np.int64),  # drawing order of candidates
        np.empty(cells, np.int64),  # drawing order of cells
        np.empty(p, np.uint64),  # pixels boxes took, in the order they took them
        np.full(2, -1, np.int64),  # how many; the camera whose ground the depth buffer holds
        (np.empty(g, np.int64), np.empty((3, GROUND_CHUNK)), np.empty((3, GROUND_CHUNK), np.uint8)),
        np.empty((6, p)),  # per pixel taken: gathered hits, fog, headlight
        np.empty((4, ncull)),  # cull results
    )


@numba.njit(cache=True, inline="always")
def _pose(ego):
    """x, y, z, yaw, cos(yaw), sin(yaw) of one frame's ``ego`` row."""
    yaw = ego[L.EGO_YAW]
    return ego[L.EGO_X], ego[L.EGO_Y], ego[L.EGO_Z], yaw, math.cos(yaw), math.sin(yaw)


def _render_frames(out, ego, actors, actor_off, sig, tabs, statics, index, tex, wp, threads):
    """Render frames x cameras into ``out`` (B, C, H, W, 3) uint8; see the module docstring.

    ``ego`` (B, EGO_FIELDS); ``actors`` (A, BOX_FIELDS) with frame ``b``'s boxes at
    ``actor_off[b]:actor_off[b + 1]``; ``sig`` (B, M) int8 light states; ``tabs`` the
    camera tables (:func:`kernel_tables`); ``statics`` (S, BOX_FIELDS) sorted by grid cell,
    with its grid ``index`` (grid (x0, y0, cell, rows, cols), each cell's first box,
    bounding radius and centre height, :func:`cull_table`); ``tex`` the ground tuple; ``wp``
    the weather vector; ``threads`` how many workers share the jobs.
    """
    nb, nc = out.shape[0], out.shape[1]
    jobs = nb * nc
    workers = max(1, min(threads, jobs))
    for worker in prange(workers):  # scratch once per worker, jobs dealt round-robin
        scr = _scratch(out, tabs, statics, index, actors.shape[0])
        for job in range(worker, jobs, workers):
            b, c = job // nc, job % nc
            _render_one(
                out[b, c],
                _pose(ego[b]),
                c,
                tabs,
                statics,
                index,
                actors,
                actor_off[b],
                actor_off[b + 1],
                sig[b],
                tex,
                wp,
                scr,
            )


#: the parallel kernel (``prange`` over workers, frames x cameras dealt round-robin)
render_numba = numba.njit(parallel=True, cache=True, nogil=True)(_render_frames)
#: the same kernel without a thread team, for one job: no wake-up, no spinning workers
render_numba_serial = numba.njit(cache=True, nogil=True)(_render_frames)


# -- render workers: slots drawn as they are submitted, without the GIL -------------------

#: POSIX semaphores, called from compiled code by name (resolved in the process, so the
#: cached machine code stays valid); ``sync`` holds three ``sem_t`` of SEM_BYTES each:
#: work (one post per submitted slot), done (one per slot a worker drew), lock (a mutex)
_sem_wait = types.ExternalFunction("sem_wait", types.int32(types.voidptr))
_sem_post = types.ExternalFunction("sem_post", types.int32(types.voidptr))
_sem_trywait = types.ExternalFunction("sem_trywait", types.int32(types.voidptr))
#: a thread about to wait first polls its semaphore this many times (~0.1 ms at ~2 ns a try):
#: between two worlds a render thread waits only tens of microseconds, and a post to a
#: thread asleep costs the poster a wake-up call (~15 us here) where a post to a polling
#: one costs an atomic add
SPIN_TRIES = 50_000
SEM_BYTES = 64  # room for a sem_t (32 bytes on 64-bit Linux), each at a 64-byte offset
SEM_WORK, SEM_DONE, SEM_LOCK = 0, 1, 2
#: ``ctl`` (int64): slots submitted (0..k-1 ready), the next slot to claim, slots claimed by
#: workers this round, stop
CTL_SUBMITTED, CTL_NEXT, CTL_CLAIMED, CTL_STOP = 0, 1, 2, 3


@_helper
def _wait(sync, which):
    while _sem_wait(sync[which * SEM_BYTES :].ctypes.data) != 0:  # EINTR: a signal woke it
        pass


@_helper
def _wait_polling(sync, which):
    """:func:`_wait`, polling for up to :data:`SPIN_TRIES` tries before it sleeps."""
    sem = sync[which * SEM_BYTES :].ctypes.data
    for _ in range(SPIN_TRIES):
        if _sem_trywait(sem) == 0:
            return
    _wait(sync, which)


@_helper
def _post(sync, which):
    _sem_post(sync[which * SEM_BYTES :].ctypes.data)


@_helper
def _claim(sync, ctl, worker):
    """The next submitted slot nobody has drawn (its claim counted for a worker), -1 when
    none is, -2 when the workers are told to stop."""
    _wait(sync, SEM_LOCK)
    k = ctl[CTL_NEXT]
    if ctl[CTL_STOP]:
        k = -2
    elif k < ctl[CTL_SUBMITTED]:
        ctl[CTL_NEXT] = k + 1
        if worker:
            ctl[CTL_CLAIMED] += 1
    else:
        k = -1
    _post(sync, SEM_LOCK)
    return k


@numba.njit(cache=True, nogil=True)
def submit_slots(sync, ctl, n):
    """Slots 0..n-1 are packed: hand them out (one work post for each new one)."""
    _wait(sync, SEM_LOCK)
    new = n - ctl[CTL_SUBMITTED]
    ctl[CTL_SUBMITTED] = n
    _post(sync, SEM_LOCK)
    for _ in range(new):
        _post(sync, SEM_WORK)


@numba.njit(cache=True, nogil=True)
def restart_slots(sync, ctl):
    """A new round: nothing submitted (call only once the last round is collected)."""
    _wait(sync, SEM_LOCK)
    ctl[CTL_SUBMITTED] = ctl[CTL_NEXT] = ctl[CTL_CLAIMED] = 0
    _post(sync, SEM_LOCK)


@numba.njit(cache=True, nogil=True)
def stop_slots(sync, ctl, workers):
    _wait(sync, SEM_LOCK)
    ctl[CTL_STOP] = 1
    _post(sync, SEM_LOCK)
    for _ in range(workers):
        _post(sync, SEM_WORK)


@numba.njit(cache=True, nogil=True)
def fail_slots(sync, ctl, n):
    """A worker failed: stop the others, and post ``n`` done so no caller waits for it."""
    stop_slots(sync, ctl, 0)
    for _ in range(n):
        _post(sync, SEM_DONE)


@numba.njit(cache=True, nogil=True)
def serve_slots(sync, ctl, out, ego, boxes, nbox, sig, tabs, statics, index, tex, wp, worker):
    """Draw submitted slots: slot k's cameras into ``out[k]`` from ``ego[k]``, its first
    ``nbox[k]`` boxes of ``boxes[k]`` and ``sig[k]`` (a slot with ``nbox[k] < 0`` was drawn
    elsewhere: skipped).

    ``worker`` true: a render thread's whole life, waiting for work until stopped (posts
    done for each slot it claims). False: the caller's end of a round: draw every slot no
    worker has claimed, then wait until the workers' slots are done.
    """
    nc = out.shape[1]
    scr = _scratch(out, tabs, statics, index, boxes.shape[1])
    while True:
        if worker:
            _wait_polling(sync, SEM_WORK)
        k = _claim(sync, ctl, worker)
        if k == -2 or (k == -1 and not worker):
            break
        if k >= 0 and nbox[k] >= 0:
            for c in range(nc):
                _render_one(
                    out[k, c],
                    _pose(ego[k]),
                    c,
                    tabs,
                    statics,
                    index,
                    boxes[k],
                    0,
                    nbox[k],
                    sig[k],
                    tex,
                    wp,
                    scr,
                )
        if k >= 0 and worker:
            _post(sync, SEM_DONE)
    if not worker:
        for _ in range(ctl[CTL_CLAIMED]):  # every claim is final now: no slot is left to claim
            _wait_polling(sync, SEM_DONE)
