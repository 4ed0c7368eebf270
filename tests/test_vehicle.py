"""The kinematic bicycle model and the one control mapping, against closed-form results.

Integration in :func:`sim.vehicle.step_vehicles` is exact for a constant steering angle
and a constant acceleration (exact arcs, exact constant-acceleration distances with the
stop inside a substep), so closed-form expectations hold to floating-point rounding.
Tolerances of 1e-9 (relative, or metres over a few hundred metres) leave room for
rounding accumulated over a few thousand operations, and are far below what any
first-order scheme would reach (explicit Euler errs by ~v*dt = 0.5 m when braking
from 10 m/s), so these tests tell an exact integrator from an approximate one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.errors import ConfigError
from sim.vehicle import (
    VEHICLE_PARAMS,
    VehicleParams,
    centre_to_rear_axle,
    control_to_physical,
    rear_axle_to_centre,
    step_longitudinal,
    step_vehicles,
)

DT = 0.05
CAR = VEHICLE_PARAMS["car"]
TRUCK = VEHICLE_PARAMS["truck"]


class Fleet:
    """N vehicles of one type as the struct-of-arrays state the kernel steps."""

    def __init__(self, params: VehicleParams, n: int = 1, *, speed=0.0, steer=0.0, yaw=0.0):
        self.x = np.zeros(n)
        self.y = np.zeros(n)
        self.yaw = np.full(n, float(yaw))
        self.speed = np.full(n, float(speed))
        self.steer = np.full(n, float(steer))
        self.target = np.full(n, float(steer))
        self.accel = np.zeros(n)
        self.wheelbase = np.full(n, params.wheelbase_m)
        self.rate = np.full(n, params.max_steer_rate_radps)
        self.vmax = np.full(n, params.max_speed_mps)

    def step(self, substeps: int = 2) -> np.ndarray:
        return step_vehicles(
            self.x,
            self.y,
            self.yaw,
            self.speed,
            self.steer,
            self.target,
            self.accel,
            self.wheelbase,
            self.rate,
            self.vmax,
            DT,
            substeps,
        )


def _fit_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle (Kasa fit): exact for points on a circle."""
    a = np.column_stack([x, y, np.ones_like(x)])
    (p, q, r), *_ = np.linalg.lstsq(a, -(x * x + y * y), rcond=None)
    cx, cy = -p / 2, -q / 2
    return cx, cy, math.sqrt(cx * cx + cy * cy - r)


# -- parameters and the control mapping -----------------------------------------------


def test_vehicle_params_table_is_read_only_and_realistic():
    with pytest.raises(TypeError):
        VEHICLE_PARAMS["car"] = CAR  # type: ignore[index]
    assert set(VEHICLE_PARAMS) == {"car", "truck", "bicycle"}
    assert CAR.max_steer_rad == pytest.approx(math.radians(35), abs=0.005)
    # full lock: rear-axle radius 2.8 / tan(0.61) = 4.0 m
    assert CAR.min_turn_radius_m == pytest.approx(2.8 / math.tan(0.61), rel=1e-12)
    assert CAR.rear_axle_to_centre_m == pytest.approx(2.3 - 0.9)


@pytest.mark.parametrize(
    "change",
    [
        {"length_m": -1.0},
        {"wheelbase_m": 0.0},
        {"max_brake_mps2": float("nan")},
        {"max_speed_mps": float("inf")},
        {"rear_overhang_m": -0.1},
        {"wheelbase_m": 4.0},  # 0.9 + 4.0 > 4.6
        {"max_steer_rad": math.pi / 2},
        {"max_accel_mps2": "3"},
    ],
)
def test_vehicle_params_reject_bad_values(change):
    values = {**CAR.__dict__, **change}
    with pytest.raises(ConfigError):
        VehicleParams(**values)


def test_zero_rear_overhang_is_allowed():
    VehicleParams(**{**CAR.__dict__, "rear_overhang_m": 0.0})


