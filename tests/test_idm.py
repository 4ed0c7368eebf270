"""The Intelligent Driver Model: its formula, its safe-braking invariant, and 200 cars
on a real OpenDRIVE ring road for ten simulated minutes without a collision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.collision import overlapping_pairs
from sim.errors import ConfigError
from sim.idm import IDM_COLUMNS, IDMParams, idm_accel, idm_table
from sim.maps.roadmap import LaneKey, RoadMap
from sim.vehicle import VEHICLE_PARAMS, step_longitudinal

DT = 0.05
P = IDMParams()


def _one(v, v0, gap, closing, params=P, dt=DT) -> float:
    return float(
        idm_accel(np.array([v]), np.array([v0]), np.array([gap]), np.array([closing]), params.table(1), dt)[0]
    )


def _plain_idm(v, v0, gap, closing, p=P) -> float:
    """The textbook IDM (below the desired speed), clipped at the brake: no safety bound."""
    a, b = p.max_accel_mps2, p.comfort_decel_mps2
    s_star = p.min_gap_m + max(0.0, v * p.time_headway_s + v * closing / (2 * math.sqrt(a * b)))
    return max(-p.max_brake_mps2, a * (1 - (v / v0) ** p.delta - (s_star / gap) ** 2))


# -- parameters ------------------------------------------------------------------------


def test_params_table_columns_are_the_fields():
    assert IDM_COLUMNS == (
        "time_headway_s",
        "min_gap_m",
        "max_accel_mps2",
        "comfort_decel_mps2",
        "delta",
        "max_brake_mps2",
        "leader_max_brake_mps2",
        "emergency_gap_m",
    )
    table = P.table(3)
    assert table.shape == (3, 8) and table.dtype == np.float64
    assert table[2].tolist() == [1.5, 2.0, 1.5, 2.0, 4.0, 8.0, 8.0, 0.5]
    truck = IDMParams(max_brake_mps2=VEHICLE_PARAMS["truck"].max_brake_mps2, time_headway_s=2.0)
    mixed = idm_table([P, truck])
    assert mixed[1, IDM_COLUMNS.index("max_brake_mps2")] == 6.0
    assert mixed[1, IDM_COLUMNS.index("time_headway_s")] == 2.0
    assert idm_table([]).shape == (0, 8)


@pytest.mark.parametrize(
    "change",
    [
        {"time_headway_s": 0.0},
        {"min_gap_m": -1.0},
        {"delta": float("nan")},
        {"max_brake_mps2": float("inf")},
        {"emergency_gap_m": -0.1},
        {"emergency_gap_m": 2.5},  # above min_gap_m
        {"comfort_decel_mps2": 9.0},  # above max_brake_mps2
        {"max_accel_mps2": True},
    ],
)
def test_params_reject_bad_values(change):
    with pytest.raises(ConfigError):
        IDMParams(**change)


# -- the formula -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "v0", "expected"),
    [
        (0.0, 20.0, 1.5),  # a
        (10.0, 20.0, 1.5 * (1 - 0.5**4)),  # a (1 - (v / v0)^4) = 1.40625
        (20.0, 20.0, 0.0),
        (25.0, 20.0, -2.0 * (1 - 0.8**3)),  # improved IDM above v0: exponent a delta / b = 3
        (5.0, 0.0, -2.0),  # told to stop: comfortable deceleration
        (0.0, 0.0, 0.0),
    ],
)
def test_free_road(v, v0, expected):
    assert _one(v, v0, math.inf, 123.0) == pytest.approx(expected, abs=1e-12)


def test_overspeed_slows_at_no_more_than_the_comfortable_deceleration():
    for v in (21.0, 30.0, 60.0, 1e4):
        assert -P.comfort_decel_mps2 <= _one(v, 20.0, math.inf, 0.0) < 0.0


@pytest.mark.parametrize(("v", "gap", "closing"), [(10.0, 30.0, 2.0), (10.0, 30.0, -4.0), (15.0, 60.0, 5.0)])
def test_interaction_term(v, gap, closing):
    # s* = s0 + max(0, v T + v dv / (2 sqrt(a b))), a_idm = a (1 - (v/v0)^4 - (s*/s)^2);
    # far enough from braking hard that the safety bound is not active
    s_star = 2.0 + max(0.0, v * 1.5 + v * closing / (2 * math.sqrt(1.5 * 2.0)))
    expected = 1.5 * (1 - (v / 20.0) ** 4 - (s_star / gap) ** 2)
    assert _one(v, 20.0, gap, closing) == pytest.approx(expected, abs=1e-12)
    assert _one(v, 20.0, gap, closing) == pytest.approx(_plain_idm(v, 20.0, gap, closing), abs=1e-12)


def test_touching_or_nan_gap_brakes_fully():
    for gap in (0.0, -1.0, math.nan):
        assert _one(10.0, 20.0, gap, 0.0) == -P.max_brake_mps2


def test_safe_braking_bound_value():
    """A truck with an aggressive IDM (T = 0.3 s) 20 m behind a car, both at 30 m/s.
    The IDM asks for -1.5 (9.5 / 20)^2 = -0.34 m/s²; the truck brakes at most 6 m/s²
    but the car may brake at 8, so the bound
    (v + v') dt / 2 + v'^2 / (2 * 6) <= 20 - 0.5 + 30^2 / (2 * 8)
    gives v' = -0.15 + sqrt(0.15^2 + 6 (2 * 75.75 - 1.5)) and a = (v' - 30) / 0.05."""
    truck = IDMParams(time_headway_s=0.3, min_gap_m=0.5, max_brake_mps2=6.0)
    v_safe = -0.15 + math.sqrt(0.15**2 + 6.0 * (2 * 75.75 - 30.0 * 0.05))
    assert _plain_idm(30.0, 30.0, 20.0, 0.0, truck) == pytest.approx(-1.5 * (9.5 / 20) ** 2, abs=1e-12)
    assert _one(30.0, 30.0, 20.0, 0.0, truck) == pytest.approx((v_safe - 30.0) / DT, abs=1e-9)
    assert -6.0 < (v_safe - 30.0) / DT < -2.0
    # creeping up to a standing car: 0.2 m/s, 0.504 m away, so reach = 0.504 - 0.5 = 0.004 m
    # is less than v dt / 2 = 0.005 m: it stops within the tick, at v^2 / (2 reach) = 5 m/s²
    assert _plain_idm(0.2, 30.0, 0.504, 0.2, truck) > -1.0
    assert _one(0.2, 30.0, 0.504, 0.2, truck) == pytest.approx(-(0.2**2) / (2 * 0.004), abs=1e-9)


def _leader_brakes(follower: IDMParams, use_bound: bool, v: float = 30.0, gap: float = 20.0) -> float:
    """Car ahead brakes at 8 m/s² to a stop from ``v``; the follower starts at ``v`` too.
    Returns the smallest gap seen (m), integrated exactly per tick."""
    s = np.array([0.0, gap + 4.6])
    speed = np.array([v, v])
    vmax = np.full(2, 50.0)
    smallest = gap
    for _ in range(400):
        g = s[1] - s[0] - 4.6
        closing = speed[0] - speed[1]
        if use_bound:
            a = _one(speed[0], v, g, closing, follower)
        else:
            a = _plain_idm(speed[0], v, g, closing, follower) if g > 0 else -follower.max_brake_mps2
        step_longitudinal(s, speed, np.array([a, -8.0]), vmax, DT)
        smallest = min(smallest, s[1] - s[0] - 4.6)
    return smallest


def test_bound_prevents_the_collision_the_plain_idm_has():
    truck = IDMParams(time_headway_s=0.3, min_gap_m=0.5, max_brake_mps2=6.0)
    assert _leader_brakes(truck, use_bound=False) < 0.0  # the plain IDM runs into the car
    assert _leader_brakes(truck, use_bound=True) >= truck.emergency_gap_m - 1e-9


def _distance(v, a, tau):
    """Exact distance after ``tau`` s at constant acceleration ``a``, speed held at >= 0."""
    stop = np.where(a < 0, v / np.maximum(-a, 1e-300), np.inf)
    t = np.minimum(tau, stop)
    return v * t + 0.5 * a * t * t


def test_safe_braking_invariant_holds_on_random_states():
    """From 20,000 random states that satisfy the invariant, one tick with the IDM's
    command and a random leader (braking up to its assumed limit, or accelerating)
    keeps the gap >= emergency gap at 21 instants of the tick and ends in a state that
    satisfies the invariant again. Tolerance 1e-9 m: rounding on distances of < 1 km."""
    rng = np.random.default_rng(11)
    m = 20_000
    columns = {
        "time_headway_s": rng.uniform(0.1, 2.5, m),
        "min_gap_m": rng.uniform(0.5, 4.0, m),
        "max_accel_mps2": rng.uniform(0.5, 4.0, m),
        "comfort_decel_mps2": rng.uniform(1.0, 3.0, m),
        "delta": rng.uniform(1.0, 6.0, m),
        "max_brake_mps2": rng.uniform(3.0, 10.0, m),
        "leader_max_brake_mps2": rng.uniform(3.0, 10.0, m),
    }
    columns["emergency_gap_m"] = columns["min_gap_m"] * rng.uniform(0.0, 1.0, m)
    table = np.column_stack([columns[c] for c in IDM_COLUMNS])
    margin = columns["emergency_gap_m"]
    b_own, b_lead = columns["max_brake_mps2"], columns["leader_max_brake_mps2"]
    b = np.minimum(b_own, b_lead)
    v = rng.uniform(0.0, 40.0, m) * rng.integers(0, 2, m)  # half of them near standstill
    v = np.where(rng.random(m) < 0.1, 0.0, v)
    v_lead = rng.uniform(0.0, 40.0, m) * rng.integers(0, 2, m)
    gap = margin + rng.exponential(20.0, m)
    ok = v * v / (2 * b) <= gap - margin + v_lead * v_lead / (2 * b_lead)
    v, v_lead, gap, table, margin, b, b_lead, b_own = (
        arr[ok] for arr in (v, v_lead, gap, table, margin, b, b_lead, b_own)
    )
    assert len(v) > 8_000
    a = idm_accel(v, rng.uniform(0.0, 40.0, len(v)), gap, v - v_lead, table, DT)
    assert np.all(a >= -b_own) and np.all(a <= table[:, IDM_COLUMNS.index("max_accel_mps2")])
    a_lead = rng.uniform(-1.0, 0.3, len(v)) * b_lead
    a_lead = np.where(rng.random(len(v)) < 0.3, -b_lead, a_lead)  # a third brake as hard as assumed
    for tau in np.linspace(0.0, DT, 21):
        g = gap + _distance(v_lead, a_lead, tau) - _distance(v, a, tau)
        assert g.min() >= margin.min() - 1e-9 and np.all(g - margin >= -1e-9)
    gap1 = gap + _distance(v_lead, a_lead, DT) - _distance(v, a, DT)
    v1, v_lead1 = np.maximum(0.0, v + a * DT), np.maximum(0.0, v_lead + a_lead * DT)
    slack = gap1 - margin + v_lead1**2 / (2 * b_lead) - v1**2 / (2 * b)
    assert slack.min() >= -1e-9
    # the bound binds on a good share of these states, so they test it
    plain = idm_accel(v, np.full(len(v), 40.0), np.full(len(v), np.inf), v - v_lead, table, DT)
    assert np.mean(a < np.minimum(plain, 0.0) - 1.0) > 0.1


def test_follower_stops_behind_a_stopped_leader():
    """From 15 m/s, 150 m behind a standing car: it stops at about s0 and never closer
    than s0 - 0.1 m (the IDM approaches s0 from above; 0.1 m allows for the discrete tick)."""
    s = np.array([0.0, 150.0 + 4.6])
    speed = np.array([15.0, 0.0])
    vmax = np.full(2, 50.0)
    gaps, speeds = [], []
    for _ in range(int(90 / DT)):
        g = s[1] - s[0] - 4.6
        a = _one(speed[0], 15.0, g, speed[0] - speed[1])
        step_longitudinal(s, speed, np.array([a, 0.0]), vmax, DT)
        gaps.append(s[1] - s[0] - 4.6)
        speeds.append(speed[0])
    gaps = np.array(gaps)
    assert gaps.min() >= P.min_gap_m - 0.1 and gaps.min() > 0
    assert gaps[-1] == pytest.approx(P.min_gap_m, abs=0.1)
    assert speeds[-1] < 0.01
    assert min(speeds[: int(5 / DT)]) > 5.0  # it does not stop far short first


# -- 200 cars on a ring road -------------------------------------------------------------

RING_RADIUS_M = 300.0


def ring_road_xodr(radius_m: float) -> str:
    """One road whose plan view is a single arc of curvature 1 / R over a full circle,
    two driving lanes on the right, the road its own predecessor and successor."""
    length = 2 * math.pi * radius_m

    def lane(lane_id: int) -> str:
        return (
            f'<lane id="{lane_id}" type="driving" level="false">'
            f'<link><predecessor id="{lane_id}"/><successor id="{lane_id}"/></link>'
            '<width sOffset="0" a="3.5" b="0" c="0" d="0"/>'
            '<roadMark sOffset="0" type="broken" color="standard" width="0.12"/></lane>'
        )

    return f"""<?xml version="1.0" standalone="yes"?>
