"""The compiled CPU renderer: one numba kernel over frames x cameras.

Per (frame, camera), in this order (the torch path, :mod:`sim.render.kernel_torch`,
does the same math batched):

1. the depth buffer starts at each pixel's ground distance (infinite where the pixel
   shows the background), and a coarse buffer keeps the farthest depth of each
   ``TILE_PX`` square tile;
2. actor boxes, then static boxes grid cell by grid cell, near cells first: a box (or
   a whole cell) is skipped when its bounding sphere is beyond ``far_m``, outside
   the frustum's four side planes, narrower on screen than ``MIN_WIDTH_PX``, or
   behind every tile it may cover; otherwise it is ray-tested (exact slab test in
   the box's own frame) at each pixel of its screen rectangle whose depth is still
   beyond the box's nearest possible point, and a nearer hit takes the pixel (depth,
   box, face, hit point);
3. one colouring pass: the winning box's surface (material, sun on the face,
   headlights, fog), else the ground (mip-level texel, precomputed light and fog),
   else the background.

Everything is float64. Hot loops call only scalar helpers (numba inlines those; an
inlined helper that takes arrays costs reference counting on every pixel).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

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
_HL_X, _HL_Y, _HL_Z = HEADLIGHT_XYZ_M
_HL_C, _HL_S = math.cos(HEADLIGHT_TILT_RAD), math.sin(HEADLIGHT_TILT_RAD)
_POOL_R2 = POOL_RADIUS_M * POOL_RADIUS_M
_BBOX_NEAR = 1e-3
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


# -- scalar helpers (inlined) -------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def window_lit(building, face, column, floor):
    """Whether a window glows at night: a hash of its building, face, column and floor (40 %)."""
    h = (building * 7919 + face * 104729 + column * 613 + floor * 2731) & 0xFFFFF
    h = (h * 2654435761) & 0xFFFFFFFF
    return (h >> 16) % 100 < 40


@numba.njit(cache=True, inline="always")
def _window(face, ux, uy, uz, hx, hy, hz):
    """(is window, column, floor) of a box-local hit point on a building wall."""
    if face >= 4:
        return False, 0, 0
    u = uy + hy if face < 2 else ux + hx
    span = 2.0 * (hy if face < 2 else hx)
    v = uz + hz - 1.0  # the box starts a metre under ground
    fu = u / WINDOW_PERIOD_M
    fv = v / FLOOR_M
    col, flo = math.floor(fu), math.floor(fv)
    ok = (fu - col > 0.25) and (fu - col < 0.75) and (fv - flo > 0.3) and (fv - flo < 0.78)
    ok = ok and v > 2.5 and u > 0.8 and u < span - 0.8 and v < 2.0 * hz - 2.0
    return ok, int(col), int(flo)


@numba.njit(cache=True, inline="always")
def _headlight(px, py, pz, strength, range_m):
    """Light of the ego's headlights at an ego-frame point (see :func:`sim.render.tables.headlight`)."""
    vx, vy, vz = px - _HL_X, py - _HL_Y, pz - _HL_Z
    dist = math.sqrt(vx * vx + vy * vy + vz * vz) + 1e-6
    cos_a = (vx * _HL_C - vz * _HL_S) / dist
    cone = min(1.0, max(0.0, (cos_a - HEADLIGHT_COS_OUTER) / (HEADLIGHT_COS_INNER - HEADLIGHT_COS_OUTER)))
    q = dist / range_m
    pool = POOL_SHARE * math.exp(-(px * px + py * py) / _POOL_R2)
    return strength * (cone / (1.0 + q * q) + pool)


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
def _slab_axis(o, d, half, axis, tmin, tmax, face):
    da = d if abs(d) >= 1e-12 else 1e-12
    inv = 1.0 / da
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    if t1 > t2:
        t1, t2 = t2, t1
    if t1 > tmin:
        tmin = t1
        face = 2 * axis + (1 if da > 0.0 else 0)
    return tmin, min(tmax, t2), face


@numba.njit(cache=True, inline="always")
def _slab(ox, oy, oz, dx, dy, dz, hx, hy, hz):
    """Entry distance and face of a box-local ray into the box [-h, h], or (inf, -1)."""
    tmin, tmax, face = _slab_axis(ox, dx, hx, 0, -np.inf, np.inf, -1)
    tmin, tmax, face = _slab_axis(oy, dy, hy, 1, tmin, tmax, face)
    tmin, tmax, face = _slab_axis(oz, dz, hz, 2, tmin, tmax, face)
    if tmin <= tmax and tmin > L.NEAR_M:
        return tmin, face
    return np.inf, -1


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