@pytest.mark.parametrize(
    ("steer", "accel", "expected"),
    [
        (0.0, 0.0, (0.0, 0.0)),
        (0.5, 0.5, (0.305, 1.5)),
        (-1.0, -1.0, (-0.61, -8.0)),
        (1.0, 1.0, (0.61, 3.0)),
        (-0.25, -0.5, (-0.1525, -4.0)),
        (3.0, -7.0, (0.61, -8.0)),  # clipped to [-1, 1]
        (-2.0, 2.0, (-0.61, 3.0)),
    ],
)
def test_control_to_physical(steer, accel, expected):
    target, accel_mps2 = control_to_physical(steer, accel, CAR)
    assert target == pytest.approx(expected[0], abs=1e-15)
    assert accel_mps2 == pytest.approx(expected[1], abs=1e-15)


def test_control_to_physical_uses_each_type_limits():
    assert control_to_physical(1.0, -1.0, TRUCK) == (0.6, -6.0)
    assert control_to_physical(-1.0, 1.0, VEHICLE_PARAMS["bicycle"]) == (-0.5, 1.5)


@pytest.mark.parametrize("bad", [(math.nan, 0.0), (0.0, math.inf), (0.0, -math.inf)])
def test_control_to_physical_rejects_non_finite(bad):
    with pytest.raises(ValueError):
        control_to_physical(*bad, CAR)


# -- the bicycle model ----------------------------------------------------------------


@pytest.mark.parametrize("substeps", [1, 4])
@pytest.mark.parametrize("delta", [0.3, -0.15, 0.61])
def test_constant_steer_drives_the_bicycle_circle(delta, substeps):
    fleet = Fleet(CAR, speed=10.0, steer=delta)
    radius = CAR.wheelbase_m / math.tan(abs(delta))
    lap_ticks = math.ceil(2 * math.pi * radius / (10.0 * DT)) + 1
    xs, ys, yaws = [0.0], [0.0], [0.0]
    for _ in range(lap_ticks):
        fleet.step(substeps)
        xs.append(fleet.x[0])
        ys.append(fleet.y[0])
        yaws.append(fleet.yaw[0])
    x, y = np.array(xs), np.array(ys)
    cx, cy, r = _fit_circle(x, y)
    assert r == pytest.approx(radius, rel=1e-9)
    # the centre lies to the right of +x (y > 0) for a right turn, left for a left turn
    assert (cx, cy) == pytest.approx((0.0, math.copysign(radius, delta)), abs=1e-8)
    assert np.ptp(np.hypot(x - cx, y - cy)) < 1e-9
    # yaw advances by exactly distance / R per tick
    dyaw = np.remainder(np.diff(np.unwrap(yaws)), 2 * math.pi)
    dyaw = np.where(dyaw > math.pi, dyaw - 2 * math.pi, dyaw)
    assert dyaw == pytest.approx(np.full(lap_ticks, 10.0 * DT * math.tan(delta) / CAR.wheelbase_m), abs=1e-12)
    # the box centre drives the concentric circle of radius sqrt(R^2 + c^2)
    bx, by = rear_axle_to_centre(x, y, np.array(yaws), CAR.rear_axle_to_centre_m)
    _, _, rb = _fit_circle(bx, by)
    assert rb == pytest.approx(math.hypot(radius, CAR.rear_axle_to_centre_m), rel=1e-9)


def test_positive_steer_turns_right_in_carla_frame():
    fleet = Fleet(CAR, speed=5.0, steer=0.3)
    fleet.step()
    dyaw = 5.0 * DT * math.tan(0.3) / CAR.wheelbase_m
    assert fleet.yaw[0] == pytest.approx(dyaw, rel=1e-12) and fleet.yaw[0] > 0
    # exact arc: chord 2R sin(dyaw/2) at angle dyaw/2
    chord = 2 * (CAR.wheelbase_m / math.tan(0.3)) * math.sin(dyaw / 2)
    assert fleet.x[0] == pytest.approx(chord * math.cos(dyaw / 2), rel=1e-12)
    assert fleet.y[0] == pytest.approx(chord * math.sin(dyaw / 2), rel=1e-12) and fleet.y[0] > 0


