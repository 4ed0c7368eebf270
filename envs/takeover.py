"""Takeovers and shadow mode: another driver takes control, and every handover is an event.

:class:`TakeoverWrapper` sits between a policy and the env. The policy's action goes in
to ``step`` as always; the wrapper applies it, or the action of the driver who has
taken over:

* ``take_over(driver, trigger)``: ``"autopilot"`` (its action is the env's privileged
  ``info["autopilot_action"]`` for the current state) or ``"human"`` (the action given
  by ``set_override(action)``; it holds until the next ``set_override``);
* ``hand_back()``: the policy drives again;
* with ``gate="autopilot"`` an :class:`AutopilotGate` watches the privileged state
  before every step and takes over when a trigger fires: ``ttc`` (a collision within
  ``ttc_s`` at constant velocities), ``red_light`` (a red stop line ahead that needs
  more than ``red_light_decel_mps2`` to stop at), ``route_deviation`` (heading away
  from the route, or far off it) and ``lane_departure`` (the ego's centre more than
  ``lane_departure_m`` off the route's lane centre). It hands back once the situation
  has been resolved (no trigger, back on the lane centre, aligned) for ``hold_s``.

Every step's ``info`` gains ``driver`` (``"policy"``, ``"autopilot"`` or ``"human"``),
``policy_action`` and ``executed_action`` (``float32``); on the step a takeover starts,
``info["intervention"] = {"trigger", "driver", "step", "time_s", "context_start_step"}``
and on the step the policy drives again ``info["hand_back"]`` (``step``, ``start_step``,
``trigger``). ``step`` counts the env steps since the reset (the store's row of the
observation the action was taken in); the context is the ``context_s`` seconds before
the takeover: the store's rows ``context_start_step .. step``, and live in
:meth:`TakeoverWrapper.recent`.

:class:`ShadowWrapper`: another driver drives (the action given to ``step``), the policy
only predicts; when its action differs from the driven one by more than the
thresholds, ``info["disagreement"]`` marks the step the disagreement starts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from sim.autopilot import LEVEL_M
from sim.errors import ConfigError
from sim.state import LightState, WorldState

__all__ = [
    "DRIVERS",
    "TRIGGERS",
    "GateConfig",
    "AutopilotGate",
    "TakeoverWrapper",
    "ShadowThresholds",
    "ShadowWrapper",
    "time_to_collision",
]

#: who can drive
DRIVERS: tuple[str, ...] = ("policy", "autopilot", "human")
#: the autopilot gate's triggers, in the order they are checked
TRIGGERS: tuple[str, ...] = ("ttc", "red_light", "route_deviation", "lane_departure")


@dataclass(frozen=True)
class GateConfig:
    """When the autopilot gate takes over and when it hands back."""

    ttc_s: float = field(default=1.5, metadata={"help": "take over when a collision is this close (s)"})
    ttc_horizon_s: float = field(default=3.0, metadata={"help": "how far ahead collisions are predicted (s)"})
    ttc_min_speed_mps: float = field(default=1.0, metadata={"help": "no ttc trigger below this ego speed"})
    ttc_margin_m: float = field(default=0.3, metadata={"help": "margin added around the boxes (m)"})
    red_light_decel_mps2: float = field(
        default=3.0, metadata={"help": "take over when stopping at a red line needs more (m/s^2)"}
    )
    lane_departure_m: float = field(
        default=1.5, metadata={"help": "take over when the centre is this far off the lane centre (m)"}
    )
    route_deviation_m: float = field(default=4.0, metadata={"help": "take over this far off the route (m)"})
    route_heading_rad: float = field(
        default=1.0, metadata={"help": "take over when heading this far away from the route (rad)"}
    )
    settled_offset_m: float = field(default=0.5, metadata={"help": "resolved: this close to the lane centre"})
    settled_heading_rad: float = field(default=0.25, metadata={"help": "resolved: this well aligned (rad)"})
    hold_s: float = field(default=1.0, metadata={"help": "resolved for this long before handing back (s)"})

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"GateConfig.{name} must be a number >= 0, got {value!r}")


def _sat_hits(ax, ay, ayaw, ahl, ahw, bx, by, byaw, bhl, bhw) -> np.ndarray:
    """Vectorised separating-axis test of box a against boxes b (broadcast arrays)."""
    ca, sa, cb, sb = np.cos(ayaw), np.sin(ayaw), np.cos(byaw), np.sin(byaw)
    tx, ty = bx - ax, by - ay
    c = np.abs(ca * cb + sa * sb)
    s = np.abs(ca * sb - sa * cb)
    return (
        (np.abs(tx * ca + ty * sa) <= ahl + bhl * c + bhw * s)
        & (np.abs(-tx * sa + ty * ca) <= ahw + bhl * s + bhw * c)
        & (np.abs(tx * cb + ty * sb) <= bhl + ahl * c + ahw * s)
        & (np.abs(-tx * sb + ty * cb) <= bhw + ahl * s + ahw * c)
    )


def time_to_collision(
    state: WorldState, horizon_s: float, margin_m: float = 0.3, step_s: float = 0.1
) -> float:
    """Seconds until the ego's box first overlaps another actor's, every box moving at
    its constant velocity (the ego straight along its heading); ``inf`` within none.
    Boxes are grown by ``margin_m``; actors on another level (a bridge) are left out."""
    actors, ego = state.actors, state.ego
    if len(actors) == 0:
        return math.inf
    v = ego.speed_mps
    xy = actors.xyz_m[:, :2]
    rel = np.hypot(xy[:, 0] - ego.x_m, xy[:, 1] - ego.y_m)
    speed = np.hypot(actors.velocity_mps[:, 0], actors.velocity_mps[:, 1])
    radius = np.hypot(actors.half_extent_m[:, 0], actors.half_extent_m[:, 1])
    reach = (v + speed) * horizon_s + radius + math.hypot(ego.length_m, ego.width_m) / 2 + 2 * margin_m
    near = (rel <= reach) & (np.abs(actors.xyz_m[:, 2] - ego.z_m) < LEVEL_M)
    if not near.any():
        return math.inf
    t = np.arange(0.0, horizon_s + 1e-9, step_s)  # (T,)
    c, s = math.cos(ego.yaw_rad), math.sin(ego.yaw_rad)
    ex, ey = ego.x_m + v * c * t, ego.y_m + v * s * t  # (T,)
    bx = xy[near, 0, None] + actors.velocity_mps[near, 0, None] * t  # (A, T)
    by = xy[near, 1, None] + actors.velocity_mps[near, 1, None] * t
    hit = _sat_hits(
        ex[None, :],
        ey[None, :],
        ego.yaw_rad,
        0.5 * ego.length_m + margin_m,
        0.5 * ego.width_m + margin_m,
        bx,
        by,
        actors.yaw_rad[near, None],
        actors.half_extent_m[near, 0, None] + margin_m,
        actors.half_extent_m[near, 1, None] + margin_m,
    )
    when = hit.any(axis=0)
    return float(t[int(np.argmax(when))]) if when.any() else math.inf


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class _RouteTrack:
    """Where the ego is on the route: nearest segment, signed lateral offset, heading error."""

    def __init__(self, route):
        self.xy = np.ascontiguousarray(route.xyz_m[:, :2], dtype=np.float64)
        self.yaw = np.asarray(route.yaw_rad, dtype=np.float64)
        self.s = np.asarray(route.s_m, dtype=np.float64)
        self.hint = 0
        leaves: dict[tuple, list[int]] = {}
        keys = route.lane_keys
        for i in range(len(keys) - 1):
            if keys[i] != keys[i + 1]:
                leaves.setdefault(tuple(keys[i]), []).append(i)
        self.leaves = leaves  # lane -> route indices where the route leaves it (its stop line)

    def locate(self, x: float, y: float, yaw: float) -> tuple[int, float, float, float]:
        """(index, s along the route, lateral offset (m, >= 0), heading error (rad, >= 0))."""
        lo, hi = max(0, self.hint - 20), min(len(self.s), self.hint + 80)
        d = np.hypot(self.xy[lo:hi, 0] - x, self.xy[lo:hi, 1] - y)
        i = lo + int(np.argmin(d))
        if d[i - lo] > 6.0:  # lost: search the whole route, preferring points heading our way
            d = np.hypot(self.xy[:, 0] - x, self.xy[:, 1] - y)
            d = d + np.where(np.abs((self.yaw - yaw + np.pi) % (2 * np.pi) - np.pi) < np.pi / 2, 0.0, 1e3)
            i = int(np.argmin(d))
        self.hint = i
        j = i + 1 if i + 1 < len(self.s) else i - 1
        if j < 0:
            return i, float(self.s[i]), float(math.hypot(x - self.xy[i, 0], y - self.xy[i, 1])), 0.0
        a, b = self.xy[min(i, j)], self.xy[max(i, j)]
        seg = b - a
        length = float(math.hypot(seg[0], seg[1])) or 1e-9
        u = ((x - a[0]) * seg[0] + (y - a[1]) * seg[1]) / length
        offset = abs((x - a[0]) * seg[1] - (y - a[1]) * seg[0]) / length
        if u < 0 or u > length:  # beyond the segment's ends: the distance to the point
            offset = float(math.hypot(x - self.xy[i, 0], y - self.xy[i, 1]))
        s_now = float(self.s[min(i, j)] + min(max(u, 0.0), length))
        return i, s_now, float(offset), abs(_wrap(yaw - float(self.yaw[i])))


class AutopilotGate:
    """Decides from the privileged state when the autopilot takes over and when it is
    done (see the module docstring). Built per episode from the backend's route."""

    def __init__(self, config: GateConfig | None = None):
        self.config = config or GateConfig()
        self._track: _RouteTrack | None = None
        self._route = None
        self.last: dict[str, float] = {}

    def start(self, route) -> None:
        self._route = route
        self._track = _RouteTrack(route)

    def check(self, state: WorldState) -> str | None:
        """The first trigger of :data:`TRIGGERS` that fires in ``state``, or None."""
        if self._track is None:
            raise RuntimeError("start the gate with the episode's route first")
        c, ego = self.config, state.ego
        i, s_now, offset, heading = self._track.locate(ego.x_m, ego.y_m, ego.yaw_rad)
        ttc = math.inf
        if ego.speed_mps >= c.ttc_min_speed_mps:
            ttc = time_to_collision(state, c.ttc_horizon_s, c.ttc_margin_m)
        self.last = {"ttc_s": ttc, "offset_m": offset, "heading_rad": heading}
        if ttc <= c.ttc_s:
            return "ttc"
        if self._red_light(state, i, s_now):
            return "red_light"
        if offset > c.route_deviation_m or (heading > c.route_heading_rad and ego.speed_mps > 0.5):
            return "route_deviation"
        if offset > c.lane_departure_m:
            return "lane_departure"
        return None

    def settled(self) -> bool:
        """Whether the last checked state was back on the lane centre and aligned."""
        c = self.config
        return (
            self.last["offset_m"] <= c.settled_offset_m and self.last["heading_rad"] <= c.settled_heading_rad
        )

    def _red_light(self, state: WorldState, i: int, s_now: float) -> bool:
        signals, ego = state.signals, state.ego
        if len(signals) == 0 or ego.speed_mps < 0.5:
            return False
        track = self._track
        need = ego.speed_mps**2
        for row, lane in enumerate(signals.lanes):
            if signals.state[row] != LightState.RED:
                continue
            line = next((k for k in track.leaves.get(tuple(lane), ()) if k >= i - 1), None)
            if line is None:
                continue
            dist = float(track.s[line] - s_now) - 0.5 * ego.length_m
            if -1.0 < dist < 40.0 and need / (2.0 * max(dist, 0.1)) > self.config.red_light_decel_mps2:
                return True
        return False


