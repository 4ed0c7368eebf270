"""Cameras and the named rigs, mounted as CARLA mounts its RGB sensors.

A :class:`CameraSpec` is a pinhole camera fixed to the ego vehicle. The mount
``x_m``, ``y_m``, ``z_m`` is relative to the ego box centre at ground level in the
vehicle's own CARLA frame (x forward, y right, z up); ``yaw_rad`` turns the camera
from the vehicle's forward axis toward its right (CARLA's sign), ``pitch_rad`` tilts
it up (positive, as CARLA) or down (negative). Image axes: column ``u`` grows to the
camera's right, row ``v`` grows downward; pixel ``(v, u)`` looks through its centre
``(u + 0.5, v + 0.5)``. ``fov_deg`` is the horizontal field of view, as CARLA's
``fov`` attribute; the focal length in pixels is ``width_px / 2 / tan(fov / 2)`` for
both axes (square pixels).

:func:`rig` builds the named rigs (:data:`RIG_NAMES`); the same specs configure the
CARLA backend's sensors, so a policy sees the same views on both simulators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.errors import ConfigError

__all__ = ["CameraSpec", "rig", "RIG_NAMES", "MIN_SIZE_PX", "MAX_SIZE_PX", "MIN_FOV_DEG", "MAX_FOV_DEG"]

MIN_SIZE_PX, MAX_SIZE_PX = 8, 4096
MIN_FOV_DEG, MAX_FOV_DEG = 5.0, 170.0  # a pinhole camera cannot see 180 degrees
#: how far (m) a mount may sit from the ego box centre
MAX_MOUNT_M = 20.0
#: default tilt: slightly down, so the near road fills the lower half
DEFAULT_PITCH_RAD = math.radians(-5.0)


@dataclass(frozen=True)
class CameraSpec:
    """One pinhole RGB camera on the ego; see the module docstring for frames and axes."""

    name: str
    width_px: int = 160
    height_px: int = 80
    fov_deg: float = 90.0
    x_m: float = 1.5
    y_m: float = 0.0
    z_m: float = 1.6
    yaw_rad: float = 0.0
    pitch_rad: float = DEFAULT_PITCH_RAD

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"CameraSpec.name must be a non-empty string, got {self.name!r}")
        for field_name in ("width_px", "height_px"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"camera {self.name}: {field_name} must be an integer, got {value!r}")
            if not MIN_SIZE_PX <= value <= MAX_SIZE_PX:
                span = f"[{MIN_SIZE_PX}, {MAX_SIZE_PX}]"
                raise ConfigError(f"camera {self.name}: {field_name} must lie in {span}, got {value}")
        fov = _finite(self, "fov_deg")
        if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
            raise ConfigError(
                f"camera {self.name}: fov_deg must lie in [{MIN_FOV_DEG:g}, {MAX_FOV_DEG:g}], got {fov}"
            )
        for field_name in ("x_m", "y_m", "z_m"):
            if abs(_finite(self, field_name)) > MAX_MOUNT_M:
                raise ConfigError(f"camera {self.name}: |{field_name}| must be <= {MAX_MOUNT_M} m")
        if self.z_m < 0.1:
            raise ConfigError(f"camera {self.name}: z_m must be >= 0.1 m (above the ground), got {self.z_m}")
        _finite(self, "yaw_rad")
        if abs(_finite(self, "pitch_rad")) >= math.radians(89.0):
            raise ConfigError(
                f"camera {self.name}: |pitch_rad| must be below 89 degrees, got {self.pitch_rad}"
            )

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (both axes)."""
        return 0.5 * self.width_px / math.tan(math.radians(self.fov_deg) / 2.0)

    @property
    def vertical_fov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(0.5 * self.height_px / self.focal_px))

    def rotation_ego(self) -> np.ndarray:
        """(3, 3) matrix whose columns are the camera's forward, right and up axes in the ego frame."""
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        cy, sy = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        forward = np.array([cp * cy, cp * sy, sp])
        right = np.array([-sy, cy, 0.0])
        up = np.array([-sp * cy, -sp * sy, cp])
        return np.stack([forward, right, up], axis=1)

    def rays_ego(self) -> np.ndarray:
        """(H, W, 3) unit ray through each pixel centre, in the ego frame (float64)."""
        w, h, f = self.width_px, self.height_px, self.focal_px
        u = np.arange(w) + 0.5 - 0.5 * w
        v = np.arange(h) + 0.5 - 0.5 * h
        uu, vv = np.meshgrid(u, v)
        cam = np.stack([np.full_like(uu, f), uu, -vv], axis=-1)
        cam /= np.linalg.norm(cam, axis=-1, keepdims=True)
        return cam @ self.rotation_ego().T