@pytest.mark.parametrize("substeps", [1, 2, 3, 8])
@pytest.mark.parametrize(("params", "v0"), [(CAR, 10.0), (TRUCK, 10.0), (CAR, 13.7)])
def test_full_brake_stops_after_v2_over_2b(params, v0, substeps):
    fleet = Fleet(params, speed=v0)
    fleet.accel[:] = control_to_physical(0.0, -1.0, params)[1]
    stop_time = v0 / params.max_brake_mps2
    accels = [fleet.step(substeps)[0] for _ in range(int(stop_time / DT) + 10)]
    assert fleet.speed[0] == 0.0
    assert fleet.x[0] == pytest.approx(v0 * v0 / (2 * params.max_brake_mps2), abs=1e-9)
    assert fleet.y[0] == 0.0 and fleet.yaw[0] == 0.0
    # realised acceleration: the full brake until the stop, the remainder in the stop tick, then 0
    k = int(stop_time / DT)
    assert accels[:k] == pytest.approx([-params.max_brake_mps2] * k, abs=1e-9)
    assert sum(accels) * DT == pytest.approx(-v0, abs=1e-9)
    assert accels[k + 1 :] == [0.0] * (len(accels) - k - 1)


def test_throttle_reaches_max_speed_and_holds_it():
    fleet = Fleet(CAR)
    fleet.accel[:] = control_to_physical(0.0, 1.0, CAR)[1]
    ticks = 400  # 20 s; the limit 50 m/s is reached at 50 / 3 = 16.67 s
    accels = np.array([fleet.step()[0] for _ in range(ticks)])
    assert fleet.speed[0] == CAR.max_speed_mps
    t_reach = CAR.max_speed_mps / CAR.max_accel_mps2
    expected = CAR.max_speed_mps**2 / (2 * CAR.max_accel_mps2) + CAR.max_speed_mps * (ticks * DT - t_reach)
    assert fleet.x[0] == pytest.approx(expected, abs=1e-9)
    k = int(t_reach / DT)
    assert accels[:k] == pytest.approx(3.0, abs=1e-9)
    assert np.all(accels[k + 1 :] == 0.0)


def test_steering_rate_limit():
    for substeps in (1, 2, 5):
        fleet = Fleet(CAR, n=2)
        fleet.target[:] = [0.61, -0.61]
        fleet.step(substeps)
        fleet.step(substeps)
        # 0.1 s at 1.2 rad/s: 0.12 rad, either way
        assert fleet.steer == pytest.approx([0.12, -0.12], abs=1e-12)
        for _ in range(8):  # 0.5 s in all: 0.6 rad, still short of 0.61
            fleet.step(substeps)
        assert fleet.steer == pytest.approx([0.6, -0.6], abs=1e-12)
        fleet.step(substeps)
        assert fleet.steer == pytest.approx([0.61, -0.61], abs=1e-15)  # reached and held
        # standing still, the vehicle does not move however the wheels turn
        assert np.all(fleet.x == 0.0) and np.all(fleet.y == 0.0) and np.all(fleet.yaw == 0.0)


def test_zero_control_from_rest_stays_put():
    fleet = Fleet(CAR, n=3, yaw=1.0)
    fleet.x[:] = [1.0, -2.0, 3.5]
    before = [a.copy() for a in (fleet.x, fleet.y, fleet.yaw, fleet.speed, fleet.steer)]
    for _ in range(200):
        assert np.all(fleet.step() == 0.0)
    for a, b in zip(before, (fleet.x, fleet.y, fleet.yaw, fleet.speed, fleet.steer), strict=True):
        assert np.array_equal(a, b)


def test_brake_never_reverses_and_speed_bounds_hold():
    fleet = Fleet(CAR, n=2, speed=0.0)
    fleet.accel[:] = [-8.0, 3.0]
    fleet.vmax[:] = [50.0, 2.0]
    for _ in range(100):
        fleet.step()
        assert fleet.speed[0] == 0.0 and fleet.x[0] == 0.0
        assert 0.0 <= fleet.speed[1] <= 2.0


def test_yaw_is_wrapped():
    fleet = Fleet(CAR, speed=10.0, steer=0.61, yaw=3.1)
    for _ in range(100):
        fleet.step()
        assert -math.pi <= fleet.yaw[0] < math.pi


