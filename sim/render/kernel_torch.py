"""The torch renderer: the numba kernel's algorithm on batched tensors (CUDA, or the CPU).

Same steps as :mod:`sim.render.kernel_numba`, written for a GPU:

1. candidates: every (frame, camera, box) whose bounding sphere is within ``far_m``,
   inside the frustum's side planes and at least ``MIN_WIDTH_PX`` wide on screen
   (the numba kernel's tile occlusion tests only skip work, never change a pixel, so
   they are left out here); lamp materials resolved for each frame;
2. each candidate's screen rectangle (corners clipped at the camera plane), expanded
   into (candidate, pixel) pairs; pairs whose pixel's ground is nearer than the box
   can be are dropped;
3. a slab test per pair; per pixel the nearest hit nearer than the ground wins
   (``scatter_reduce`` min of depth, ties to the lower candidate number);
4. colours: the ground texel at each pixel's mip level (or the background), then the
   winning boxes' colours written over it.

Per-box quantities are float64, per-pixel ones float32 (what a GPU does fast); see
:mod:`sim.render.renderer` for why the two paths agree to within rounding only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sim.render import layout as L
from sim.render.kernel_numba import (
    DAY_LAMP,
    DIM_LAMP,
    FLOOR_M,
    FOG_EMISSIVE,
    LIT_WINDOW_RGB,
    MAT_EMISSIVE,
    MIN_WIDTH_PX,
    WINDOW_PERIOD_M,
    WINDOW_RGB,
)
from sim.render.pack import Packed
from sim.render.tables import (
    HEADLIGHT_COS_INNER,
    HEADLIGHT_COS_OUTER,
    HEADLIGHT_TILT_RAD,
    HEADLIGHT_XYZ_M,
    POOL_RADIUS_M,
    POOL_SHARE,
)

__all__ = ["TorchRenderer"]

_F32, _F64 = torch.float32, torch.float64
# corner k of a box: x sign bit 0, y sign bit 1, top bit 2 (as the numba kernel)
_CORNER_X = torch.tensor([-1.0, 1, -1, 1, -1, 1, -1, 1], dtype=_F64)
_CORNER_Y = torch.tensor([-1.0, -1, 1, 1, -1, -1, 1, 1], dtype=_F64)
_CORNER_TOP = torch.tensor([0.0, 0, 0, 0, 1, 1, 1, 1], dtype=_F64)
_EDGES = torch.tensor(
    [[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7]]
)
_BBOX_NEAR = 1e-3
#: at most this many (frame, camera, static box) rows are culled at once
STATIC_CHUNK = 4_000_000


class TorchRenderer:
    """The tensors of one :class:`sim.render.Renderer` on a device, and :meth:`render`."""

    def __init__(self, renderer, device: str):
        dev = torch.device(device)
        self.device = dev
        t, g, s = renderer.tables, renderer.ground, renderer.scene
        self.w, self.h = t.width_px, t.height_px
        self.p = self.w * self.h
        self.n_cams = t.rays.shape[0]

        def f32(a):
            return torch.as_tensor(np.array(a, dtype=np.float32), device=dev)

        def f64(a):
            return torch.as_tensor(np.array(a, dtype=np.float64), device=dev)

        self.rays = f32(t.rays.reshape(-1, 3))  # (C * P, 3)
        self.ground = f32(t.ground)  # (C, P, 4)
        self.level = torch.as_tensor(t.level, dtype=torch.int64, device=dev)  # (C, P)
        self.gadd = f32(t.ground_add)
        self.bg = f32(np.floor(t.background + 0.5))
        self.gdist = f32(t.depth).reshape(-1)  # (C * P,)
        self.mount, self.axes, self.planes = f64(t.mount), f64(t.axes), f64(t.planes)
        self.focal = f64(t.focal_px)
        self.statics = (
            f64(s.boxes) if len(s.boxes) else torch.zeros((0, L.BOX_FIELDS), dtype=_F64, device=dev)
        )
        self.lab0 = torch.as_tensor(np.array(g.labels0).reshape(-1), device=dev)
        self.lab_hw = (int(g.height[0]), int(g.width[0]))
        self.palette = f32(g.palette)
        self.coarse = f32(g.coarse) if len(g.coarse) else torch.zeros((1, 3), dtype=_F32, device=dev)
        inv_scale = 1.0 / (g.m_per_px * 2.0 ** np.arange(g.levels))
        lvl = np.maximum(t.level, 0)  # per camera pixel: the level's scale, size and offset
        self.px_scale = f32(inv_scale[lvl])
        self.px_h = torch.as_tensor(np.where(t.level > 0, g.height[lvl], 0), device=dev)  # level 0: labels
        self.px_w = torch.as_tensor(g.width[lvl], device=dev)
        self.px_off = torch.as_tensor(g.offset[lvl], device=dev)
        self.tex_origin = g.origin_xy_m
        self.off_road = f32(np.floor(g.palette[0] + 0.5))
        self.wp = [float(v) for v in renderer.weather_vector]
        self.corner_x, self.corner_y = _CORNER_X.to(dev), _CORNER_Y.to(dev)
        self.corner_top, self.edges = _CORNER_TOP.to(dev), _EDGES.to(dev)

    # -- candidates ---------------------------------------------------------------------------

    def _cull(self, boxes, ego_rel, ego_z, cams):
        """Mask of (..., box) rows that may show, and each box's nearest possible distance.

        ``boxes`` (..., BOX_FIELDS), ``ego_rel`` (..., 2) box centres in the ego frame,
        ``ego_z`` the ego's height and ``cams`` the camera per row (both broadcastable)."""
        mount, planes = self.mount[cams], self.planes[cams]
        vx = ego_rel[..., 0] - mount[..., 0]
        vy = ego_rel[..., 1] - mount[..., 1]
        vz = boxes[..., L.Z] + boxes[..., L.HZ] - ego_z - mount[..., 2]
        radius = boxes[..., L.RADIUS]
        far = self.wp[L.W_FAR]
        keep = vx * vx + vy * vy + vz * vz <= (far + radius) ** 2
        for k in range(4):
            keep &= planes[..., k, 0] * vx + planes[..., k, 1] * vy + planes[..., k, 2] * vz >= -radius
        dist = torch.sqrt(vx * vx + vy * vy + vz * vz)
        keep &= (
            2.0 * torch.minimum(boxes[..., L.HX], boxes[..., L.HY]) * self.focal[cams] >= MIN_WIDTH_PX * dist
        )
        keep &= 2.0 * radius * self.focal[cams] >= boxes[..., L.LOD_PX] * dist
        return keep, torch.clamp(dist - radius, min=L.NEAR_M)

    def _candidates(self, packed: Packed, ego):
        """(frame, camera, box rows, nearest distance) of every candidate of the batch."""
        b_n, c_n = ego.shape[0], self.n_cams
        ce, se = torch.cos(ego[:, L.EGO_YAW]), torch.sin(ego[:, L.EGO_YAW])
        out = []
        s = self.statics
        step = max(1, STATIC_CHUNK // max(1, c_n * len(s)))  # frames per chunk: bounded memory on big batches
        for f0 in range(0, b_n if len(s) else 0, step):
            e = ego[f0 : f0 + step]
            dx = s[None, :, L.X] - e[:, None, L.EGO_X]
            dy = s[None, :, L.Y] - e[:, None, L.EGO_Y]
            ce_, se_ = ce[f0 : f0 + step, None], se[f0 : f0 + step, None]
            rel = torch.stack([ce_ * dx + se_ * dy, -se_ * dx + ce_ * dy], -1)
            cams = torch.arange(c_n, device=self.device)[None, :, None]
            keep, mind = self._cull(s[None, None], rel[:, None], e[:, None, None, L.EGO_Z], cams)  # (b, C, S)
            b, c, i = torch.nonzero(keep, as_tuple=True)
            out.append((b + f0, c, s[i], mind[b, c, i]))
        actors = torch.as_tensor(packed.actors, dtype=_F64, device=self.device)
        if len(actors):
            counts = torch.as_tensor(np.diff(packed.actor_off), device=self.device)
            frame = torch.repeat_interleave(torch.arange(b_n, device=self.device), counts)
            dx = actors[:, L.X] - ego[frame, L.EGO_X]
            dy = actors[:, L.Y] - ego[frame, L.EGO_Y]
            rel = torch.stack([ce[frame] * dx + se[frame] * dy, -se[frame] * dx + ce[frame] * dy], -1)
            cams = torch.arange(c_n, device=self.device)[None, :]
            keep, mind = self._cull(
                actors[:, None], rel[:, None], ego[frame, L.EGO_Z][:, None], cams
            )  # (A, C)
            a, c = torch.nonzero(keep, as_tuple=True)
            out.append((frame[a], c, actors[a], mind[a, c]))
        if not out:
            return None
        return tuple(torch.cat(parts) for parts in zip(*out, strict=True))

    def _resolve(self, rows, b, sig):
        """Lamp materials of this frame: lit lamps glow (MAT_EMISSIVE), others are dimmed plain boxes."""
        rows = rows.clone()
        mat = rows[:, L.MAT]
        lamp = mat == L.MAT_SIGNAL_LAMP
        on = torch.zeros_like(lamp)
        if sig.shape[1]:
            row = rows[:, L.AUX].long().clamp(0, sig.shape[1] - 1)
            on = lamp & (rows[:, L.AUX] < sig.shape[1]) & (sig[b, row].double() == rows[:, L.AUX2])
        night = mat == L.MAT_NIGHT_LAMP
        lamps_on = self.wp[L.W_LAMPS_ON] > 0.5
        glow = on | (night & lamps_on)
        scale = torch.ones_like(mat)
        scale = torch.where(lamp & ~on, DIM_LAMP, scale)
        scale = torch.where(night & (not lamps_on), DAY_LAMP, scale)
        rows[:, L.R : L.B + 1] *= scale[:, None]
        rows[:, L.MAT] = torch.where(
            glow, float(MAT_EMISSIVE), torch.where(lamp | night, float(L.MAT_PLAIN), mat)
        )
        return rows

    # -- screen rectangles and pairs ------------------------------------------------------------

    def _local(self, rows, b, c, ego):
        """Per candidate: box centre (ego frame), yaw cos/sin relative to the ego, camera in the box frame."""
        ce, se = torch.cos(ego[b, L.EGO_YAW]), torch.sin(ego[b, L.EGO_YAW])
        dx, dy = rows[:, L.X] - ego[b, L.EGO_X], rows[:, L.Y] - ego[b, L.EGO_Y]
        bx, by = ce * dx + se * dy, -se * dx + ce * dy
        psi = rows[:, L.YAW] - ego[b, L.EGO_YAW]
        cp, sp = torch.cos(psi), torch.sin(psi)
        mount = self.mount[c]
        rx, ry = mount[:, 0] - bx, mount[:, 1] - by
        o = torch.stack(
            [
                cp * rx + sp * ry,
                -sp * rx + cp * ry,
                ego[b, L.EGO_Z] + mount[:, 2] - rows[:, L.Z] - rows[:, L.HZ],
            ],
            -1,
        )
        return bx, by, cp, sp, o

    def _bbox(self, rows, b, c, ego, bx, by, cp, sp):
        """(r0, r1, c0, c1) int64 pixel rectangles, empty (r0 > r1) where nothing is in front."""
        mount, axes, focal = self.mount[c], self.axes[c], self.focal[c]
        lx = self.corner_x[None] * rows[:, L.HX, None]
        ly = self.corner_y[None] * rows[:, L.HY, None]
        vx = bx[:, None] + cp[:, None] * lx - sp[:, None] * ly - mount[:, 0, None]
        vy = by[:, None] + sp[:, None] * lx + cp[:, None] * ly - mount[:, 1, None]
        z_lo = rows[:, L.Z] - ego[b, L.EGO_Z] - mount[:, 2]
        vz = z_lo[:, None] + self.corner_top[None] * 2.0 * rows[:, L.HZ, None]
        v = torch.stack([vx, vy, vz], -1)  # (K, 8, 3)
        cam = torch.einsum("kni,kij->knj", v, axes)  # depth, u, v
        depth, u, w = cam[..., 0], cam[..., 1], cam[..., 2]
        front = depth >= _BBOX_NEAR
        safe = torch.where(front, depth, 1.0)
        x, y = u / safe, w / safe
        edges = self.edges
        da, db = depth[:, edges[:, 0]], depth[:, edges[:, 1]]
        cross = (da < _BBOX_NEAR) != (db < _BBOX_NEAR)
        s = (_BBOX_NEAR - da) / torch.where(cross, db - da, 1.0)
        ua, wa = u[:, edges[:, 0]], w[:, edges[:, 0]]
        ex = (ua + s * (u[:, edges[:, 1]] - ua)) / _BBOX_NEAR
        ey = (wa + s * (w[:, edges[:, 1]] - wa)) / _BBOX_NEAR
        valid = torch.cat([front, cross], 1)
        xs, ys = torch.cat([x, ex], 1), torch.cat([y, ey], 1)
        umin = torch.where(valid, xs, torch.inf).min(dim=1).values
        umax = torch.where(valid, xs, -torch.inf).max(dim=1).values
        vmin = torch.where(valid, ys, torch.inf).min(dim=1).values
        vmax = torch.where(valid, ys, -torch.inf).max(dim=1).values
        empty = umin > umax
        c0, c1 = _pixel_range(umin, umax, 0.5 * self.w, focal, self.w)
        r0, r1 = _pixel_range(-vmax, -vmin, 0.5 * self.h, focal, self.h)
        return torch.where(empty, 1, r0), torch.where(empty, 0, r1), c0, c1

    # -- render ---------------------------------------------------------------------------------

    def render(self, packed: Packed) -> np.ndarray:
        ego = torch.as_tensor(packed.ego, dtype=_F64, device=self.device)
        sig = torch.as_tensor(packed.sig, device=self.device)
        b_n, c_n = ego.shape[0], self.n_cams
        img = self._ground_colours(ego)  # (B * C * P, 3) float32
        cands = self._candidates(packed, ego)
        if cands is not None and len(cands[0]):
            self._draw(img, ego, sig, *cands)
        out = torch.clamp(torch.floor(img + 0.5), 0.0, 255.0).to(torch.uint8)
        return out.reshape(b_n, c_n, self.h, self.w, 3).cpu().numpy()

    def _draw(self, img, ego, sig, b, c, rows, mind):
        rows = self._resolve(rows, b, sig)
        bx, by, cp, sp, o = self._local(rows, b, c, ego)
        r0, r1, c0, c1 = self._bbox(rows, b, c, ego, bx, by, cp, sp)
        # per candidate, float32: camera in the box frame, yaw cos/sin relative to the ego, half sizes
        box = torch.cat([o, cp[:, None], sp[:, None], rows[:, L.HX : L.HZ + 1]], 1).float()
        job = b * self.n_cams + c
        mind = mind.float()
        n_pix = img.shape[0]
        depth = self.gdist.reshape(self.n_cams, self.p).repeat(ego.shape[0], 1).reshape(-1)  # global pixels
        win_k = torch.full((n_pix,), -1, dtype=torch.int64, device=self.device)
        win_face = torch.zeros(n_pix, dtype=torch.int64, device=self.device)
        win_hit = torch.zeros((n_pix, 3), dtype=_F32, device=self.device)
        # near candidates first, in waves: each wave's depths let the next skip hidden pixels
        order = torch.argsort(mind)
        n = len(order)
        for lo, hi in _waves(n):
            wave = order[lo:hi]
            self._wave(wave, r0, r1, c0, c1, job, mind, box, depth, win_k, win_face, win_hit)
        pix = torch.nonzero(win_k >= 0)[:, 0]
        k = win_k[pix]
        cam_px = c[k] * self.p + pix % self.p
        img[pix] = self._box_colours(rows[k], win_face[pix], depth[pix], win_hit[pix], cam_px, c[k])

    def _wave(self, wave, r0, r1, c0, c1, job, mind, box, depth, win_k, win_face, win_hit):
        """Ray-test the candidates ``wave`` where their rectangles hold pixels farther than they can be."""
        r0, r1, c0, c1 = _take(r0, wave), _take(r1, wave), _take(c0, wave), _take(c1, wave)
        width = (c1 - c0 + 1).clamp(min=0)
        area = (r1 - r0 + 1).clamp(min=0) * width
        total = int(area.sum())
        if total == 0:
            return
        j = torch.repeat_interleave(torch.arange(len(wave), device=self.device), area, output_size=total)
        local = torch.arange(total, device=self.device) - _take(torch.cumsum(area, 0) - area, j)
        wj = _take(width, j)
        dr = torch.div(local, wj, rounding_mode="floor")
        k = _take(wave, j)
        # global pixel: (frame * cameras + camera) * P + row * W + column
        pix = _take(job, k) * self.p + _take(r0 * self.w + c0, j) + dr * self.w + (local - dr * wj)
        keep = _take(depth, pix) > _take(mind, k)
        k, pix = k[keep], pix[keep]
        cam_px = torch.remainder(_take(job, k), self.n_cams) * self.p + torch.remainder(pix, self.p)
        bk = _take(box, k)
        t, face, d = _slab(bk, _take(self.rays, cam_px))
        t = torch.where(t < _take(depth, pix), t, torch.inf)
        best = depth.clone()
        best.scatter_reduce_(0, pix, t, "amin")
        win = torch.isfinite(t) & (t == _take(best, pix))
        big = len(box)
        first = torch.full_like(win_k, big)
        first.scatter_reduce_(0, pix, torch.where(win, k, big), "amin")
        win &= _take(first, pix) == k
        idx = torch.nonzero(win)[:, 0]
        pix, t = _take(pix, idx), _take(t, idx)
        depth[pix] = t
        win_k[pix] = _take(k, idx)
        win_face[pix] = _take(face, idx)
        win_hit[pix] = _take(bk, idx)[:, 0:3] + t[:, None] * _take(d, idx)

    # -- colours --------------------------------------------------------------------------------

    def _ground_colours(self, ego):
        """(B * C * P, 3) float32: the ground texel at each pixel's level, lit and fogged, or the sky."""
        b_n = ego.shape[0]
        ce = torch.cos(ego[:, L.EGO_YAW]).float()[:, None, None]
        se = torch.sin(ego[:, L.EGO_YAW]).float()[:, None, None]
        tx = (ego[:, L.EGO_X] - self.tex_origin[0]).float()[:, None, None]
        ty = (ego[:, L.EGO_Y] - self.tex_origin[1]).float()[:, None, None]
        gx, gy = self.ground[None, :, :, 0], self.ground[None, :, :, 1]
        s = self.px_scale[None]
        ix = torch.floor((tx + ce * gx - se * gy) * s).long()
        iy = torch.floor((ty + se * gx + ce * gy) * s).long()
        h0, w0 = self.lab_hw
        in0 = (iy >= 0) & (iy < h0) & (ix >= 0) & (ix < w0)
        lab = torch.where(
            in0, _take(self.lab0, torch.where(in0, iy * w0 + ix, 0).reshape(-1)).reshape(in0.shape), 0
        )
        fine = _take(self.palette, lab.reshape(-1).long()).reshape(*lab.shape, 3)
        lh, lw = self.px_h[None], self.px_w[None]
        inl = (iy >= 0) & (iy < lh) & (ix >= 0) & (ix < lw)
        kk = torch.where(inl, self.px_off[None] + iy * lw + ix, 0)
        coarse = torch.where(
            inl[..., None], _take(self.coarse, kk.reshape(-1)).reshape(*kk.shape, 3), self.off_road
        )
        rgb = torch.where((self.level == 0)[None, ..., None], fine, coarse)
        col = rgb * self.ground[None, :, :, 3, None] + self.gadd[None]
        col = torch.where((self.level >= 0)[None, ..., None], col, self.bg[None])
        return col.reshape(b_n * self.n_cams * self.p, 3).contiguous()

    def _box_colours(self, rows, face, t, hit, cam_px, cams):
        wp = self.wp
        mat = rows[:, L.MAT]
        rgb = rows[:, L.R : L.B + 1].float()
        emissive = mat == MAT_EMISSIVE
        ok, col, flo = _windows(face, hit, rows[:, L.HX : L.HZ + 1].float())
        ok &= mat == L.MAT_BUILDING
        lit_win = ok & (wp[L.W_LAMPS_ON] > 0.5) & _window_lit(rows[:, L.AUX].long(), face, col, flo)
        window_rgb = torch.where(lit_win[:, None], _rgb(LIT_WINDOW_RGB, rgb), _rgb(WINDOW_RGB, rgb))
        rgb = torch.where(ok[:, None], window_rgb, rgb)
        emissive = emissive | lit_win
        f = torch.clamp((1.0 - torch.exp(-t / wp[L.W_FOG_DIST])) / wp[L.W_FOG_NORM], max=1.0)
        light = torch.gather(_face_lights(rows, wp).float(), 1, face[:, None])[:, 0]
        if wp[L.W_HEADLIGHTS] > 0.5:
            p = self.mount[cams].float() + t[:, None] * self.rays[cam_px]
            light = light + _headlight(p, wp[L.W_HL_STRENGTH], wp[L.W_HL_RANGE])
        tint = torch.tensor([wp[L.W_TINT_R], wp[L.W_TINT_G], wp[L.W_TINT_B]], dtype=_F32, device=rgb.device)
        f = torch.where(emissive, f * FOG_EMISSIVE, f)
        k = torch.where(emissive, 1.0 - f, light * (1.0 - f))
        rgb = torch.where(emissive[:, None], rgb, rgb * tint)
        fog = torch.tensor([wp[L.W_FOG_R], wp[L.W_FOG_G], wp[L.W_FOG_B]], dtype=_F32, device=rgb.device)
        return rgb * k[:, None] + fog * f[:, None]


def _take(x, idx):
    """``x[idx]`` along the first axis (index_select: much faster than advanced indexing on the CPU)."""
    return x.index_select(0, idx)


def _waves(n: int) -> list[tuple[int, int]]:
    """Slices of the near-to-far candidate order drawn one after another: 10 %, 25 %, the rest."""
    cuts = [0, max(1, n // 10), max(2, n // 10 + n // 4), n]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _slab(box, ray):
    """Entry distance (inf where missed), face and box-local direction of each pair's ray (float32).

    ``box`` (N, 8): camera position in the box frame, yaw cos and sin relative to the
    ego, half sizes; ``ray`` (N, 3) ego-frame directions."""
    cp, sp = box[:, 3], box[:, 4]
    d = torch.stack([cp * ray[:, 0] + sp * ray[:, 1], -sp * ray[:, 0] + cp * ray[:, 1], ray[:, 2]], 1)
    d_safe = torch.where(d.abs() >= 1e-12, d, 1e-12)
    inv = 1.0 / d_safe
    o, half = box[:, 0:3], box[:, 5:8]
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    tmin, axis = torch.minimum(t1, t2).max(dim=1)
    tmax = torch.maximum(t1, t2).min(dim=1).values
    positive = torch.gather(d_safe, 1, axis[:, None])[:, 0] > 0.0
    face = 2 * axis + positive.long()
    hit = (tmin <= tmax) & (tmin > L.NEAR_M)
    return torch.where(hit, tmin, torch.inf), face, d


def _rgb(values, like):
    return torch.tensor(values, dtype=_F32, device=like.device).expand_as(like)


def _pixel_range(lo, hi, centre, focal, n):
    a = torch.clamp(centre + focal * lo - 0.5, -2.0, n + 1.0)
    b = torch.clamp(centre + focal * hi - 0.5, -2.0, n + 1.0)
    return (torch.floor(a).long() - 1).clamp(min=0), (torch.ceil(b).long() + 1).clamp(max=n - 1)


def _face_lights(rows, wp):
    c, s = torch.cos(rows[:, L.YAW]), torch.sin(rows[:, L.YAW])
    sx, sy, sz = wp[L.W_SUN_X], wp[L.W_SUN_Y], wp[L.W_SUN_Z]
    along, across = c * sx + s * sy, -s * sx + c * sy
    zero = torch.zeros_like(c)
    cos = torch.stack([along, -along, across, -across, zero + sz, zero - sz], 1)
    return wp[L.W_AMBIENT] + wp[L.W_SUN] * torch.clamp(cos, min=0.0)


def _windows(face, hit, half):
    """(is window, column, floor) of box-local hit points (see the numba kernel's ``_window``)."""
    side = face < 2
    u = torch.where(side, hit[:, 1] + half[:, 1], hit[:, 0] + half[:, 0])
    span = 2.0 * torch.where(side, half[:, 1], half[:, 0])
    v = hit[:, 2] + half[:, 2] - 1.0
    fu, fv = u / WINDOW_PERIOD_M, v / FLOOR_M
    col, flo = torch.floor(fu), torch.floor(fv)
    ok = (fu - col > 0.25) & (fu - col < 0.75) & (fv - flo > 0.3) & (fv - flo < 0.78)
    ok &= (v > 2.5) & (u > 0.8) & (u < span - 0.8) & (v < 2.0 * half[:, 2] - 2.0) & (face < 4)
    return ok, col.long(), flo.long()


def _window_lit(building, face, col, flo):
    h = (building * 7919 + face * 104729 + col * 613 + flo * 2731) & 0xFFFFF
    h = (h * 2654435761) & 0xFFFFFFFF
    return torch.remainder(h >> 16, 100) < 40


def _headlight(p, strength, range_m):
    v = p - torch.tensor(HEADLIGHT_XYZ_M, dtype=p.dtype, device=p.device)
    dist = torch.sqrt((v * v).sum(1)) + 1e-6
    cos_a = (v[:, 0] * math.cos(HEADLIGHT_TILT_RAD) - v[:, 2] * math.sin(HEADLIGHT_TILT_RAD)) / dist
    cone = torch.clamp((cos_a - HEADLIGHT_COS_OUTER) / (HEADLIGHT_COS_INNER - HEADLIGHT_COS_OUTER), 0.0, 1.0)
    q = dist / range_m
    pool = POOL_SHARE * torch.exp(-(p[:, 0] ** 2 + p[:, 1] ** 2) / (POOL_RADIUS_M * POOL_RADIUS_M))
    return strength * (cone / (1.0 + q * q) + pool)