<OpenDRIVE>
  <header revMajor="1" revMinor="4" name="ring" version="1.00">
    <geoReference><![CDATA[+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +datum=WGS84]]></geoReference>
  </header>
  <road name="ring" length="{length:.12f}" id="1" junction="-1">
    <link>
      <predecessor elementType="road" elementId="1" contactPoint="end"/>
      <successor elementType="road" elementId="1" contactPoint="start"/>
    </link>
    <type s="0" type="town"><speed max="50" unit="km/h"/></type>
    <planView>
      <geometry s="0" x="0" y="0" hdg="0" length="{length:.12f}">
        <arc curvature="{1 / radius_m:.15f}"/>
      </geometry>
    </planView>
    <elevationProfile><elevation s="0" a="0" b="0" c="0" d="0"/></elevationProfile>
    <lateralProfile/>
    <lanes>
      <laneSection s="0">
        <center><lane id="0" type="none" level="false"/></center>
        <right>{lane(-1)}{lane(-2)}</right>
      </laneSection>
    </lanes>
  </road>
</OpenDRIVE>
"""


@pytest.fixture(scope="module")
def ring_lane():
    road_map = RoadMap.from_xodr("ring", ring_road_xodr(RING_RADIUS_M))
    lane = road_map.lanes[LaneKey(1, 0, -1)]
    assert lane.successors == [lane.key] and lane.predecessors == [lane.key]
    # lane -1 runs 1.75 m outside the reference circle
    assert lane.length_m == pytest.approx(2 * math.pi * (RING_RADIUS_M + 1.75), rel=1e-5)
    return lane


class LaneTable:
    """``Lane.point_at`` for many distances at once (np.interp over the same points)."""

    def __init__(self, lane):
        self.lane = lane
        self.s = lane.s_m
        self.x, self.y = lane.xyz_m[:, 0], lane.xyz_m[:, 1]
        self.yaw = np.unwrap(lane.yaw_rad)

    def at(self, s_m: np.ndarray):
        s = np.mod(s_m, self.lane.length_m)
        return np.interp(s, self.s, self.x), np.interp(s, self.s, self.y), np.interp(s, self.s, self.yaw)


def test_lane_table_is_point_at(ring_lane):
    table = LaneTable(ring_lane)
    s = np.linspace(0.0, 3 * ring_lane.length_m, 157)
    x, y, yaw = table.at(s)
    for k in range(len(s)):
        xyz, yaw_k = ring_lane.point_at(s[k] % ring_lane.length_m)
        assert (x[k], y[k]) == pytest.approx((xyz[0], xyz[1]), abs=1e-9)
        assert math.remainder(yaw[k] - yaw_k, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)


def _ring_gaps(s: np.ndarray, ring_length_m: float, car_length_m: float, out: np.ndarray) -> np.ndarray:
    """Bumper-to-bumper gap of each car to the next one round the ring (car i + 1 leads car i)."""
    out[:-1] = s[1:] - s[:-1] - car_length_m
    out[-1] = s[0] + ring_length_m - s[-1] - car_length_m
    return out


@pytest.mark.parametrize(("n", "mixed"), [(200, False), (100, True)], ids=["200-cars", "100-mixed-drivers"])
def test_cars_on_a_ring_road_for_ten_minutes_without_a_collision(ring_lane, n, mixed):
    """IDM cars on one lane of a 1.9 km ring, random seeded spacing (>= 1 m) and speeds,
    12,000 ticks of 0.05 s (10 simulated minutes). 200 cars: a net gap of 4.9 m on
    average, dense traffic near 1.9 m/s. 100 cars with mixed drivers (desired speed
    0.8-1.2 x the 50 km/h limit, time headway 1-2 s): ~7.8 m/s. At t = 60 s the fastest
    car brakes at 8 m/s² and stands still for the rest of 5 s; the wave runs back.
    Every tick, every pair of oriented boxes (placed on the lane by distance) is
    checked for overlap, and every gap against the emergency gap. Checking every tick
    costs ~1 s; a coarser check could miss a pass-through at relative speeds of
    10 m/s (0.5 m per tick, a tenth of a car)."""
    car = VEHICLE_PARAMS["car"]
    table = LaneTable(ring_lane)
    length_m = ring_lane.length_m
    rng = np.random.default_rng(2024)
    gaps = 1.0 + (length_m - n * car.length_m - n * 1.0) * rng.dirichlet(np.ones(n))
    s = np.concatenate([[0.0], np.cumsum(gaps + car.length_m)[:-1]])  # car i + 1 leads car i
    # random speeds, capped so that each could stop behind a standing leader (the invariant)
    speed = np.minimum(rng.uniform(0.0, 12.0, n), np.sqrt(2 * P.max_brake_mps2 * (gaps - P.emergency_gap_m)))
    assert ring_lane.speed_limit_mps == pytest.approx(50 / 3.6)
    desired = np.full(n, ring_lane.speed_limit_mps)
    params = P.table(n)
    if mixed:
        desired *= rng.uniform(0.8, 1.2, n)
        params = idm_table([IDMParams(time_headway_s=float(t)) for t in rng.uniform(1.0, 2.0, n)])
    vmax = np.full(n, car.max_speed_mps)
    half_len, half_wid = np.full(n, car.length_m / 2), np.full(n, car.width_m / 2)
    gap = np.empty(n)

    min_gap = np.inf
    braking, follower_speed, stopped_ticks = -1, [], 0
    for tick in range(12_000):
        t = tick * DT
        min_gap = min(min_gap, _ring_gaps(s, length_m, car.length_m, gap).min())
        accel = idm_accel(speed, desired, gap, speed - np.roll(speed, -1), params, DT)
        if tick == int(60 / DT):
            braking = int(np.argmax(speed))
            speed_before = speed[braking - 1]
        if 60.0 <= t < 65.0:
            accel[braking] = -P.max_brake_mps2
            stopped_ticks += speed[braking] == 0.0
        if 60.0 <= t < 90.0:
            follower_speed.append(speed[braking - 1])
        step_longitudinal(s, speed, accel, vmax, DT)
        x, y, yaw = table.at(s)
        pairs = overlapping_pairs(x, y, yaw, half_len, half_wid)
        assert len(pairs) == 0, f"t={t + DT:.2f} s: cars {pairs.tolist()} overlap"
    min_gap = min(min_gap, _ring_gaps(s, length_m, car.length_m, gap).min())
    # the guarantee of the safe-braking bound (rounding: 1e-9 m)
    assert min_gap >= P.emergency_gap_m - 1e-9
    # the perturbation happened: the car stood still for most of the 5 s, its follower
    # slowed down to less than half its speed
    assert stopped_ticks * DT > 3.5
    assert min(follower_speed) < 0.5 * speed_before
    # no car overtook (the ring order is intact) and the traffic still flows
    assert np.all(np.diff(s) > car.length_m) and s[0] + length_m - s[-1] > car.length_m
    assert speed.mean() > (1.0 if n == 200 else 5.0)