def _as_action(action: Any) -> Any:
    """A float action as float32 (what the store keeps and replay re-applies, exactly);
    anything else is passed on for the env to reject with its own message."""
    a = np.asarray(action)
    if a.dtype.kind == "f" and a.shape == (2,):
        return a.astype(np.float32)
    return action


class TakeoverWrapper(gym.Wrapper):
    """Lets another driver take control at any moment (see the module docstring).

    ``TakeoverWrapper(env, gate=None | "autopilot", context_s=3.0, gate_config=None)``.
    """

    def __init__(
        self,
        env: gym.Env,
        gate: str | None = None,
        context_s: float = 3.0,
        gate_config: GateConfig | None = None,
    ):
        super().__init__(env)
        if gate not in (None, "autopilot"):
            raise ConfigError(f"takeover gate must be None or 'autopilot', got {gate!r}")
        if not (isinstance(context_s, int | float) and math.isfinite(context_s) and context_s >= 0):
            raise ConfigError(f"takeover context_s must be a number >= 0, got {context_s!r}")
        self.gate = AutopilotGate(gate_config) if gate == "autopilot" else None
        self.context_s = float(context_s)
        dt = env.unwrapped.config.world.dt_s
        self.context_steps = int(round(self.context_s / dt))
        self._dt = dt
        self._recent: deque = deque(maxlen=self.context_steps + 1)
        self.driver = "policy"
        self.trigger = ""
        self._gated = False
        self._override: np.ndarray | None = None
        self._pending: dict | None = None
        self._pending_back: dict | None = None
        self._start_step = 0
        self._settled_steps = 0
        self._step = 0
        self._obs: Any = None
        self._info: dict[str, Any] = {}

    # -- the control API ---------------------------------------------------------------

    def take_over(self, driver: str, trigger: str) -> None:
        """``driver`` drives from the next step on; the intervention is reported then."""
        if driver not in ("autopilot", "human"):
            raise ConfigError(f"a takeover driver is 'autopilot' or 'human', got {driver!r}")
        if self.driver == driver:
            return
        self.driver, self.trigger, self._gated = driver, str(trigger), False
        self._start_step = self._step
        self._settled_steps = 0
        self._pending = {
            "trigger": self.trigger,
            "driver": driver,
            "step": self._step,
            "time_s": float(self._info["state"].time_s) if "state" in self._info else 0.0,
            "context_start_step": max(0, self._step - self.context_steps),
        }

    def set_override(self, action: Any) -> None:
        """The taking-over human's action (held until the next call)."""
        a = np.asarray(action, dtype=np.float32).reshape(-1)
        if a.shape != (2,) or not np.isfinite(a).all():
            raise ValueError(f"an override is a finite [steer, accel], got {action!r}")
        self._override = a

    def hand_back(self) -> None:
        """The policy drives again from the next step on."""
        if self.driver == "policy":
            return
        self._pending_back = {"step": self._step, "start_step": self._start_step, "trigger": self.trigger}
        self.driver, self.trigger, self._gated = "policy", "", False
        self._pending = None

    def recent(self) -> list[dict]:
        """The last ``context_s`` seconds: per step ``step``, ``obs``, ``driver``,
        ``policy_action`` and ``executed_action`` (copies)."""
        return list(self._recent)

    # -- Gymnasium --------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.driver, self.trigger, self._gated = "policy", "", False
        self._pending = self._pending_back = None
        self._override = None
        self._step = 0
        self._recent.clear()
        if self.gate is not None:
            if "autopilot_action" not in info:
                raise ConfigError("the autopilot gate needs an env with autopilot_in_info=True")
            self.gate.start(self.env.unwrapped.world.backend.route)
        self._obs, self._info = obs, info
        return obs, info

    def step(self, action: Any):
        policy_action = _as_action(action)
        if self.gate is not None:
            self._run_gate()
        executed = self._executed(policy_action)
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info = dict(info)
        info["driver"] = self.driver
        info["policy_action"] = np.asarray(policy_action, np.float32)
        info["executed_action"] = np.asarray(executed, np.float32)
        if self._pending is not None:
            info["intervention"], self._pending = self._pending, None
        if self._pending_back is not None:
            info["hand_back"], self._pending_back = self._pending_back, None
        self._recent.append(
            {
                "step": self._step,
                "obs": {k: np.copy(v) for k, v in self._obs.items()},
                "driver": self.driver,
                "policy_action": info["policy_action"],
                "executed_action": info["executed_action"],
            }
        )
        self._step += 1
        self._obs, self._info = obs, info
        return obs, reward, terminated, truncated, info

    def _run_gate(self) -> None:
        trigger = self.gate.check(self._info["state"])
        if self.driver == "policy":
            if trigger is not None:
                self.take_over("autopilot", trigger)
                self._gated = True
            return
        if not self._gated:
            return  # a takeover from outside ends from outside
        resolved = trigger is None and self.gate.settled()
        self._settled_steps = self._settled_steps + 1 if resolved else 0
        if self._settled_steps * self._dt >= self.gate.config.hold_s:
            self.hand_back()

    def _executed(self, policy_action: Any) -> Any:
        if self.driver == "policy":
            return policy_action
        if self.driver == "autopilot":
            action = self._info.get("autopilot_action")
            if action is None:
                raise ConfigError("an autopilot takeover needs an env with autopilot_in_info=True")
            return np.asarray(action, np.float32)
        if self._override is None:
            raise RuntimeError("a human takeover needs set_override(action) before the step")
        return self._override


