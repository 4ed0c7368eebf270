"""Per-camera tables computed once per (rig, weather): rays, ground hits, mip levels, sky.

The ground is drawn as the plane at the ego's height, and a camera is fixed to the
ego, so where each pixel's ray meets the ground *in the ego frame* never changes:
the hit point, its distance, the mip level of its pixel footprint, the fog and the
light there (the sun on an upward face plus the ego's headlights) are computed here
once, in float64, and both kernels only turn the hit point by the ego's pose and
look the texture up. Pixels whose ray misses the ground within ``far_m`` show the
background (sky gradient above the horizon, fog below it), also computed once.

Headlights (:func:`headlight`): a beam from ``(2.3, 0, 0.7)`` in the ego frame along
the ego's axis tilted 3 degrees down, full inside 14 degrees and fading to nothing
at 35, falling off as ``1 / (1 + (d / range)^2)``, plus a pool of light round the car.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.render import layout as L
from sim.render.camera import CameraSpec
from sim.render.weather import WeatherPreset

__all__ = ["CameraTables", "headlight", "weather_vector", "HEADLIGHT_XYZ_M"]

HEADLIGHT_XYZ_M = (2.3, 0.0, 0.7)
HEADLIGHT_TILT_RAD = math.radians(3.0)
HEADLIGHT_COS_OUTER = math.cos(math.radians(30.0))
HEADLIGHT_COS_INNER = math.cos(math.radians(10.0))
POOL_RADIUS_M = 5.0
POOL_SHARE = 0.12


def headlight(p_ego: np.ndarray, strength: float, range_m: float) -> np.ndarray:
    """Light the ego's headlights add at ego-frame points (..., 3); the kernels repeat this formula."""
    vx = p_ego[..., 0] - HEADLIGHT_XYZ_M[0]
    vy = p_ego[..., 1] - HEADLIGHT_XYZ_M[1]
    vz = p_ego[..., 2] - HEADLIGHT_XYZ_M[2]
    dist = np.sqrt(vx * vx + vy * vy + vz * vz) + 1e-6
    cos_a = (vx * math.cos(HEADLIGHT_TILT_RAD) - vz * math.sin(HEADLIGHT_TILT_RAD)) / dist
    cone = np.clip((cos_a - HEADLIGHT_COS_OUTER) / (HEADLIGHT_COS_INNER - HEADLIGHT_COS_OUTER), 0.0, 1.0)
    q = dist / range_m
    r2 = (p_ego[..., 0] ** 2 + p_ego[..., 1] ** 2) / (POOL_RADIUS_M * POOL_RADIUS_M)
    return strength * (cone / (1.0 + q * q) + POOL_SHARE * np.exp(-r2))


def weather_vector(weather: WeatherPreset) -> np.ndarray:
    """The preset as the kernels' flat parameter vector (names in :mod:`sim.render.layout`)."""
    w = np.zeros(L.WEATHER_FIELDS)
    w[[L.W_FOG_R, L.W_FOG_G, L.W_FOG_B]] = weather.fog_rgb
    w[L.W_FOG_DIST] = weather.fog_distance_m
    w[L.W_FAR] = weather.far_m
    w[L.W_FOG_NORM] = 1.0 - math.exp(-weather.far_m / weather.fog_distance_m)
    w[L.W_AMBIENT] = weather.ambient
    w[L.W_SUN] = weather.sun_strength
    w[[L.W_SUN_X, L.W_SUN_Y, L.W_SUN_Z]] = weather.sun_dir
    w[L.W_HEADLIGHTS] = 1.0 if weather.headlights else 0.0
    w[L.W_HL_STRENGTH] = weather.headlight_strength
    w[L.W_HL_RANGE] = weather.headlight_range_m
    w[L.W_LAMPS_ON] = 1.0 if weather.lamps_on else 0.0
    w[[L.W_TINT_R, L.W_TINT_G, L.W_TINT_B]] = weather.tint_rgb
    return w


def _ground_hits(rays: np.ndarray, mount: np.ndarray, far_m: float):
    """Distance along each ray to the ground plane (inf where it misses within far_m) and the hit."""
    dz = rays[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dz < -1e-9, mount[2] / -dz, np.inf)
    t = np.where(t <= far_m, t, np.inf)
    hit = mount + np.where(np.isfinite(t), t, 0.0)[..., None] * rays
    return t, hit