def _reference_trajectory(target_of_tick, v0, accel, ticks, h=1e-4):
    """The continuous-time model by classical RK4 at a fine step, written independently:
    x' = v cos(yaw), y' = v sin(yaw), yaw' = v tan(steer) / L, steer moving toward the
    tick's target at the rate limit (piecewise linear, so sampled exactly)."""
    length, rate = CAR.wheelbase_m, CAR.max_steer_rate_radps
    state = np.array([0.0, 0.0, 0.0])
    steer, v = 0.0, v0
    n = round(DT / h)

    def deriv(s, steer_now, v_now):
        yaw_rate = v_now * math.tan(steer_now) / length
        return np.array([v_now * math.cos(s[2]), v_now * math.sin(s[2]), yaw_rate])

    for tick in range(ticks):
        target = target_of_tick(tick)
        for _ in range(n):
            s_mid = steer + max(-rate * h / 2, min(rate * h / 2, target - steer))
            s_end = steer + max(-rate * h, min(rate * h, target - steer))
            v_mid, v_end = v + accel * h / 2, v + accel * h
            k1 = deriv(state, steer, v)
            k2 = deriv(state + h / 2 * k1, s_mid, v_mid)
            k3 = deriv(state + h / 2 * k2, s_mid, v_mid)
            k4 = deriv(state + h * k3, s_end, v_end)
            state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            steer, v = s_end, v_end
    return state


def test_substeps_converge_to_the_continuous_model():
    """A slalom (the target flips every 0.4 s, so the wheels are always turning) while
    accelerating: the error against the continuous model must fall with substeps."""

    def target(tick):
        return 0.4 if (tick // 8) % 2 == 0 else -0.4

    ticks = 60  # 3 s
    ref = _reference_trajectory(target, 5.0, 1.0, ticks)
    errors = {}
    for substeps in (1, 2, 4, 8):
        fleet = Fleet(CAR, speed=5.0)
        fleet.accel[:] = 1.0
        for tick in range(ticks):
            fleet.target[:] = target(tick)
            fleet.step(substeps)
        errors[substeps] = math.hypot(fleet.x[0] - ref[0], fleet.y[0] - ref[1])
        assert abs(fleet.speed[0] - (5.0 + ticks * DT)) < 1e-12
    # the midpoint steering angle makes the scheme second order: error / 4 per doubling
    assert errors[1] < 0.05
    for a, b in ((1, 2), (2, 4), (4, 8)):
        assert errors[b] < errors[a] / 3, errors
    assert errors[8] < 1e-3


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(7)
    n = 51
    batch = Fleet(CAR, n=n)
    batch.x[:], batch.y[:] = rng.uniform(-100, 100, (2, n))
    batch.yaw[:] = rng.uniform(-math.pi, math.pi, n)
    batch.speed[:] = rng.uniform(0, 20, n)
    batch.steer[:] = rng.uniform(-0.5, 0.5, n)
    batch.target[:] = rng.uniform(-0.61, 0.61, n)
    batch.accel[:] = rng.uniform(-8, 3, n)
    batch.wheelbase[:] = rng.choice([2.8, 5.0, 1.05], n)
    singles = []
    for i in range(n):
        one = Fleet(CAR)
        for name in ("x", "y", "yaw", "speed", "steer", "target", "accel", "wheelbase", "rate", "vmax"):
            getattr(one, name)[:] = getattr(batch, name)[i]
        singles.append(one)
    for _ in range(20):
        accel = batch.step(3)
        for i, one in enumerate(singles):
            assert one.step(3)[0] == accel[i]
    for name in ("x", "y", "yaw", "speed", "steer"):
        assert np.array_equal(getattr(batch, name), [getattr(one, name)[0] for one in singles])


def test_step_longitudinal_matches_the_straight_bicycle():
    rng = np.random.default_rng(3)
    n = 20
    fleet = Fleet(CAR, n=n)
    fleet.speed[:] = rng.uniform(0, 30, n)
    s, speed = np.zeros(n), fleet.speed.copy()
    vmax = np.full(n, 25.0)
    fleet.vmax[:] = vmax
    for _ in range(50):
        fleet.accel[:] = rng.uniform(-8, 3, n)
        a1 = fleet.step(1)
        a2 = step_longitudinal(s, speed, fleet.accel, vmax, DT)
        assert np.allclose(a1, a2, rtol=0, atol=1e-12)
    assert np.allclose(fleet.x, s, rtol=0, atol=1e-9)
    assert np.array_equal(fleet.speed, speed)


def test_rear_axle_and_centre_round_trip():
    x, y = rear_axle_to_centre(1.0, 2.0, math.pi / 2, 1.4)
    assert (x, y) == pytest.approx((1.0, 3.4), abs=1e-12)  # yaw +90 deg points along +y
    assert centre_to_rear_axle(x, y, math.pi / 2, 1.4) == pytest.approx((1.0, 2.0), abs=1e-12)