@_helper
def _update_tiles(tz, zbuf, r0, r1, c0, c1, w, h):
    """Recompute the farthest depth of the tiles under the rectangle."""
    for tr in range(r0 // TILE_PX, r1 // TILE_PX + 1):
        for tc in range(c0 // TILE_PX, c1 // TILE_PX + 1):
            m = 0.0
            for r in range(tr * TILE_PX, min(h, (tr + 1) * TILE_PX)):
                for c in range(tc * TILE_PX, min(w, (tc + 1) * TILE_PX)):
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
def _consider(boxes, i, pose, view, tz, sig_row, lamps_on, cb, cd, n):
    """Copy box ``i`` into the candidates if it may show; returns the new candidate count."""
    mount, planes, axes, focal, far, w, h = view
    ex, ey = _to_ego(boxes[i, L.X], boxes[i, L.Y], pose)
    vx, vy = ex - mount[0], ey - mount[1]
    vz = boxes[i, L.Z] + boxes[i, L.HZ] - pose[2] - mount[2]
    radius = boxes[i, L.RADIUS]
    if not _sphere_visible(vx, vy, vz, radius, planes, far):
        return n
    dist = math.sqrt(vx * vx + vy * vy + vz * vz)
    if 2.0 * min(boxes[i, L.HX], boxes[i, L.HY]) * focal < MIN_WIDTH_PX * dist:
        return n
    if 2.0 * radius * focal < boxes[i, L.LOD_PX] * dist:
        return n
    mind = max(L.NEAR_M, dist - radius)
    if _sphere_occluded(vx, vy, vz, radius, mind, axes, focal, tz, w, h):
        return n
    for k in range(L.BOX_FIELDS):
        cb[n, k] = boxes[i, k]
    _resolve(cb, n, sig_row, lamps_on)
    cd[n] = mind
    return n + 1


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


@_helper
def _draw_box(j, cb, cd, pose, view, rays, bufs, scratch, wp):
    """Ray-test candidate ``j`` in its screen rectangle; nearer hits take the pixel."""
    zbuf, tz, win, wface, whit, flight = bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5]
    w, h = view[5], view[6]
    mount = view[0]
    bx, by = _to_ego(cb[j, L.X], cb[j, L.Y], pose)
    psi = cb[j, L.YAW] - pose[3]
    cp, sp = math.cos(psi), math.sin(psi)
    r0, r1, c0, c1 = _bbox(cb, j, bx, by, cp, sp, pose, view, scratch)
    mind = cd[j]
    if r0 > r1 or c0 > c1 or _occluded(tz, r0, r1, c0, c1, mind):
        return
    rx, ry = mount[0] - bx, mount[1] - by  # camera relative to the box centre, ego frame
    ox, oy = cp * rx + sp * ry, -sp * rx + cp * ry
    oz = pose[2] + mount[2] - cb[j, L.Z] - cb[j, L.HZ]
    hx, hy, hz = cb[j, L.HX], cb[j, L.HY], cb[j, L.HZ]
    wrote = False
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            p = r * w + c
            if zbuf[p] <= mind:
                continue
            ray_x, ray_y, ray_z = rays[p, 0], rays[p, 1], rays[p, 2]
            dx, dy = cp * ray_x + sp * ray_y, -sp * ray_x + cp * ray_y
            t, face = _slab(ox, oy, oz, dx, dy, ray_z, hx, hy, hz)
            if t < zbuf[p]:
                zbuf[p] = t
                win[p] = j
                wface[p] = face
                whit[p, 0], whit[p, 1], whit[p, 2] = ox + t * dx, oy + t * dy, oz + t * ray_z
                wrote = True
    if wrote:
        _update_tiles(tz, zbuf, r0, r1, c0, c1, w, h)
        _face_lights(cb, j, wp, flight)


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
    """Static boxes cell by cell, near cells first; cells hidden behind the tiles are skipped."""
    grid, gstart, gorder, gradius, gz = index
    mount, planes, axes, focal, far, w, h = view
    tz = bufs[1]
    lamps_on = wp[L.W_LAMPS_ON] > 0.5
    m = _visible_cells(pose, view, grid, gstart, gradius, gz, cells, cell_d)
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
        for jj in range(gstart[k], gstart[k + 1]):
            n = _consider(statics, gorder[jj], pose, view, tz, sig_row, lamps_on, cb, cd, n)
        _draw_sorted(cb, cd, n0, n, pose, view, rays, bufs, scratch, wp)
    return n


# -- colouring ---------------------------------------------------------------------------


@_helper
def _colour_boxes(img, pose, cb, rays, mount, bufs, wp):
    """Colour every pixel a box won: material, the sun on its face, headlights, fog (``img`` (P, 3))."""
    zbuf, win, wface, whit, flight = bufs[0], bufs[2], bufs[3], bufs[4], bufs[5]
    fog_d, fog_norm = wp[L.W_FOG_DIST], wp[L.W_FOG_NORM]
    fog_r, fog_g, fog_b = wp[L.W_FOG_R], wp[L.W_FOG_G], wp[L.W_FOG_B]
    tint_r, tint_g, tint_b = wp[L.W_TINT_R], wp[L.W_TINT_G], wp[L.W_TINT_B]
    headlights, lamps_on = wp[L.W_HEADLIGHTS] > 0.5, wp[L.W_LAMPS_ON] > 0.5
    hl_strength, hl_range = wp[L.W_HL_STRENGTH], wp[L.W_HL_RANGE]
    for p in range(zbuf.shape[0]):
        j = win[p]
        if j < 0:
            continue
        face, t = wface[p], zbuf[p]
        mat = int(cb[j, L.MAT])
        r, g, b = cb[j, L.R], cb[j, L.G], cb[j, L.B]
        emissive = mat == MAT_EMISSIVE
        if mat == L.MAT_BUILDING:
            ok, col, flo = _window(
                face, whit[p, 0], whit[p, 1], whit[p, 2], cb[j, L.HX], cb[j, L.HY], cb[j, L.HZ]
            )
            if ok:
                emissive = lamps_on and window_lit(int(cb[j, L.AUX]), face, col, flo)
                rgb = LIT_WINDOW_RGB if emissive else WINDOW_RGB
                r, g, b = rgb[0], rgb[1], rgb[2]
        f = min(1.0, (1.0 - math.exp(-t / fog_d)) / fog_norm)
        if emissive:
            f *= FOG_EMISSIVE
            k = 1.0 - f
        else:
            light = flight[j, face]
            if headlights:
                light += _headlight(
                    mount[0] + t * rays[p, 0],
                    mount[1] + t * rays[p, 1],
                    mount[2] + t * rays[p, 2],
                    hl_strength,
                    hl_range,
                )
            k = light * (1.0 - f)
            r, g, b = r * tint_r, g * tint_g, b * tint_b
        img[p, 0] = np.uint8(min(255.0, r * k + fog_r * f + 0.5))
        img[p, 1] = np.uint8(min(255.0, g * k + fog_g * f + 0.5))
        img[p, 2] = np.uint8(min(255.0, b * k + fog_b * f + 0.5))


@_helper
def _colour_ground(
    img, pose, win, level, ground, gadd, bg, tex_origin, lab0, palette, coarse, loff, lh, lw, inv_scale
):
    """Colour every pixel no box won (``img`` (P, 3)): the ground's texel at the pixel's mip level, or
    the background."""
    ce, se = pose[4], pose[5]
    tx, ty = pose[0] - tex_origin[0], pose[1] - tex_origin[1]
    out0, out1, out2 = (
        math.floor(palette[0, 0] + 0.5),
        math.floor(palette[0, 1] + 0.5),
        math.floor(palette[0, 2] + 0.5),
    )  # outside the raster: off-road
    for p in range(level.shape[0]):
        if win[p] >= 0:
            continue
        lvl = level[p]
        if lvl < 0:
            img[p, 0], img[p, 1], img[p, 2] = bg[p, 0], bg[p, 1], bg[p, 2]
            continue
        gx, gy = ground[p, 0], ground[p, 1]
        s = inv_scale[lvl]
        ix = int(math.floor((tx + ce * gx - se * gy) * s))
        iy = int(math.floor((ty + se * gx + ce * gy) * s))
        if lvl == 0:
            lab = lab0[iy, ix] if (0 <= iy < lh[0] and 0 <= ix < lw[0]) else 0
            r, g, b = palette[lab, 0], palette[lab, 1], palette[lab, 2]
        elif 0 <= iy < lh[lvl] and 0 <= ix < lw[lvl]:
            k = loff[lvl] + iy * lw[lvl] + ix
            r, g, b = float(coarse[k, 0]), float(coarse[k, 1]), float(coarse[k, 2])
        else:
            r, g, b = out0, out1, out2
        m = ground[p, 3]
        img[p, 0] = np.uint8(min(255.0, r * m + gadd[p, 0] + 0.5))
        img[p, 1] = np.uint8(min(255.0, g * m + gadd[p, 1] + 0.5))
        img[p, 2] = np.uint8(min(255.0, b * m + gadd[p, 2] + 0.5))


# -- one camera, all frames ----------------------------------------------------------------


@numba.njit(cache=True)
def _render_one(img, pose, c, tabs, statics, index, actors, a0, a1, sig_row, tex, wp, scr):
    rays, ground, level, gadd, bg, mount, axes, planes, focal, gdist, tile0 = tabs
    cb, cd, zbuf, win, wface, whit, scratch, tz, flight, cells, cell_d, order, corder = scr
    h, w = img.shape[0], img.shape[1]
    view = (mount[c], planes[c], axes[c], focal[c], wp[L.W_FAR], w, h)
    bufs = (zbuf, tz, win, wface, whit, flight, order, corder)
    zbuf[:] = gdist[c]
    tz[:] = tile0[c]
    win[:] = -1
    lamps_on = wp[L.W_LAMPS_ON] > 0.5
    n = 0
    for i in range(a0, a1):  # actors first: they are near and hide what is behind them
        n = _consider(actors, i, pose, view, tz, sig_row, lamps_on, cb, cd, n)
    _draw_sorted(cb, cd, 0, n, pose, view, rays[c], bufs, scratch, wp)
    _draw_statics(statics, index, cb, cd, n, cells, cell_d, pose, view, rays[c], bufs, scratch, sig_row, wp)
    pixels = img.reshape(h * w, 3)  # row-major: pixel p is row p // w, column p % w
    _colour_boxes(pixels, pose, cb, rays[c], mount[c], bufs, wp)
    tex_origin, lab0, palette, coarse, loff, lh, lw, inv_scale = tex
    _colour_ground(
        pixels,
        pose,
        win,
        level[c],
        ground[c],
        gadd[c],
        bg[c],
        tex_origin,
        lab0,
        palette,
        coarse,
        loff,
        lh,
        lw,
        inv_scale,
    )


def _render_frames(out, ego, actors, actor_off, sig, tabs, statics, index, tex, wp, threads):
    """Render frames x cameras into ``out`` (B, C, H, W, 3) uint8; see the module docstring.

    ``ego`` (B, EGO_FIELDS); ``actors`` (A, BOX_FIELDS) with frame ``b``'s boxes at
    ``actor_off[b]:actor_off[b + 1]``; ``sig`` (B, M) int8 light states; ``tabs`` the
    camera tables tuple; ``statics`` (S, BOX_FIELDS) with its grid ``index`` (grid
    (x0, y0, cell, rows, cols), start, order, radius, z); ``tex`` the ground tuple;
    ``wp`` the weather vector; ``threads`` how many workers share the jobs.
    """
    nb, nc = out.shape[0], out.shape[1]
    p = out.shape[2] * out.shape[3]
    cap = statics.shape[0] + actors.shape[0]
    tiles = ((out.shape[2] + TILE_PX - 1) // TILE_PX, (out.shape[3] + TILE_PX - 1) // TILE_PX)
    cells = index[1].shape[0]
    jobs = nb * nc
    workers = max(1, min(threads, jobs))
    for worker in prange(workers):  # scratch once per worker, jobs dealt round-robin
        scr = (
            np.empty((cap, L.BOX_FIELDS)),
            np.empty(cap),
            np.empty(p),
            np.empty(p, np.int64),
            np.empty(p, np.int64),
            np.empty((p, 3)),
            np.empty(24),
            np.empty(tiles),
            np.empty((cap, 6)),
            np.empty(cells, np.int64),
            np.empty(cells),
            np.empty(cap, np.int64),
            np.empty(cells, np.int64),
        )
        for job in range(worker, jobs, workers):
            b, c = job // nc, job % nc
            yaw = ego[b, L.EGO_YAW]
            pose = (ego[b, L.EGO_X], ego[b, L.EGO_Y], ego[b, L.EGO_Z], yaw, math.cos(yaw), math.sin(yaw))
            _render_one(
                out[b, c],
                pose,
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