def _corner_rays(cam: CameraSpec) -> np.ndarray:
    w, h, f = cam.width_px, cam.height_px, cam.focal_px
    uu, vv = np.meshgrid(np.arange(w + 1) - 0.5 * w, np.arange(h + 1) - 0.5 * h)
    d = np.stack([np.full_like(uu, f), uu, -vv], axis=-1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d @ cam.rotation_ego().T


def _mip_levels(cam: CameraSpec, mount: np.ndarray, far_m: float, m_per_px: float, levels: int) -> np.ndarray:
    """Per pixel: the level whose texel is no larger than the pixel's ground footprint."""
    t, hit = _ground_hits(_corner_rays(cam), mount, 1e9)
    ok = np.isfinite(t)
    du = np.linalg.norm(hit[:, 1:] - hit[:, :-1], axis=-1)
    dv = np.linalg.norm(hit[1:] - hit[:-1], axis=-1)
    du = 0.5 * (du[1:] + du[:-1])
    dv = 0.5 * (dv[:, 1:] + dv[:, :-1])
    corner_ok = ok[1:, 1:] & ok[1:, :-1] & ok[:-1, 1:] & ok[:-1, :-1]
    footprint = np.where(corner_ok, np.sqrt(du * dv), np.inf)
    with np.errstate(divide="ignore"):
        level = np.floor(np.log2(np.maximum(footprint, 1e-9) / m_per_px))
    return np.clip(np.nan_to_num(level, posinf=levels - 1), 0, levels - 1).astype(np.int64)


def _sky(rays: np.ndarray, weather: WeatherPreset) -> np.ndarray:
    elev = np.arcsin(np.clip(rays[..., 2], -1.0, 1.0))
    s = np.sqrt(np.clip(elev / (math.pi / 2), 0.0, 1.0))[..., None]
    top, hor, fog = (
        np.array(c, dtype=float) for c in (weather.sky_top_rgb, weather.sky_horizon_rgb, weather.fog_rgb)
    )
    sky = hor + (top - hor) * s
    near = np.clip(elev / 0.06, 0.0, 1.0)[..., None]
    return fog + (sky - fog) * near


@dataclass(frozen=True, eq=False)
class CameraTables:
    """Everything per camera and pixel that does not change from frame to frame (float64).

    P = H * W pixels, row-major. ``rays`` (C, P, 3) unit ego-frame rays; ``ground``
    (C, P, 4): ego-frame hit x, y (relative to the ego box centre), distance, and the
    light factor times (1 - fog); ``level`` (C, P) int64 mip level, -1 where the
    pixel shows the background; ``ground_add`` (C, P, 3) fog colour times fog;
    ``background`` (C, P, 3); ``mount`` (C, 3); ``axes`` (C, 3, 3) columns forward,
    right, up of each camera in the ego frame; ``planes`` (C, 4, 3) inward unit
    normals of the frustum's side planes (through the camera); ``focal_px`` (C,);
    ``depth`` (C, P) the ground distance (inf: background) that starts each frame's
    depth buffer, ``tile_depth`` (C, th, tw) its farthest value per ``TILE_PX`` tile;
    ``fog`` (C, P) the fog factor at the ground hit (0 where the pixel shows the
    background): ``ground_add`` is it times the fog colour.
    """

    width_px: int
    height_px: int
    rays: np.ndarray
    ground: np.ndarray
    level: np.ndarray
    ground_add: np.ndarray
    background: np.ndarray
    mount: np.ndarray
    axes: np.ndarray
    planes: np.ndarray
    focal_px: np.ndarray
    depth: np.ndarray
    tile_depth: np.ndarray
    fog: np.ndarray

    @classmethod
    def build(
        cls, cams: tuple[CameraSpec, ...], weather: WeatherPreset, m_per_px: float, levels: int
    ) -> CameraTables:
        w, h = cams[0].width_px, cams[0].height_px
        p = w * h
        far = weather.far_m
        fog = np.array(weather.fog_rgb, dtype=float)
        n = len(cams)
        rays, ground = np.zeros((n, p, 3)), np.zeros((n, p, 4))
        level, add, bg = np.full((n, p), -1, np.int64), np.zeros((n, p, 3)), np.zeros((n, p, 3))
        fogs = np.zeros((n, p))
        mount, axes, planes = np.zeros((n, 3)), np.zeros((n, 3, 3)), np.zeros((n, 4, 3))
        for i, cam in enumerate(cams):
            mount[i] = (cam.x_m, cam.y_m, cam.z_m)
            axes[i] = cam.rotation_ego()
            planes[i] = _planes(cam)
            r = cam.rays_ego().reshape(p, 3)
            rays[i] = r
            t, hit = _ground_hits(r, mount[i], far)
            on = np.isfinite(t)
            f = weather.fog_factor(np.where(on, t, far))
            light = weather.ground_level + (
                headlight(hit, weather.headlight_strength, weather.headlight_range_m)
                if weather.headlights
                else 0.0
            )
            ground[i, :, 0], ground[i, :, 1] = hit[:, 0], hit[:, 1]
            ground[i, :, 2] = np.where(on, t, np.inf)
            ground[i, :, 3] = np.where(on, light * (1.0 - f), 0.0)
            fogs[i] = np.where(on, f, 0.0)
            add[i] = np.where(on[:, None], f[:, None] * fog, 0.0)
            lv = _mip_levels(cam, mount[i], far, m_per_px, levels).reshape(p)
            level[i] = np.where(on, lv, -1)
            bg[i] = np.where((r[:, 2] < 0.0)[:, None], fog, _sky(r, weather))
        focal = np.array([c.focal_px for c in cams])
        depth = np.ascontiguousarray(ground[:, :, 2])
        th, tw = -(-h // L.TILE_PX), -(-w // L.TILE_PX)
        padded = np.zeros((n, th * L.TILE_PX, tw * L.TILE_PX))
        padded[:, :h, :w] = depth.reshape(n, h, w)
        tiles = padded.reshape(n, th, L.TILE_PX, tw, L.TILE_PX).max(axis=(2, 4))
        return cls(w, h, rays, ground, level, add, bg, mount, axes, planes, focal, depth, tiles, fogs)


def _planes(cam: CameraSpec) -> np.ndarray:
    ax = cam.rotation_ego()
    fwd, right, up = ax[:, 0], ax[:, 1], ax[:, 2]
    th = 0.5 * cam.width_px / cam.focal_px
    tv = 0.5 * cam.height_px / cam.focal_px
    n = np.stack([right + th * fwd, -right + th * fwd, -up + tv * fwd, up + tv * fwd])
    return n / np.linalg.norm(n, axis=1, keepdims=True)
