"""The CARLA backend: the seam of :class:`sim.backend.Backend` on a real CARLA server.

One backend drives one server (``CarlaConfig.host:port``) in synchronous mode: each
:meth:`CarlaBackend.tick` applies the ego's control, advances the server by
``fixed_delta_seconds`` (the scenario's ``dt_s``, 0.05 s) and reads the world back
into the same :class:`~sim.state.WorldState` the embedded backend fills. Above the
seam nothing changes: routes are planned, infractions counted and scores computed by
the embedded backend's code on the server's own map (``world.get_map()`` wrapped as a
:class:`~sim.maps.RoadMap`), and the privileged autopilot drives from the state.

An episode (``reset``):

1. connect (a clear error within ``timeout_s`` when nothing answers; after a lost
   server, up to ``reconnect_attempts`` tries), load the scenario's map when the
   server has another one: a town by name (``Town03``), or any OpenDRIVE file,
   ``.osm`` extract or ``generated:SEED`` town through ``generate_opendrive_world``;
2. synchronous mode with ``fixed_delta_seconds = dt_s`` (the server's settings are
   restored on :meth:`close`), the Traffic Manager in synchronous mode on its own port,
   seeded; the scenario's weather;
3. the ego at the route's start with the rig's RGB cameras (mounted as the embedded
   renderer mounts them), a collision and a lane-invasion sensor; NPC vehicles on the
   Traffic Manager's autopilot; walkers with their AI controllers.

Every actor spawned is remembered and destroyed on the next reset and on close, also
when a reset fails half-way. Camera images come frame-matched (:mod:`.frames`): the
images of the tick asked for, or an error after ``sensor_timeout_s``, never older
ones. A server that stops answering mid-episode raises
:class:`~sim.carla_backend.errors.ServerLostError` from :meth:`tick`; the env cuts the
episode off there, and the next reset reconnects.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import carla
import numpy as np

from sim.autopilot import Autopilot, AutopilotConfig
from sim.backend import Backend
from sim.carla_backend.config import CarlaConfig
from sim.carla_backend.connection import connect, reconnect
from sim.carla_backend.conversions import (
    ActorRecord,
    actor_type_of,
    actors_of,
    camera_attributes,
    camera_mount,
    ego_state_of,
    light_state_of,
    transform_of,
    vehicle_control,
)
from sim.carla_backend.errors import CarlaError, ServerLostError
from sim.carla_backend.frames import EventQueue, FrameBuffer, rgb_of_bgra
from sim.carla_backend.weather import carla_weather
from sim.carla_backend.world_setup import (
    SPAWN_LIFT_M,
    CarlaLight,
    match_light_rows,
    npc_count,
    npc_spawn_points,
    pick_blueprints,
    walker_count,
)
from sim.embedded import MapAssets
from sim.errors import ConfigError, MapError
from sim.infractions import InfractionConfig, InfractionMonitor
from sim.maps import GENERATED_PREFIX, RoadMap, load_map
from sim.maps.planner import DenseRoute
from sim.maps.roadmap import LaneKey, content_hash
from sim.routes import plan_scenario_route
from sim.scenario import Scenario
from sim.signals import SignalConfig, TrafficSignals
from sim.state import Actors, ActorType, Control, Event, LightState, SignalStates, WorldState
from sim.vehicle import VEHICLE_PARAMS, VehicleParams

__all__ = ["CarlaBackend"]

_MAP_SUFFIXES = (".xodr", ".xml", ".osm")


def _is_town_name(spec: str) -> bool:
    """A map spec the server loads by name (``Town03``), not a file or a generated town."""
    return not spec.startswith(GENERATED_PREFIX) and not spec.lower().endswith(_MAP_SUFFIXES)


def _blueprint_attributes(bp) -> dict[str, str]:
    return {
        name: bp.get_attribute(name).as_str()
        for name in ("base_type", "number_of_wheels")
        if bp.has_attribute(name)
    }


class _ActorCatalog:
    """Type and bounding box of every vehicle and walker seen, by actor id (ego excluded)."""

    def __init__(self, ego_id: int):
        self.ego_id = ego_id
        self._known: dict[int, tuple[ActorType, carla.BoundingBox] | None] = {ego_id: None}

    def add(self, actor) -> None:
        type_id = str(actor.type_id)
        if actor.id != self.ego_id and type_id.startswith(("vehicle.", "walker.")):
            self._known[actor.id] = (actor_type_of(type_id, dict(actor.attributes)), actor.bounding_box)
        else:
            self._known[actor.id] = None

    def lookup(self, world, actor_id: int) -> tuple[ActorType, carla.BoundingBox] | None:
        if actor_id not in self._known:  # spawned by someone else since: one call, then cached
            actor = world.get_actor(actor_id)
            if actor is None:
                return None
            self.add(actor)
        return self._known[actor_id]


class CarlaBackend(Backend):
    """A CARLA server behind the backend seam (see the module docstring).

    ``cameras``: the rig whose RGB sensors ride on the ego (``sim.render.rig(...)``);
    :meth:`render` returns their images for the last tick. ``client_factory`` builds
    the client (``carla.Client``); tests put a fake server there and nowhere else.
    """

    #: images come from the server's cameras, not from loopdrive's renderer
    renders_cameras = True

    def __init__(
        self,
        config: CarlaConfig | None = None,
        *,
        cameras: Sequence[Any] = (),
        infraction_config: InfractionConfig | None = None,
        map_cache: dict[str, MapAssets] | None = None,
        client_factory: Callable[[str, int], Any] = carla.Client,
    ):
        self.config = config or CarlaConfig()
        self.cameras = tuple(cameras)
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ConfigError(f"camera names must be unique, got {names}")
        self.infraction_config = infraction_config or InfractionConfig()
        self._maps = map_cache if map_cache is not None else {}
        self._client_factory = client_factory
        self._client = None
        self._world = None
        self._tm = None
        self._original_settings = None
        self._loaded_spec: str | None = None
        self._lost = False
        # the episode
        self.scenario: Scenario | None = None
        self.assets: MapAssets | None = None
        self.route: DenseRoute | None = None
        self.monitor: InfractionMonitor | None = None
        self.signals: TrafficSignals | None = None
        self.lane_invasions: list[tuple[float, tuple[str, ...]]] = []
        self._state: WorldState | None = None
        self._control = Control()
        self._spawned: list[int] = []  # every actor id spawned this episode, in order
        self._sensors: list[Any] = []
        self._controllers: list[Any] = []
        self._ego = None
        self._frames: FrameBuffer | None = None
        self._collisions = EventQueue()
        self._invasions = EventQueue()

    # -- the server --------------------------------------------------------------------

    @property
    def road_map(self) -> RoadMap:
        if self.assets is None:
            raise RuntimeError("reset the backend before reading its map")
        return self.assets.road_map

    @property
    def connected(self) -> bool:
        return self._client is not None and not self._lost

    def _lost_error(self, exc: BaseException, during: str) -> ServerLostError:
        self._lost = True
        return ServerLostError(
            f"the CARLA server at {self.config.address} stopped answering {during} "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
            f"the episode is cut off and the next reset reconnects"
        )

    def _connect(self) -> None:
        if self._client is not None and not self._lost:
            return
        if self._lost:
            self._client = reconnect(self.config, self._client_factory)
        else:
            self._client = connect(self.config, self._client_factory)
        self._lost = False
        self._world = self._client.get_world()
        self._original_settings = self._world.get_settings()
        self._loaded_spec = None
        self._tm = self._client.get_trafficmanager(self.config.tm_port)

    def _load_map(self, spec: str) -> None:
        """Load ``spec`` on the server unless it is loaded already (reloading costs seconds)."""
        if self._loaded_spec == spec:
            return
        client = self._client
        self._world.apply_settings(self._original_settings)  # load asynchronously, then go synchronous
        if _is_town_name(spec):
            current = self._world.get_map().name.rsplit("/", 1)[-1]
            if current != spec:
                available = sorted(m.rsplit("/", 1)[-1] for m in client.get_available_maps())
                if spec not in available:
                    raise MapError(
                        f"{spec}: the CARLA server has no such town; it has {', '.join(available)}"
                    )
                self._world = client.load_world(spec)
        else:
            xodr = load_map(spec).xodr_text
            params = carla.OpendriveGenerationParameters(
                vertex_distance=2.0,
                max_road_length=500.0,
                wall_height=0.0,
                additional_width=0.6,
                smooth_junctions=True,
                enable_mesh_visibility=True,
                enable_pedestrian_navigation=True,
            )
            self._world = client.generate_opendrive_world(xodr, params)
        self._loaded_spec = spec

    def _go_synchronous(self, dt_s: float) -> None:
        settings = self._world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = dt_s
        self._world.apply_settings(settings)
        self._tm.set_synchronous_mode(True)

    def _assets_of_server_map(self, spec: str) -> MapAssets:
        xodr = self._world.get_map().to_opendrive()
        key = f"carla:{content_hash(xodr)}"
        if key not in self._maps:
            name = spec.rsplit("/", 1)[-1] if _is_town_name(spec) else load_map_name(spec)
            self._maps[key] = MapAssets.build(RoadMap.from_xodr(name, xodr, source=f"carla:{spec}"))
        return self._maps[key]

    # -- reset -------------------------------------------------------------------------

    def reset(self, scenario: Scenario, seed: int) -> WorldState:
        self._destroy_spawned()
        try:
            self._connect()
            self._load_map(scenario.map)
            self._go_synchronous(scenario.world.dt_s)
            return self._start_episode(scenario, int(seed))
        except RuntimeError as exc:  # the carla client's time-outs and broken connections
            self._destroy_spawned()
            raise self._lost_error(exc, "during reset") from None
        except BaseException:
            self._destroy_spawned()
            raise

    def _start_episode(self, scenario: Scenario, seed: int) -> WorldState:
        world = self._world
        self.scenario = scenario
        self.dt_s = scenario.world.dt_s
        self.assets = self._assets_of_server_map(scenario.map)
        rng = np.random.default_rng(seed)
        self.route = plan_scenario_route(self.assets.planner, self.assets.road_map, scenario.route, rng)
        world.set_weather(carla_weather(scenario.weather))
        self._tm.set_random_device_seed(seed)
        world.set_pedestrians_seed(seed)
        self._params = VEHICLE_PARAMS[scenario.world.ego_type]
        self._spawn_ego(scenario)
        self._spawn_sensors()
        self._spawn_traffic(scenario, rng)
        walkers = self._spawn_walkers(scenario, rng)
        world.tick(self.config.timeout_s)  # walker controllers start after their first tick
        self._start_walkers(walkers)
        self._catalog = _ActorCatalog(self._ego.id)
        for actor in world.get_actors():
            self._catalog.add(actor)
        self.signals = TrafficSignals(
            self.road_map, SignalConfig(generate_lights="never"), seed, junctions=self.assets.junctions
        )
        self._light_of_row = self._match_lights(world)
        self._frame = world.tick(self.config.timeout_s)
        self._tick, self._time = 0, 0.0
        self._speed = 0.0
        self._control = Control()
        self.lane_invasions = []
        self.monitor = InfractionMonitor(self.road_map, self.route, self.infraction_config)
        self._collisions.take(self._frame)  # touches while settling are no one's fault
        self._invasions.take(self._frame)
        self._state = self._read_state(())
        self.monitor.update(self._state, ())
        return self._state

    def _spawn(self, blueprint, transform, attach_to=None):
        if attach_to is None:
            actor = self._world.try_spawn_actor(blueprint, transform)
        else:
            actor = self._world.try_spawn_actor(blueprint, transform, attach_to=attach_to)
        if actor is not None:
            self._spawned.append(actor.id)
        return actor

    def _spawn_ego(self, scenario: Scenario) -> None:
        lib = self._world.get_blueprint_library()
        name = (
            self.config.truck_blueprint if scenario.world.ego_type == "truck" else self.config.car_blueprint
        )
        bp = lib.find(name)
        bp.set_attribute("role_name", "hero")
        x, y, z = (float(v) for v in self.route.xyz_m[0])
        yaw = float(self.route.yaw_rad[0])
        for lift in (SPAWN_LIFT_M, 1.0, 2.0):
            self._ego = self._spawn(bp, transform_of(x, y, z + lift, yaw))
            if self._ego is not None:
                break
        if self._ego is None:
            raise CarlaError(
                f"could not spawn the ego ({name}) at the route's start ({x:.1f}, {y:.1f}): "
                "the place is taken"
            )
        wheels = self._ego.get_physics_control().wheels
        self._carla_max_steer_rad = math.radians(float(wheels[0].max_steer_angle))
        e = self._ego.bounding_box.extent
        self._params = _params_with_size(self._params, 2.0 * e.x, 2.0 * e.y, 2.0 * e.z)

    def _spawn_sensors(self) -> None:
        lib = self._world.get_blueprint_library()
        bbox = self._ego.bounding_box
        self._frames = (
            FrameBuffer([c.name for c in self.cameras], self.config.sensor_timeout_s)
            if self.cameras
            else None
        )
        for spec in self.cameras:
            bp = lib.find("sensor.camera.rgb")
            for key, value in camera_attributes(spec).items():
                bp.set_attribute(key, value)
            sensor = self._spawn(bp, camera_mount(spec, bbox), attach_to=self._ego)
            if sensor is None:
                raise CarlaError(f"could not attach camera {spec.name} to the ego")
            self._sensors.append(sensor)
            frames, name = self._frames, spec.name
            sensor.listen(
                lambda img, f=frames, n=name: f.put(
                    n, img.frame, rgb_of_bgra(img.raw_data, img.width, img.height)
                )
            )
        for kind, queue, payload in (
            ("sensor.other.collision", self._collisions, _collision_payload),
            ("sensor.other.lane_invasion", self._invasions, _invasion_payload),
        ):
            sensor = self._spawn(lib.find(kind), carla.Transform(), attach_to=self._ego)
            if sensor is None:
                raise CarlaError(f"could not attach {kind} to the ego")
            self._sensors.append(sensor)
            sensor.listen(lambda ev, q=queue, p=payload: q.put(ev.frame, p(ev)))

    def _spawn_traffic(self, scenario: Scenario, rng: np.random.Generator) -> None:
        count = npc_count(scenario.traffic, self.road_map.driving_lane_km)
        avoid = self.route.xyz_m[: min(len(self.route.s_m), 40), :2]
        poses = npc_spawn_points(self.road_map, rng, count, avoid)
        if not poses:
            return
        lib = self._world.get_blueprint_library()
        by_type: dict[ActorType, list[str]] = {}
        for bp in lib.filter("vehicle.*"):
            by_type.setdefault(actor_type_of(bp.id, _blueprint_attributes(bp)), []).append(bp.id)
        for ids in by_type.values():
            ids.sort()  # the library's order is not promised; the seed's choice must be
        names = pick_blueprints(by_type, scenario.traffic, rng, len(poses))
        port, sigma = self.config.tm_port, scenario.traffic.speed_factor_sigma
        for name, (x, y, z, yaw) in zip(names, poses, strict=True):
            bp = lib.find(name)
            bp.set_attribute("role_name", "autopilot")
            # drawn for every pose, spawned or not, so one blocked place changes nothing else
            speed_difference = float(-100.0 * sigma * rng.standard_normal())  # TM: positive is slower
            actor = self._spawn(bp, transform_of(x, y, z + SPAWN_LIFT_M, yaw))
            if actor is not None:
                actor.set_autopilot(True, port)
                self._tm.vehicle_percentage_speed_difference(actor, speed_difference)

    def _spawn_walkers(self, scenario: Scenario, rng: np.random.Generator) -> list[tuple[Any, float]]:
        """Walkers at the server's navigation points (seeded by ``set_pedestrians_seed``),
        each with an AI controller attached; returns (controller, walking speed)."""
        count = walker_count(scenario.traffic, self.assets.walkways.sidewalk_km)
        world = self._world
        lib = world.get_blueprint_library()
        kinds = sorted(bp.id for bp in lib.filter("walker.pedestrian.*"))
        out = []
        for _ in range(count if kinds else 0):
            loc = world.get_random_location_from_navigation()
            if loc is None:
                continue
            bp = lib.find(kinds[int(rng.integers(len(kinds)))])
            if bp.has_attribute("is_invincible"):
                bp.set_attribute("is_invincible", "false")
            walk = bp.get_attribute("speed").recommended_values[1] if bp.has_attribute("speed") else "1.4"
            walker = self._spawn(bp, carla.Transform(loc + carla.Location(z=1.0)))
            if walker is None:
                continue
            controller = self._spawn(lib.find("controller.ai.walker"), carla.Transform(), attach_to=walker)
            if controller is not None:
                out.append((controller, float(walk)))
        world.set_pedestrians_cross_factor(float(scenario.traffic.jaywalk_probability))
        return out

    def _start_walkers(self, walkers: list[tuple[Any, float]]) -> None:
        world = self._world
        for controller, speed in walkers:
            controller.start()
            self._controllers.append(controller)
            goal = world.get_random_location_from_navigation()
            if goal is not None:
                controller.go_to_location(goal)
            controller.set_max_speed(speed)

    def _match_lights(self, world) -> list[int | None]:
        lights = []
        self._lights: dict[int, Any] = {}
        for tl in world.get_actors().filter("traffic.traffic_light"):
            lanes = tuple(LaneKey(wp.road_id, wp.section_id, wp.lane_id) for wp in tl.get_stop_waypoints())
            lights.append(CarlaLight(tl.id, str(tl.get_opendrive_id()), lanes))
            self._lights[tl.id] = tl
        sig = self.signals
        is_light = [bool(p >= 0) for p in sig.phase_of_row]
        return match_light_rows(sig.signal_id, sig.lanes, is_light, lights)

    # -- stepping ----------------------------------------------------------------------

    def apply_control(self, control: Control) -> None:
        if not isinstance(control, Control):
            control = Control.from_array(control)
        self._control = control

    def tick(self) -> WorldState:
        if self._state is None:
            raise RuntimeError("reset the backend before ticking it")
        if self._lost:
            raise ServerLostError(f"the CARLA server at {self.config.address} was lost; reset to reconnect")
        try:
            self._ego.apply_control(vehicle_control(self._control, self._params, self._carla_max_steer_rad))
            self._frame = self._world.tick(self.config.timeout_s)
            self._tick += 1
            self._time = round(self._tick * self.dt_s, 9)
            contacts = [c for _, c in self._collisions.take(self._frame)]
            for _, crossed in self._invasions.take(self._frame):
                self.lane_invasions.append((self._time, crossed))
            state = self._read_state(())
        except RuntimeError as exc:
            raise self._lost_error(exc, f"at tick {self._tick}") from None
        events = self.monitor.update(state, contacts)
        if events:
            state = dataclasses.replace(state, events=tuple(events))
        self._state = state
        return state

    def state(self) -> WorldState:
        if self._state is None:
            raise RuntimeError("reset the backend before reading its state")
        return self._state

    def _read_state(self, events: Sequence[Event]) -> WorldState:
        world = self._world
        snapshot = world.get_snapshot()
        ego = snapshot.find(self._ego.id)
        if ego is None:
            raise CarlaError("the ego vehicle vanished from the server")
        steer_deg = 0.5 * (
            self._ego.get_wheel_steer_angle(carla.VehicleWheelLocation.FL_Wheel)
            + self._ego.get_wheel_steer_angle(carla.VehicleWheelLocation.FR_Wheel)
        )
        velocity = ego.get_velocity()
        speed = math.hypot(velocity.x, velocity.y)
        accel = (speed - self._speed) / self.dt_s if self._tick > 0 else 0.0
        self._speed = speed
        ego_state = ego_state_of(
            ego.get_transform(),
            velocity,
            self._ego.bounding_box,
            steer_rad=math.radians(steer_deg),
            accel_mps2=accel,
        )
        return WorldState(
            self._tick,
            self._time,
            ego_state,
            self._actors(world, snapshot),
            self._signal_states(),
            tuple(events),
        )

    def _actors(self, world, snapshot) -> Actors:
        records = []
        for a in snapshot:
            info = self._catalog.lookup(world, a.id)
            if info is not None:
                records.append(ActorRecord(a.id, info[0], a.get_transform(), a.get_velocity(), info[1]))
        return actors_of(records)

    def _signal_states(self) -> SignalStates:
        sig = self.signals
        if not len(sig):
            return SignalStates.empty()
        states = np.full(len(sig), int(LightState.STOP), np.int8)
        for row, actor_id in enumerate(self._light_of_row):
            if sig.phase_of_row[row] >= 0:
                tl = self._lights.get(actor_id) if actor_id is not None else None
                states[row] = int(light_state_of(tl.get_state())) if tl is not None else int(LightState.OFF)
        return SignalStates(sig.signal_id, states, sig.stop_xy_m, sig.stop_yaw_rad, sig.lanes)

    def render(self, rig) -> np.ndarray:
        """The rig's images of the last tick, ``uint8`` (n_cams, H, W, 3) RGB.

        ``rig`` must be the cameras this backend was built with. Waits for the tick's
        frames up to ``sensor_timeout_s`` (then :class:`SensorFrameError`); after the
        server was lost, black images (the episode's last step; never a stale picture).
        """
        specs = tuple(rig)
        if specs != self.cameras:
            raise ConfigError(
                f"the CARLA backend carries cameras {[c.name for c in self.cameras]}; "
                f"render asked for {[c.name for c in specs]}"
            )
        if self._state is None:
            raise RuntimeError("reset the backend before rendering it")
        if self._lost or self._frames is None:
            return (
                np.zeros((len(specs), specs[0].height_px, specs[0].width_px, 3), np.uint8)
                if specs
                else (np.zeros((0, 1, 1, 3), np.uint8))
            )
        return np.stack(self._frames.get(self._frame))

    # -- drivers -----------------------------------------------------------------------

    def make_autopilot(self, config: AutopilotConfig | None = None) -> Autopilot:
        """The privileged autopilot for the current route (the embedded backend's)."""
        if self.route is None:
            raise RuntimeError("reset the backend before asking for its autopilot")
        rm = self.road_map
        limits = np.array([rm.lanes[tuple(k)].speed_limit_mps for k in self.route.lane_keys])
        return Autopilot(self.route, limits, self._params, config)

    # -- cleanup -----------------------------------------------------------------------

    def _destroy_spawned(self) -> None:
        """Destroy every actor this backend spawned (sensors and controllers stopped
        first). Safe to call twice; after a lost server there is nothing left to destroy."""
        sensors, controllers, spawned = self._sensors, self._controllers, self._spawned
        self._sensors, self._controllers, self._spawned = [], [], []
        self._ego, self._frames, self._state = None, None, None
        self._collisions.clear()
        self._invasions.clear()
        if self._client is None or self._lost or not spawned:
            return
        try:
            for sensor in sensors:
                sensor.stop()
            for controller in controllers:
                controller.stop()
            self._client.apply_batch_sync([carla.command.DestroyActor(i) for i in reversed(spawned)], True)
        except RuntimeError:
            self._lost = True  # the server went away: its actors went with it

    def close(self) -> None:
        """Destroy the episode's actors and give the server its settings back; safe twice."""
        try:
            self._destroy_spawned()
        finally:
            if self._client is not None and not self._lost:
                try:
                    if self._original_settings is not None:
                        self._world.apply_settings(self._original_settings)
                    if self._tm is not None:
                        self._tm.set_synchronous_mode(False)
                except RuntimeError:
                    pass  # the server is gone; nothing to restore
            self._client = self._world = self._tm = None
            self._original_settings = None
            self._loaded_spec = None
            self._lost = False


def load_map_name(spec: str) -> str:
    """The name a file or generated map spec gets (as :func:`sim.maps.load_map` names it)."""
    if spec.startswith(GENERATED_PREFIX):
        return "generated_" + spec[len(GENERATED_PREFIX) :]
    return spec.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _params_with_size(
    params: VehicleParams, length_m: float, width_m: float, height_m: float
) -> VehicleParams:
    """``params`` with the CARLA vehicle's box size (limits kept), where it still fits the
    wheelbase; else ``params`` unchanged."""
    try:
        return dataclasses.replace(params, length_m=length_m, width_m=width_m, height_m=height_m)
    except ConfigError:
        return params


def _collision_payload(event) -> tuple[int, int]:
    other = event.other_actor
    return int(other.id), int(actor_type_of(str(other.type_id), dict(other.attributes)))


def _invasion_payload(event) -> tuple[str, ...]:
    return tuple(str(m.type) for m in event.crossed_lane_markings)