def _finite(spec: CameraSpec, field_name: str) -> float:
    value = getattr(spec, field_name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating)
        or not math.isfinite(value)
    ):
        raise ConfigError(f"camera {spec.name}: {field_name} must be a finite number, got {value!r}")
    return float(value)


def _deg(d: float) -> float:
    return math.radians(d)


# name -> cameras as (name, fov_deg, x_m, y_m, z_m, yaw_deg, pitch_deg)
_RIGS: dict[str, tuple[tuple[str, float, float, float, float, float, float], ...]] = {
    # one windscreen camera
    "front": (("front", 90.0, 1.5, 0.0, 1.6, 0.0, -5.0),),
    # three windscreen cameras at -60/0/+60 degrees (the TransFuser layout), 180 degrees together
    "front3": (
        ("front_left", 60.0, 1.5, 0.0, 1.6, -60.0, -5.0),
        ("front", 60.0, 1.5, 0.0, 1.6, 0.0, -5.0),
        ("front_right", 60.0, 1.5, 0.0, 1.6, 60.0, -5.0),
    ),
    # a production-car surround rig: three windscreen cameras (wide, main, narrow/tele),
    # B-pillar cameras looking forward-sideways, fender repeaters looking backward-sideways,
    # and a wide rear camera above the number plate
    "surround8": (
        ("front_wide", 120.0, 1.5, 0.0, 1.6, 0.0, -5.0),
        ("front_main", 60.0, 1.5, 0.0, 1.6, 0.0, -3.0),
        ("front_narrow", 35.0, 1.5, 0.0, 1.6, 0.0, -2.0),
        ("left_pillar", 90.0, 0.1, -0.95, 1.3, -60.0, -5.0),
        ("right_pillar", 90.0, 0.1, 0.95, 1.3, 60.0, -5.0),
        ("left_repeater", 90.0, 1.2, -1.0, 0.95, -130.0, -5.0),
        ("right_repeater", 90.0, 1.2, 1.0, 0.95, 130.0, -5.0),
        ("rear", 120.0, -2.3, 0.0, 1.0, 180.0, -10.0),
    ),
}

#: the rig names :func:`rig` knows
RIG_NAMES: tuple[str, ...] = tuple(_RIGS)


def rig(
    name: str, width_px: int = 160, height_px: int = 80, fov_deg: float | None = None
) -> tuple[CameraSpec, ...]:
    """The cameras of the named rig, all ``width_px`` x ``height_px``.

    ``front``: one windscreen camera (x 1.5, z 1.6, 90 degrees). ``front3``: left,
    front and right windscreen cameras at -60, 0 and +60 degrees yaw, 60 degrees each
    (180 degrees together). ``surround8``: a production car's eight cameras -
    ``front_wide`` (120), ``front_main`` (60), ``front_narrow`` (35, tele) behind the
    windscreen; ``left_pillar``/``right_pillar`` on the B-pillars looking 60 degrees
    to the side and forward (90); ``left_repeater``/``right_repeater`` on the front
    fenders looking 130 degrees round, backward along the car's sides (90); ``rear``
    above the number plate (120, tilted 10 degrees down).

    ``fov_deg`` (None: each camera's own) overrides every camera's field of view.
    Unknown names raise :class:`ConfigError` listing the valid ones; out-of-range sizes
    raise it from :class:`CameraSpec`.
    """
    if name not in _RIGS:
        raise ConfigError(f"unknown camera rig {name!r}; valid rigs: {', '.join(RIG_NAMES)}")
    return tuple(
        CameraSpec(
            name=cam,
            width_px=width_px,
            height_px=height_px,
            fov_deg=fov if fov_deg is None else fov_deg,
            x_m=x,
            y_m=y,
            z_m=z,
            yaw_rad=_deg(yaw),
            pitch_rad=_deg(pitch),
        )
        for cam, fov, x, y, z, yaw, pitch in _RIGS[name]
    )
