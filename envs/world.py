"""One driving world as the envs see it: scenario, backend, route map, reward, endings.

:class:`DrivingWorld` is everything of an episode but the cameras, so the single env
(:class:`envs.DrivingEnv`) and the batched vector env share it and render their
cameras their own way (one picture, or every world in one batch).

:meth:`DrivingWorld.step` is the one fixed sequence of a step:
apply action -> physics (the backend's tick, with its substeps) -> observe ->
reward terms -> termination -> info.

Seeds: a reset with a seed uses it as the *episode seed*; a reset without one draws
the episode seed from the caller's generator (the env's ``np_random``). Everything
random in the episode derives from the episode seed alone: the scenario choice (route
length or Leaderboard route), the backend's world (``EmbeddedBackend.reset(scenario,
episode_seed)``) and the route map's GPS noise. The same episode seed and actions
give the same observations bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from envs.config import DrivingEnvConfig
from sim.carla_backend.errors import ServerLostError
from sim.embedded import EmbeddedBackend, MapAssets
from sim.errors import ConfigError
from sim.maps.planner import RoadOption
from sim.routemap import CoarseRoads, RouteMap
from sim.scenario import RouteRequest, Scenario
from sim.scoring import infraction_penalty
from sim.state import Control, EventKind, WorldState

__all__ = [
    "TerminationReason",
    "PrivilegedState",
    "SharedAssets",
    "DrivingWorld",
    "StepResult",
    "COMMAND_VOID",
    "SPEED_MAX_MPS",
    "COMMAND_DISTANCE_MAX_M",
    "REWARD_TERMS",
    "EVENT_TERMS",
    "action_to_control",
    "make_backend",
]

#: the observation's ``command`` for RoadOption.VOID (-1); every other value is the RoadOption's
COMMAND_VOID = 0
#: upper bound of the ``speed`` observation (m/s)
SPEED_MAX_MPS = 60.0
#: upper bound of the ``command_distance_m`` observation (m); longer distances are clipped
COMMAND_DISTANCE_MAX_M = 1000.0

#: the reward term of each penalised event kind (the Leaderboard's penalties)
EVENT_TERMS: dict[EventKind, str] = {
    EventKind.COLLISION_WALKER: "collision_walker",
    EventKind.COLLISION_VEHICLE: "collision_vehicle",
    EventKind.COLLISION_STATIC: "collision_static",
    EventKind.RED_LIGHT: "red_light",
    EventKind.STOP_SIGN: "stop_sign",
    EventKind.ROUTE_TIMEOUT: "route_timeout",
}
_COLLISIONS = frozenset((EventKind.COLLISION_WALKER, EventKind.COLLISION_VEHICLE, EventKind.COLLISION_STATIC))
#: the reward terms, in the order ``info["reward_terms"]`` lists them
REWARD_TERMS: tuple[str, ...] = (
    "progress",
    *EVENT_TERMS.values(),
    "outside_lanes",
    "jerk",
    "steer_rate",
)
_SEED_BOUND = 2**31 - 1


class TerminationReason(Enum):
    """Why an episode ended (``NONE`` while it runs), and whether that is a terminal state
    (``terminated``) or a cut-off (``truncated``). ``SERVER_LOST``: the CARLA server
    stopped answering; the next reset reconnects."""

    NONE = "none"
    ROUTE_COMPLETED = "route_completed"
    COLLISION = "collision"
    ROUTE_DEVIATION = "route_deviation"
    TIME_LIMIT = "time_limit"
    AGENT_BLOCKED = "agent_blocked"
    SERVER_LOST = "server_lost"

    @property
    def terminated(self) -> bool:
        return self in (
            TerminationReason.ROUTE_COMPLETED,
            TerminationReason.COLLISION,
            TerminationReason.ROUTE_DEVIATION,
        )

    @property
    def truncated(self) -> bool:
        return self in (
            TerminationReason.TIME_LIMIT,
            TerminationReason.AGENT_BLOCKED,
            TerminationReason.SERVER_LOST,
        )


_END_REASON = {
    EventKind.ROUTE_COMPLETED: TerminationReason.ROUTE_COMPLETED,
    EventKind.ROUTE_DEVIATION: TerminationReason.ROUTE_DEVIATION,
    EventKind.ROUTE_TIMEOUT: TerminationReason.TIME_LIMIT,
    EventKind.AGENT_BLOCKED: TerminationReason.AGENT_BLOCKED,
}


def _equal(a: Any, b: Any) -> bool:
    """Value equality that compares arrays element-wise and recurses into dataclasses."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    if dataclasses.is_dataclass(a):
        return all(_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass(frozen=True, eq=False)
class PrivilegedState(WorldState):
    """The :class:`~sim.state.WorldState` in ``info["state"]``: the same fields, with an
    equality that compares its arrays element-wise (``WorldState``'s generated one
    raises on arrays), so Gymnasium's checkers can compare infos."""

    @classmethod
    def of(cls, state: WorldState) -> PrivilegedState:
        out = object.__new__(cls)
        out.__dict__.update(state.__dict__)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorldState):
            return NotImplemented
        return all(
            _equal(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(WorldState)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass
class SharedAssets:
    """Built once per map and shared by every world that is given the same instance:
    the backend's map assets, the route map's coarse roads and the cameras' static
    scenes. An env builds its own unless one is passed in (``assets=``)."""

    maps: dict[str, MapAssets] = field(default_factory=dict)
    roads: dict[tuple[str, float], CoarseRoads] = field(default_factory=dict)
    scenes: dict[str, Any] = field(default_factory=dict)

    def __deepcopy__(self, memo: dict) -> SharedAssets:
        return self  # shared by design: copying env kwargs (gymnasium's spec.make) keeps one cache

    def __copy__(self) -> SharedAssets:
        return self

    def roads_for(self, map_spec: str, backend: EmbeddedBackend, m_per_px: float) -> CoarseRoads:
        key = (map_spec, m_per_px)
        if key not in self.roads:
            self.roads[key] = CoarseRoads.build(backend.road_map, m_per_px)
        return self.roads[key]


@dataclass(frozen=True)
class StepResult:
    """What a world returns from a step or reset, its camera images not yet rendered."""

    state: WorldState
    observation: dict[str, Any]  # every key but "camera"
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


def _leaderboard_scenarios(config: DrivingEnvConfig) -> list[Scenario]:
    from sim.evaluation import jobs_from_specs
    from sim.maps.leaderboard import read_route_file

    town = Path(config.map).stem
    specs = [s for s in read_route_file(config.routes_file) if s.town == town]
    if config.route_ids:
        by_id = {s.route_id: s for s in specs}
        missing = [r for r in config.route_ids if r not in by_id]
        if missing:
            raise ConfigError(f"{config.routes_file}: no route {', '.join(missing)} on town {town}")
        specs = [by_id[r] for r in config.route_ids]
    if not specs:
        raise ConfigError(f"{config.routes_file}: no route on town {town} (the map's file name)")
    return [j.scenario for j in jobs_from_specs(config.map, town, specs, config.traffic, 0, config.world)]


class DrivingWorld:
    """One world: an :class:`~sim.embedded.EmbeddedBackend`, its route map and the
    episode's bookkeeping. See the module docstring for the step and the seeds."""

    def __init__(self, config: DrivingEnvConfig, assets: SharedAssets | None = None):
        self.config = config
        self.assets = assets if assets is not None else SharedAssets()
        self.backend = make_backend(config, self.assets)
        self._leaderboard = (
            _leaderboard_scenarios(config) if config.routes_file and config.scenario is None else []
        )
        self.route_map: RouteMap | None = None
        self._route_s_m: list[float] = []  # the route's s_m as floats, for the route index
        self.episode_seed: int | None = None
        self._autopilot = None
        self._noise = np.random.default_rng(0)
        self._prev_progress_m = 0.0
        self._prev_outside_m = 0.0
        self._prev_accel_mps2 = 0.0
        self._prev_steer_rad = 0.0
        self.route_index = 0
        self.reason = TerminationReason.NONE

    # -- reset -----------------------------------------------------------------------

    def scenario_for(self, episode_seed: int) -> Scenario:
        """The scenario of an episode (see :class:`~envs.config.DrivingEnvConfig`)."""
        cfg = self.config
        if cfg.scenario is not None:
            return cfg.scenario
        rng = np.random.default_rng([episode_seed, 1])
        if self._leaderboard:
            return self._leaderboard[int(rng.integers(len(self._leaderboard)))]
        lo, hi = cfg.route_length_m
        length = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
        return Scenario(
            map=cfg.map,
            route=RouteRequest(random_length_m=length),
            traffic=cfg.traffic,
            world=cfg.world,
            weather=cfg.weather,
        )

    def reset(self, seed: int | None, rng: np.random.Generator) -> StepResult:
        """Start an episode: with ``seed`` as its episode seed, else one drawn from ``rng``."""
        episode_seed = int(rng.integers(_SEED_BOUND)) if seed is None else int(seed)
        self.episode_seed = episode_seed
        scenario = self.scenario_for(episode_seed)
        state = self.backend.reset(scenario, episode_seed)
        backend = self.backend
        roads = self.assets.roads_for(scenario.map, backend, self.config.route_map.m_per_px)
        self.route_map = RouteMap(backend.road_map, backend.route, self.config.route_map, roads=roads)
        self._route_s_m = np.asarray(backend.route.s_m, dtype=np.float64).tolist()
        self._noise = np.random.default_rng([episode_seed, 2])
        self._autopilot = backend.make_autopilot() if self.config.autopilot_in_info else None
        self._prev_progress_m = backend.monitor.progress_m
        self._prev_outside_m = backend.monitor.outside_lanes_m
        self._prev_accel_mps2 = state.ego.accel_mps2
        self._prev_steer_rad = state.ego.steer_rad
        self.route_index = 0
        self.reason = TerminationReason.NONE
        obs = self._observe(state)
        terms = dict.fromkeys(REWARD_TERMS, 0.0)
        return StepResult(state, obs, 0.0, False, False, self._info(state, terms, TerminationReason.NONE))

    # -- the step --------------------------------------------------------------------

    def step(self, action: Any) -> StepResult:
        """One tick, always in this order: action, physics, observe, reward, termination, info."""
        if self.route_map is None:
            raise RuntimeError("reset the env before stepping it")
        self.backend.apply_control(action_to_control(action))  # 1. apply the action
        try:
            state = self.backend.tick()  # 2. physics (substeps inside)
        except ServerLostError:  # a CARLA server died: cut the episode off at its last state
            return self._server_lost()
        obs = self._observe(state)  # 3. observe (all but the cameras)
        terms = self._reward_terms(state)  # 4. reward terms
        reason = self._termination(state)  # 5. termination
        info = self._info(state, terms, reason)  # 6. info
        self.reason = reason
        return StepResult(state, obs, math.fsum(terms.values()), reason.terminated, reason.truncated, info)

    def _server_lost(self) -> StepResult:
        state = self.backend.state()
        reason = TerminationReason.SERVER_LOST
        self.reason = reason
        terms = dict.fromkeys(REWARD_TERMS, 0.0)
        return StepResult(state, self._observe(state), 0.0, False, True, self._info(state, terms, reason))

    def _observe(self, state: WorldState) -> dict[str, Any]:
        # the last route point at or behind the progress (np.searchsorted's "right" side)
        self.route_index = max(0, bisect_right(self._route_s_m, self.backend.monitor.progress_m) - 1)
        ego = state.ego
        image = self.route_map.render(
            ego.x_m, ego.y_m, ego.yaw_rad, self._noise, route_index=self.route_index
        )
        command, distance_m = self.route_map.next_maneuver(self.route_index)
        return {
            "route": image,
            "speed": np.array([min(max(ego.speed_mps, 0.0), SPEED_MAX_MPS)], np.float32),
            "command": np.int64(COMMAND_VOID if command == RoadOption.VOID else command),
            "command_distance_m": np.array([min(distance_m, COMMAND_DISTANCE_MAX_M)], np.float32),
        }

    def _reward_terms(self, state: WorldState) -> dict[str, float]:
        w = self.config.reward
        monitor = self.backend.monitor
        dt = self.backend.dt_s
        progress = monitor.progress_m - self._prev_progress_m
        outside = monitor.outside_lanes_m - self._prev_outside_m
        jerk = float(state.ego.accel_mps2 - self._prev_accel_mps2) / dt
        steer_rate = float(state.ego.steer_rad - self._prev_steer_rad) / dt
        self._prev_progress_m, self._prev_outside_m = monitor.progress_m, monitor.outside_lanes_m
        self._prev_accel_mps2, self._prev_steer_rad = state.ego.accel_mps2, state.ego.steer_rad
        terms = dict.fromkeys(REWARD_TERMS, 0.0)
        terms["progress"] = w.progress_per_m * float(progress)
        for event in state.events:
            name = EVENT_TERMS.get(event.kind)
            if name is not None:
                terms[name] += getattr(w, name)
        terms["outside_lanes"] = w.outside_lanes_per_m * float(outside)
        terms["jerk"] = w.jerk * jerk * jerk * dt
        terms["steer_rate"] = w.steer_rate * steer_rate * steer_rate * dt
        return terms

    def _termination(self, state: WorldState) -> TerminationReason:
        if self.config.terminate_on_collision and any(e.kind in _COLLISIONS for e in state.events):
            return TerminationReason.COLLISION
        monitor = self.backend.monitor
        if monitor.done and monitor.end_reason is not None:
            return _END_REASON.get(monitor.end_reason, TerminationReason.NONE)
        return TerminationReason.NONE

    def _info(self, state: WorldState, terms: dict[str, float], reason: TerminationReason) -> dict[str, Any]:
        monitor = self.backend.monitor
        completion = monitor.route_completion
        penalty = infraction_penalty(monitor.events, monitor.outside_lanes_share)
        info: dict[str, Any] = {
            "state": PrivilegedState.of(state),
            "score": {
                "route_completion": float(100.0 * completion),
                "infraction_penalty": float(penalty),
                "driving_score": float(100.0 * completion * penalty),
            },
            "termination_reason": reason,
            "reward_terms": terms,
            "route_index": self.route_index,
            "episode_seed": self.episode_seed,
        }
        if self._autopilot is not None:
            control = self._autopilot.act(state)
            info["autopilot_action"] = np.array([control.steer, control.accel], np.float32)
        return info


def make_backend(config: DrivingEnvConfig, assets: SharedAssets):
    """The config's simulator: the embedded backend, or a CARLA server's (imported only
    when asked for) carrying the config's camera rig."""
    if config.backend == "embedded":
        return EmbeddedBackend(map_cache=assets.maps, infraction_config=config.infractions)
    from sim.carla_backend import CarlaBackend, CarlaConfig
    from sim.render.camera import rig

    cameras = rig(config.rig, width_px=config.camera_width_px, height_px=config.camera_height_px)
    carla_config = CarlaConfig(
        host=config.carla_host, port=config.carla_port, timeout_s=config.carla_timeout_s
    )
    return CarlaBackend(
        carla_config, cameras=cameras, infraction_config=config.infractions, map_cache=assets.maps
    )


def action_to_control(action: Any) -> Control:
    """``[steer, accel]`` (a float array of shape (2,)) as a :class:`Control` (values
    outside [-1, 1] are clipped). Anything else raises one clear ``ValueError``."""
    if isinstance(action, Control):
        return action
    a = np.asarray(action)
    if a.shape != (2,):
        raise ValueError(f"the action is [steer, accel]: a float array of shape (2,), got shape {a.shape}")
    if a.dtype.kind != "f":
        raise ValueError(f"the action is [steer, accel] as floats, got dtype {a.dtype}")
    steer, accel = a.tolist()
    if not (math.isfinite(steer) and math.isfinite(accel)):
        raise ValueError(f"the action must be finite, got [steer, accel] = [{steer}, {accel}]")
    return Control(steer, accel)