@dataclass(frozen=True)
class ShadowThresholds:
    """How far the shadow policy's action may differ from the driven one."""

    steer: float = 0.3
    accel: float = 0.6

    def __post_init__(self) -> None:
        for name in ("steer", "accel"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"ShadowThresholds.{name} must be a positive number, got {value!r}")


class ShadowWrapper(gym.Wrapper):
    """Shadow mode: ``step(action)`` applies the driving ``driver``'s action while
    ``shadow_policy`` (``act(obs, info)``) predicts from the same observation; a
    disagreement beyond ``thresholds`` starts an event (``info["disagreement"]``: trigger
    ``shadow_steer`` or ``shadow_accel``, step, time, both actions) and lasts until they
    agree again. ``info["policy_action"]`` is the shadow's prediction."""

    def __init__(
        self,
        env: gym.Env,
        shadow_policy: Any,
        thresholds: ShadowThresholds | None = None,
        driver: str = "autopilot",
    ):
        super().__init__(env)
        if driver not in DRIVERS:
            raise ConfigError(f"shadow mode driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
        self.shadow_policy = shadow_policy
        self.thresholds = thresholds or ShadowThresholds()
        self.driver = driver
        self._obs: Any = None
        self._info: dict[str, Any] = {}
        self._step = 0
        self._disagreeing = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if hasattr(self.shadow_policy, "reset"):
            self.shadow_policy.reset(info.get("episode_seed"))
        self._obs, self._info, self._step, self._disagreeing = obs, info, 0, False
        return obs, info

    def step(self, action: Any):
        executed = _as_action(action)
        shadow = np.asarray(self.shadow_policy.act(self._obs, self._info), np.float32).reshape(2)
        time_s = float(self._info["state"].time_s)
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info = dict(info)
        driven = np.asarray(executed, np.float32)
        diff = np.abs(shadow - np.clip(driven, -1.0, 1.0))
        over = [
            name
            for name, d, t in (
                ("steer", diff[0], self.thresholds.steer),
                ("accel", diff[1], self.thresholds.accel),
            )
            if d > t
        ]
        info["driver"] = self.driver
        info["policy_action"] = shadow
        info["executed_action"] = driven
        info["shadow_disagrees"] = bool(over)
        if over and not self._disagreeing:
            info["disagreement"] = {
                "trigger": f"shadow_{over[0]}",
                "step": self._step,
                "time_s": time_s,
                "steer_diff": float(diff[0]),
                "accel_diff": float(diff[1]),
            }
        self._disagreeing = bool(over)
        self._step += 1
        self._obs, self._info = obs, info
        return obs, reward, terminated, truncated, info
