"""Vehicle physics of the embedded simulator: the kinematic bicycle model.

Two things live here and nowhere else:

* :func:`control_to_physical`, the one mapping from the policy's ``[-1, 1]`` commands
  to physical targets (front-wheel angle in radians, acceleration in m/s²);
* the batched kinematic bicycle step :func:`step_vehicles` (numba), which moves N
  vehicles held as struct-of-arrays ``float64`` numpy arrays, in place.

Frame: CARLA's world frame (x forward, y right, z up). Yaw is in radians, positive
from +x toward +y (clockwise seen from above), so a positive steering angle (right)
makes yaw increase. The model's reference point is the **rear-axle centre**: there
the velocity points along the heading and the turning radius is exactly
``wheelbase / tan(steer)``. The box centre that :class:`sim.state.Actors` reports lies
``VehicleParams.rear_axle_to_centre_m`` ahead of it; convert with
:func:`rear_axle_to_centre` and :func:`centre_to_rear_axle`.

Integration is exact for what is constant within a substep: the longitudinal motion
uses the exact distance of constant acceleration, including the moment the speed
reaches 0 or ``max_speed`` inside the substep, and the path is an exact arc of the
substep's curvature (taken at the mean steering angle of the substep). With a
constant steering angle a vehicle therefore drives a true circle, and a braking
vehicle stops at exactly ``v² / (2 b)``, for any number of substeps; substeps only
matter while the steering angle is still moving toward its target.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, fields

import numba
import numpy as np

from sim.errors import ConfigError

__all__ = [
    "VehicleParams",
    "VEHICLE_PARAMS",
    "DEFAULT_SUBSTEPS",
    "control_to_physical",
    "step_vehicles",
    "step_longitudinal",
    "rear_axle_to_centre",
    "centre_to_rear_axle",
]

#: Physics substeps per 0.05 s tick unless a config says otherwise.
DEFAULT_SUBSTEPS = 2


@dataclass(frozen=True)
class VehicleParams:
    """Dimensions and limits of one vehicle type (SI units, radians).

    ``rear_overhang_m`` is the distance from the rear bumper to the rear axle; the
    front axle lies ``wheelbase_m`` ahead of the rear axle. ``max_steer_rad`` is the
    front-wheel angle at full lock, ``max_steer_rate_radps`` how fast the wheels turn.
    ``max_brake_mps2`` is a deceleration (positive number). Vehicles never reverse.
    """

    length_m: float
    width_m: float
    height_m: float
    wheelbase_m: float
    rear_overhang_m: float
    max_steer_rad: float
    max_steer_rate_radps: float
    max_accel_mps2: float
    max_brake_mps2: float
    max_speed_mps: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            lowest_ok = value == 0 if f.name == "rear_overhang_m" else False
            if not (number and (value > 0 or lowest_ok)):
                raise ConfigError(f"VehicleParams.{f.name} must be a positive number, got {value!r}")
        if self.rear_overhang_m + self.wheelbase_m > self.length_m:
            raise ConfigError(
                f"VehicleParams: rear_overhang_m + wheelbase_m ({self.rear_overhang_m + self.wheelbase_m}) "
                f"must not exceed length_m ({self.length_m})"
            )
        if self.max_steer_rad >= 0.5 * math.pi:
            raise ConfigError(f"VehicleParams.max_steer_rad must be below pi/2, got {self.max_steer_rad}")

    @property
    def rear_axle_to_centre_m(self) -> float:
        """Distance from the rear-axle centre forward to the box centre (m)."""
        return 0.5 * self.length_m - self.rear_overhang_m

    @property
    def min_turn_radius_m(self) -> float:
        """Turning radius of the rear-axle centre at full lock (m)."""
        return self.wheelbase_m / math.tan(self.max_steer_rad)


# Values and the reason for each:
# car: a mid-size sedan (4.6 x 1.9 m, wheelbase 2.8 m, overhangs 0.9 m). Full lock
#   35 deg gives a rear-axle radius of 4.0 m, a kerb-to-kerb turning circle of ~11 m.
#   1.2 rad/s turns the wheels lock to lock in ~1 s (a fast evasive move). 3 m/s²
#   is 0-100 km/h in ~9 s; 8 m/s² is ~0.8 g on dry asphalt; 50 m/s = 180 km/h.
# truck: a rigid box truck (8.5 x 2.5 x 3.5 m, wheelbase 5 m): lock 0.6 rad (R 7.3 m),
#   slower steering, 1.5 m/s² loaded, 6 m/s² brakes (~0.6 g), 25 m/s (90 km/h limiter).
# bicycle: 1.8 x 0.6 m, wheelbase 1.05 m; 1.5 m/s² of pedalling, 4 m/s² before the
#   rider pitches over, 12 m/s (43 km/h).
VEHICLE_PARAMS: types.MappingProxyType[str, VehicleParams] = types.MappingProxyType(
    {
        "car": VehicleParams(
            length_m=4.6,
            width_m=1.9,
            height_m=1.5,
            wheelbase_m=2.8,
            rear_overhang_m=0.9,
            max_steer_rad=0.61,
            max_steer_rate_radps=1.2,
            max_accel_mps2=3.0,
            max_brake_mps2=8.0,
            max_speed_mps=50.0,
        ),
        "truck": VehicleParams(
            length_m=8.5,
            width_m=2.5,
            height_m=3.5,
            wheelbase_m=5.0,
            rear_overhang_m=1.8,
            max_steer_rad=0.6,
            max_steer_rate_radps=0.8,
            max_accel_mps2=1.5,
            max_brake_mps2=6.0,
            max_speed_mps=25.0,
        ),
        "bicycle": VehicleParams(
            length_m=1.8,
            width_m=0.6,
            height_m=1.7,
            wheelbase_m=1.05,
            rear_overhang_m=0.35,
            max_steer_rad=0.5,
            max_steer_rate_radps=1.5,
            max_accel_mps2=1.5,
            max_brake_mps2=4.0,
            max_speed_mps=12.0,
        ),
    }
)


def control_to_physical(steer: float, accel: float, params: VehicleParams) -> tuple[float, float]:
    """Map the policy's command to ``(target_steer_rad, accel_mps2)``: the only such mapping.

    ``steer`` and ``accel`` are clipped to [-1, 1]; NaN or infinite values raise
    ``ValueError``. The target front-wheel angle is ``steer * max_steer_rad`` (positive:
    right). ``accel >= 0`` is throttle, ``accel * max_accel_mps2``; ``accel < 0`` is the
    brake, ``accel * max_brake_mps2`` (a deceleration: the speed stops at 0, the
    vehicle never reverses). The steering angle then follows the target at no more
    than ``max_steer_rate_radps`` (see :func:`step_vehicles`).
    """
    if not (math.isfinite(steer) and math.isfinite(accel)):
        raise ValueError(f"control must be finite numbers, got steer={steer!r}, accel={accel!r}")
    steer = min(1.0, max(-1.0, float(steer)))
    accel = min(1.0, max(-1.0, float(accel)))
    accel_mps2 = accel * (params.max_accel_mps2 if accel >= 0.0 else params.max_brake_mps2)
    return steer * params.max_steer_rad, accel_mps2


@numba.njit(cache=True)
def _longitudinal(v: float, a: float, v_max: float, h: float) -> tuple[float, float]:
    """Exact distance and end speed after ``h`` s of acceleration ``a`` from ``v``,
    with the speed held in [0, v_max] (it stops at the bound when it reaches it)."""
    v_new = v + a * h
    if v_new < 0.0:  # stops inside the step (a < 0)
        return v * v / (-2.0 * a), 0.0
    if v_new > v_max:
        if a <= 0.0:  # above the limit already and coasting down slower than the limit
            return v_max * h, v_max
        t = max(0.0, (v_max - v) / a)  # reaches the limit at t, then holds it
        return v * t + 0.5 * a * t * t + v_max * (h - t), v_max
    return 0.5 * (v + v_new) * h, v_new


@numba.njit(cache=True)
def step_vehicles(
    x: np.ndarray,
    y: np.ndarray,
    yaw: np.ndarray,
    speed: np.ndarray,
    steer: np.ndarray,
    target_steer: np.ndarray,
    accel_cmd: np.ndarray,
    wheelbase: np.ndarray,
    max_steer_rate: np.ndarray,
    max_speed: np.ndarray,
    dt_s: float,
    substeps: int,
) -> np.ndarray:
    """Advance N kinematic bicycles by ``dt_s`` in ``substeps`` equal substeps, in place.

    All arrays are 1-D ``float64`` of length N. State (updated): ``x``, ``y`` the
    rear-axle centre (m, CARLA frame), ``yaw`` (rad, wrapped to [-pi, pi)),
    ``speed`` (m/s, >= 0) and ``steer`` (front-wheel angle, rad, positive right).
    Commands (read): ``target_steer`` (rad) and ``accel_cmd`` (m/s², from
    :func:`control_to_physical` or a traffic model). Per-vehicle parameters (read):
    ``wheelbase`` (m), ``max_steer_rate`` (rad/s), ``max_speed`` (m/s).

    In each substep of ``h = dt_s / substeps``: the steering angle moves toward its
    target by at most ``max_steer_rate * h``; the speed changes by ``accel_cmd * h``,
    held in [0, max_speed]; the rear axle travels the exact constant-acceleration
    distance along an arc of curvature ``tan(steer_mid) / wheelbase`` (``steer_mid``:
    the substep's mean angle). Returns the realised acceleration over the tick,
    ``(speed_end - speed_start) / dt_s`` per vehicle (differs from ``accel_cmd`` where
    the speed bounds cut it).
    """
    n = x.shape[0]
    h = dt_s / substeps
    realised = np.empty(n)
    for i in range(n):
        xi, yi, psi, v, d = x[i], y[i], yaw[i], speed[i], steer[i]
        v0 = v
        a = accel_cmd[i]
        step_max = max_steer_rate[i] * h
        for _ in range(substeps):
            d_new = d + min(step_max, max(-step_max, target_steer[i] - d))
            dist, v = _longitudinal(v, a, max_speed[i], h)
            dpsi = dist * math.tan(0.5 * (d + d_new)) / wheelbase[i]
            half = 0.5 * dpsi
            # chord of the arc: dist * sin(half) / half, with the series near 0
            chord = dist * (1.0 - half * half / 6.0) if abs(half) < 1e-4 else dist * math.sin(half) / half
            xi += chord * math.cos(psi + half)
            yi += chord * math.sin(psi + half)
            psi += dpsi
            d = d_new
        x[i], y[i], speed[i], steer[i] = xi, yi, v, d
        yaw[i] = (psi + math.pi) % (2.0 * math.pi) - math.pi
        realised[i] = (v - v0) / dt_s
    return realised


@numba.njit(cache=True)
def step_longitudinal(
    s: np.ndarray, speed: np.ndarray, accel_cmd: np.ndarray, max_speed: np.ndarray, dt_s: float
) -> np.ndarray:
    """Advance N vehicles along their paths by ``dt_s``, in place: the longitudinal part
    of :func:`step_vehicles` alone (same exact constant-acceleration distance, speed held
    in [0, max_speed]), for traffic that follows lane centre lines by distance ``s`` (m).
    Returns the realised acceleration (m/s²) per vehicle.
    """
    n = s.shape[0]
    realised = np.empty(n)
    for i in range(n):
        dist, v = _longitudinal(speed[i], accel_cmd[i], max_speed[i], dt_s)
        s[i] += dist
        realised[i] = (v - speed[i]) / dt_s
        speed[i] = v
    return realised


def rear_axle_to_centre(x, y, yaw_rad, rear_axle_to_centre_m):
    """Box centre (x, y) from the rear-axle centre: ``offset`` metres ahead along yaw.

    Works on scalars or arrays (``rear_axle_to_centre_m`` per vehicle or one value).
    """
    return x + rear_axle_to_centre_m * np.cos(yaw_rad), y + rear_axle_to_centre_m * np.sin(yaw_rad)


def centre_to_rear_axle(x, y, yaw_rad, rear_axle_to_centre_m):
    """Rear-axle centre (x, y) from the box centre (the inverse of :func:`rear_axle_to_centre`)."""
    return x - rear_axle_to_centre_m * np.cos(yaw_rad), y - rear_axle_to_centre_m * np.sin(yaw_rad)
