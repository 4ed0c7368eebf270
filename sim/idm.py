"""The Intelligent Driver Model (IDM) with a kinematic safe-braking bound, vectorised.

For each follower, from its speed ``v``, desired speed ``v0``, the bumper-to-bumper
gap ``s`` to its leader and the closing speed ``dv = v - v_leader``::

    s*    = s0 + max(0, v T + v dv / (2 sqrt(a b)))
    a_idm = free(v) - a (s* / s)^2            (the second term is 0 without a leader)

``free(v) = a (1 - (v / v0)^delta)`` up to the desired speed; above it (a lowered
speed limit) the improved IDM's ``-b (1 - (v0 / v)^(a delta / b))`` (Treiber & Kesting,
*Traffic Flow Dynamics*, 2013, sec. 11.3.5), which slows down at no more than the
comfortable deceleration ``b`` instead of the plain IDM's unbounded ``(v / v0)^4``.

**Safe-braking bound.** The IDM alone is collision-free only as long as it never needs
more than the physical brake, and it reacts late to a leader that brakes hard. The
result is therefore also capped by a Gipps-style kinematic bound for the tick ``dt``
ahead: after driving this tick at constant acceleration, the follower must still be
able to stop, braking at ``b' = min(max_brake, leader_max_brake)``, at least
``emergency_gap_m`` behind the point where its leader stops if the leader brakes at
``leader_max_brake`` from now. With ``v'`` the speed at the end of the tick::

    (v + v') dt / 2 + v'^2 / (2 b')  <=  s - emergency_gap + v_leader^2 / (2 leader_max_brake)

whose largest root ``v_safe`` gives ``a_safe = (v_safe - v) / dt``; when ``v_safe < 0``
the follower must stop within the tick, and ``a_safe = -v^2 / (2 reach)`` (``reach``:
the right-hand side) stops it in that distance. The command is
``max(-max_brake, min(a_idm, a_safe))``.

This keeps an invariant. If at the start of a tick the gap is ``>= emergency_gap_m``
and braking at ``b'`` from now would stop the follower in time (the condition with
``dt = 0``), and during the tick the leader stays the same and decelerates at no more
than ``leader_max_brake``, then both hold at the end of the tick and the gap stays
``>= emergency_gap_m`` within it: braking at ``b'`` always satisfies the bound (so
``a_safe >= -b'``), the realised distance grows with the command (so any command
below ``a_safe`` satisfies it too, the stop at speed 0 included), and with
``b' <= leader_max_brake`` the gap is concave while both brake, so it is smallest at
the ends. It assumes the follower realises its command for the whole tick, as the
kernels of :mod:`sim.vehicle` do. A new leader (a cut-in) may start outside the
invariant; then the follower brakes as hard as it may.

Units: m, s, m/s, m/s². Parameters are per vehicle, as rows of a float64 table whose
columns are :data:`IDM_COLUMNS` (the fields of :class:`IDMParams`, in order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields

import numba
import numpy as np

from sim.errors import ConfigError

__all__ = ["IDMParams", "IDM_COLUMNS", "idm_table", "idm_accel", "idm_accel_one"]


@dataclass(frozen=True)
class IDMParams:
    """One driver's IDM parameters (the columns of the parameter table, in order).

    ``time_headway_s`` T, ``min_gap_m`` s0 (the standstill gap), ``max_accel_mps2`` a,
    ``comfort_decel_mps2`` b, ``delta`` (free-road exponent), ``max_brake_mps2`` the
    follower's hard braking limit (set it from its vehicle's ``max_brake_mps2``),
    ``leader_max_brake_mps2`` the hardest braking assumed of any leader, and
    ``emergency_gap_m`` the gap the safe-braking bound keeps in the worst case.
    """

    time_headway_s: float = 1.5
    min_gap_m: float = 2.0
    max_accel_mps2: float = 1.5
    comfort_decel_mps2: float = 2.0
    delta: float = 4.0
    max_brake_mps2: float = 8.0
    leader_max_brake_mps2: float = 8.0
    emergency_gap_m: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not (number and (value > 0 or (f.name == "emergency_gap_m" and value == 0))):
                raise ConfigError(f"IDMParams.{f.name} must be a positive number, got {value!r}")
        if self.emergency_gap_m > self.min_gap_m:
            raise ConfigError(
                f"IDMParams.emergency_gap_m ({self.emergency_gap_m}) must not exceed "
                f"min_gap_m ({self.min_gap_m})"
            )
        if self.comfort_decel_mps2 > self.max_brake_mps2:
            raise ConfigError(
                f"IDMParams.comfort_decel_mps2 ({self.comfort_decel_mps2}) must not exceed "
                f"max_brake_mps2 ({self.max_brake_mps2})"
            )

    def table(self, n: int) -> np.ndarray:
        """These parameters for ``n`` vehicles: an (n, len(IDM_COLUMNS)) float64 table."""
        return np.tile(np.array(astuple(self), dtype=np.float64), (n, 1))


#: Column names of the parameter table, in order (the fields of :class:`IDMParams`).
IDM_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IDMParams))
_T, _S0, _A, _B, _DELTA, _B_MAX, _B_LEAD, _S_EMERGENCY = range(len(IDM_COLUMNS))


def idm_table(params: Sequence[IDMParams]) -> np.ndarray:
    """One row per vehicle from a sequence of :class:`IDMParams` (heterogeneous drivers)."""
    if not params:
        return np.zeros((0, len(IDM_COLUMNS)))
    return np.array([astuple(p) for p in params], dtype=np.float64)


@numba.njit(cache=True)
def _free_road(v: float, v0: float, a: float, b: float, delta: float) -> float:
    if v0 <= 0.0:  # told to stop: at the comfortable deceleration
        return -b if v > 0.0 else 0.0
    if v <= v0:
        return a * (1.0 - (v / v0) ** delta)
    return -b * (1.0 - (v0 / v) ** (a * delta / b))


@numba.njit(cache=True)
def _safe_accel(v: float, gap: float, closing: float, b_own: float, b_lead: float, margin: float, dt: float):
    """The largest acceleration for this tick that keeps the stop-behind-the-leader invariant."""
    v_lead = max(0.0, v - closing)
    reach = gap - margin + v_lead * v_lead / (2.0 * b_lead)
    if reach <= 0.0:
        return -np.inf
    if v * dt >= 2.0 * reach:  # it must stop within this tick: in at most ``reach``
        return -v * v / (2.0 * reach)
    b = min(b_own, b_lead)
    v_safe = -0.5 * b * dt + math.sqrt((0.5 * b * dt) ** 2 + b * (2.0 * reach - v * dt))
    return (v_safe - v) / dt


@numba.njit(cache=True)
def idm_accel(
    speed_mps: np.ndarray,
    desired_speed_mps: np.ndarray,
    gap_m: np.ndarray,
    closing_speed_mps: np.ndarray,
    params: np.ndarray,
    dt_s: float,
) -> np.ndarray:
    """IDM acceleration (m/s²) of N followers, with the safe-braking bound over ``dt_s``.

    ``speed_mps``, ``desired_speed_mps``: the follower's speed and desired speed (>= 0);
    ``gap_m``: bumper-to-bumper distance to the leader, ``inf`` for no leader (free
    road: the gap and closing speed are then ignored); ``closing_speed_mps``: follower
    speed minus leader speed (positive when closing in); ``params``: (N, 8) table of
    :data:`IDM_COLUMNS` (:meth:`IDMParams.table`, :func:`idm_table`); ``dt_s``: the
    time the command will be held. A gap <= 0 (already touching) or NaN gives full braking.
    The result lies in ``[-max_brake_mps2, max_accel_mps2]``.
    """
    n = speed_mps.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = idm_accel_one(
            speed_mps[i], desired_speed_mps[i], gap_m[i], closing_speed_mps[i], params[i], dt_s
        )
    return out


@numba.njit(cache=True)
def idm_accel_one(
    speed_mps: float,
    desired_speed_mps: float,
    gap_m: float,
    closing_speed_mps: float,
    row: np.ndarray,
    dt_s: float,
) -> float:
    """:func:`idm_accel` for one follower, ``row`` its line of the parameter table."""
    v = max(0.0, speed_mps)
    a, b, b_max = row[_A], row[_B], row[_B_MAX]
    acc = _free_road(v, desired_speed_mps, a, b, row[_DELTA])
    s = gap_m
    if not s > 0.0:  # touching already, or a NaN gap: brake
        acc = -b_max
    elif s < np.inf:
        dv = closing_speed_mps
        s_star = row[_S0] + max(0.0, v * row[_T] + v * dv / (2.0 * math.sqrt(a * b)))
        acc -= a * (s_star / s) ** 2
        acc = min(acc, _safe_accel(v, s, dv, b_max, row[_B_LEAD], row[_S_EMERGENCY], dt_s))
    return max(-b_max, acc)
