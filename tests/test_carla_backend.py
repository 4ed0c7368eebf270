"""The CARLA backend without a server: conversions with the real ``carla`` types, the
weather mapping, spawn and signal bookkeeping on real maps, the connection's errors,
and the backend's episode bookkeeping against a fake server at the connection edge
(``tests/carla_fake.py``). Tests that need a real server are marked ``carla`` and run
when ``CARLA_HOST`` is set."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time

import carla
import numpy as np
import pytest

from sim.carla_backend import CarlaBackend, CarlaConfig, CarlaUnavailableError, ServerLostError
from sim.carla_backend.connection import connect, reconnect
from sim.carla_backend.conversions import (
    ActorRecord,
    actor_type_of,
    actors_of,
    camera_attributes,
    camera_mount,
    ego_state_of,
    ground_centre,
    light_state_of,
    pose_of,
    transform_of,
    vehicle_control,
    yaw_rad_of,
)
from sim.carla_backend.weather import CARLA_WEATHER_FIELDS, NIGHT_SUN_ALTITUDE_DEG, carla_weather
from sim.carla_backend.world_setup import (
    CarlaLight,
    match_light_rows,
    npc_count,
    npc_spawn_points,
    pick_blueprints,
)
from sim.errors import ConfigError
from sim.render.camera import RIG_NAMES, rig
from sim.render.weather import WEATHER_NAMES, weather_preset
from sim.scenario import RouteRequest, Scenario, TrafficConfig
from sim.signals import SignalConfig, TrafficSignals
from sim.state import ActorType, Control, LightState
from sim.vehicle import VEHICLE_PARAMS, control_to_physical
from tests.carla_fake import EGO_BOX, FakeServer
from tests.conftest import MAPS, ROOT, shared_map

CAR = VEHICLE_PARAMS["car"]
LINCOLN_MAX_STEER_RAD = math.radians(70.0)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- controls ----------------------------------------------------------------------------


@pytest.mark.parametrize("steer", [-1.0, -0.4, 0.0, 0.25, 1.0])
def test_steer_asks_carla_for_the_same_front_wheel_angle(steer):
    c = vehicle_control(Control(steer, 0.0), CAR, LINCOLN_MAX_STEER_RAD)
    assert isinstance(c, carla.VehicleControl)
    wheel_rad, _ = control_to_physical(steer, 0.0, CAR)
    assert c.steer * LINCOLN_MAX_STEER_RAD == pytest.approx(wheel_rad, abs=1e-6)
    assert c.steer == pytest.approx(steer * 0.61 / LINCOLN_MAX_STEER_RAD, abs=1e-6)  # full lock: ~0.5


def test_steer_beyond_carlas_lock_is_clipped():
    c = vehicle_control(Control(-1.0, 0.0), CAR, math.radians(20.0))
    assert c.steer == -1.0


@pytest.mark.parametrize(
    ("accel", "throttle", "brake"),
    [(1.0, 1.0, 0.0), (0.3, 0.3, 0.0), (0.0, 0.0, 0.0), (-0.5, 0.0, 0.5), (-1.0, 0.0, 1.0)],
)
def test_accel_becomes_one_pedal(accel, throttle, brake):
    c = vehicle_control(Control(0.0, accel), CAR, LINCOLN_MAX_STEER_RAD)
    assert (c.throttle, c.brake) == (pytest.approx(throttle), pytest.approx(brake))
    assert not c.reverse and not c.hand_brake


# -- frames --------------------------------------------------------------------------------


def test_pose_and_transform_round_trip_in_radians():
    t = transform_of(12.5, -3.25, 0.4, math.radians(-135.0), math.radians(5.0))
    assert isinstance(t, carla.Transform)
    assert t.rotation.yaw == pytest.approx(-135.0) and t.rotation.pitch == pytest.approx(5.0)
    p = pose_of(t)
    assert (p.x_m, p.y_m, p.z_m) == pytest.approx((12.5, -3.25, 0.4))
    assert p.yaw_rad == pytest.approx(math.radians(-135.0)) and p.pitch_rad == pytest.approx(
        math.radians(5.0)
    )
    assert yaw_rad_of(270.0) == pytest.approx(-math.pi / 2) and yaw_rad_of(-450.0) == pytest.approx(
        -math.pi / 2
    )
    # CARLA's yaw turns +x toward +y, as loopdrive's (x forward, y right)
    f = transform_of(0, 0, 0, math.radians(90.0)).get_forward_vector()
    assert (f.x, f.y) == pytest.approx((0.0, 1.0), abs=1e-6)


def test_ground_centre_is_the_bottom_of_the_box_in_the_world():
    t = transform_of(100.0, 50.0, 2.0, math.radians(90.0))
    x, y, z = ground_centre(t, EGO_BOX)  # box 0.1 m ahead of the origin, bottom at the origin's height
    assert (x, y, z) == pytest.approx((100.0, 50.1, 2.0), abs=1e-5)


def test_ego_state_and_actors_from_carla_types():
    t = transform_of(10.0, 20.0, 0.0, math.radians(30.0))
    v = carla.Vector3D(3.0, 4.0, 0.5)
    ego = ego_state_of(t, v, EGO_BOX, steer_rad=0.1, accel_mps2=1.5)
    assert ego.speed_mps == pytest.approx(5.0) and ego.yaw_rad == pytest.approx(math.radians(30.0))
    assert (ego.length_m, ego.width_m, ego.height_m) == pytest.approx((4.9, 2.1, 1.5))
    assert (ego.x_m, ego.y_m) == pytest.approx(
        (10.0 + 0.1 * math.cos(math.radians(30)), 20.0 + 0.1 * math.sin(math.radians(30)))
    )
    walker_box = carla.BoundingBox(carla.Location(0, 0, 0), carla.Vector3D(0.3, 0.3, 0.9))
    actors = actors_of(
        [
            ActorRecord(7, ActorType.CAR, t, v, EGO_BOX),
            ActorRecord(
                9, ActorType.WALKER, transform_of(1.0, 2.0, 0.9, 0.0), carla.Vector3D(1, 0, 0), walker_box
            ),
        ]
    )
    assert actors.id.tolist() == [7, 9] and actors.type.tolist() == [ActorType.CAR, ActorType.WALKER]
    assert actors.xyz_m[1] == pytest.approx((1.0, 2.0, 0.0))  # a walker's origin is its middle
    assert actors.half_extent_m[0] == pytest.approx((2.45, 1.05, 0.75))
    assert actors.velocity_mps[0] == pytest.approx((3.0, 4.0))
    assert len(actors_of([])) == 0


def test_actor_and_light_types():
    assert actor_type_of("vehicle.lincoln.mkz_2020", {"base_type": "car"}) == ActorType.CAR
    assert actor_type_of("vehicle.carlamotors.firetruck", {"base_type": "truck"}) == ActorType.TRUCK
    assert actor_type_of("vehicle.bh.crossbike", {"number_of_wheels": "2"}) == ActorType.BICYCLE
    assert actor_type_of("walker.pedestrian.0001") == ActorType.WALKER
    assert actor_type_of("static.prop.streetbarrier") == ActorType.STATIC
    assert light_state_of(carla.TrafficLightState.Red) == LightState.RED
    assert light_state_of(carla.TrafficLightState.Yellow) == LightState.YELLOW
    assert light_state_of(carla.TrafficLightState.Green) == LightState.GREEN
    assert light_state_of(carla.TrafficLightState.Unknown) == LightState.OFF


# -- cameras -------------------------------------------------------------------------------


@pytest.mark.parametrize("rig_name", RIG_NAMES)
def test_camera_axes_match_the_embedded_rig(rig_name):
    for spec in rig(rig_name):
        mount = camera_mount(spec, EGO_BOX)
        f, r, u = mount.get_forward_vector(), mount.get_right_vector(), mount.get_up_vector()
        axes = np.array([[f.x, r.x, u.x], [f.y, r.y, u.y], [f.z, r.z, u.z]])
        np.testing.assert_allclose(axes, spec.rotation_ego(), atol=1e-6)


@pytest.mark.parametrize("rig_name", RIG_NAMES)
def test_carla_projection_puts_each_embedded_ray_on_its_pixel(rig_name):
    """A point on the embedded renderer's ray through pixel (v, u), projected with
    CARLA's camera model (sensor transform, K from image size and fov), lands on the
    centre of that pixel: same mounting, same intrinsics."""
    ego_tf = transform_of(30.0, -12.0, 0.5, math.radians(37.0))
    ego_m = np.array(ego_tf.get_matrix())
    e, c = EGO_BOX.extent, EGO_BOX.location
    for spec in rig(rig_name, width_px=64, height_px=32):
        attrs = camera_attributes(spec)
        w, h, fov = int(attrs["image_size_x"]), int(attrs["image_size_y"]), float(attrs["fov"])
        f = w / (2.0 * math.tan(math.radians(fov) / 2.0))
        k = np.array([[f, 0, w / 2.0], [0, f, h / 2.0], [0, 0, 1]])
        world_to_cam = np.linalg.inv(ego_m @ np.array(camera_mount(spec, EGO_BOX).get_matrix()))
        rays = spec.rays_ego()
        for v, u in [(0, 0), (h - 1, w - 1), (h // 2, w // 3), (5, 50)]:
            p = np.array([spec.x_m, spec.y_m, spec.z_m]) + 12.0 * rays[v, u]
            loc = ego_tf.transform(carla.Location(c.x + p[0], c.y + p[1], c.z - e.z + p[2]))
            pc = world_to_cam @ np.array([loc.x, loc.y, loc.z, 1.0])
            img = k @ np.array([pc[1], -pc[2], pc[0]])  # CARLA: x forward -> depth; y right; z up
            assert img[:2] / img[2] == pytest.approx((u + 0.5, v + 0.5), abs=1e-3)


# -- weather ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WEATHER_NAMES)
def test_every_weather_preset_maps_to_carla(name):
    assert name in CARLA_WEATHER_FIELDS
    w = carla_weather(name)
    assert isinstance(w, carla.WeatherParameters)
    preset = weather_preset(name)
    if preset.lamps_on:
        assert w.sun_altitude_angle == NIGHT_SUN_ALTITUDE_DEG
    else:
        assert w.sun_altitude_angle == pytest.approx(math.degrees(preset.sun_elevation_rad), abs=1e-4)
    assert 0.0 <= w.sun_azimuth_angle < 360.0
    wet = preset.road_darkening > 0
    assert (w.precipitation > 0 and w.precipitation_deposits > 0 and w.wetness > 0) == wet


def test_weather_times_of_day_order_and_unknown_names():
    alt = {n: carla_weather(n).sun_altitude_angle for n in ("noon", "sunset", "night")}
    assert alt["noon"] > alt["sunset"] > 0 > alt["night"]
    assert carla_weather("cloudy").cloudiness > carla_weather("noon").cloudiness
    with pytest.raises(ConfigError, match="unknown weather 'fog'"):
        carla_weather("fog")


# -- spawning and signals on real maps -----------------------------------------------------------


def test_npc_spawn_points_are_seeded_spaced_and_away_from_the_ego():
    rm = shared_map("carla/Town01.xodr")
    lane = next(la for la in rm.lanes.values() if not la.in_junction and la.length_m > 50)
    avoid = lane.xyz_m[:5, :2]
    a = npc_spawn_points(rm, np.random.default_rng(3), 40, avoid)
    b = npc_spawn_points(rm, np.random.default_rng(3), 40, avoid)
    assert a == b and len(a) == 40
    xy = np.array([p[:2] for p in a])
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) + np.eye(40) * 1e9
    assert d.min() >= 10.0
    assert np.hypot(xy[:, None, 0] - avoid[None, :, 0], xy[:, None, 1] - avoid[None, :, 1]).min() >= 20.0
    for x, y, _, yaw in a:  # on a lane, heading its way
        pos = rm.lane_at(x, y, yaw_rad=yaw)
        assert pos is not None and not rm.lanes[pos.key].in_junction


def test_counts_and_blueprint_shares():
    assert npc_count(TrafficConfig(vehicles_per_km=2.0, max_vehicles=50), 10.0) == 20
    assert npc_count(TrafficConfig(vehicles_per_km=2.0, max_vehicles=5), 10.0) == 5
    assert npc_count(TrafficConfig(vehicle_count=7), 10.0) == 7
    pools = {ActorType.CAR: ["c1", "c2"], ActorType.TRUCK: ["t"], ActorType.BICYCLE: ["b"]}
    names = pick_blueprints(
        pools, TrafficConfig(truck_share=0.3, bicycle_share=0.2), np.random.default_rng(0), 4000
    )
    share = {k: names.count(k) / len(names) for k in ("t", "b")}
    assert share["t"] == pytest.approx(0.3, abs=0.03) and share["b"] == pytest.approx(0.2, abs=0.03)
    assert set(
        pick_blueprints(
            {ActorType.CAR: ["c"]},
            TrafficConfig(truck_share=0.9, bicycle_share=0.1),
            np.random.default_rng(0),
            5,
        )
    ) == {"c"}


def test_carla_lights_drive_the_rows_of_the_same_maps_signals():
    rm = shared_map("carla/Town01.xodr")
    sig = TrafficSignals(rm, SignalConfig(generate_lights="never"), 0)
    heads = sorted({s.id for s in rm.signals if s.kind == "traffic_light"})
    lights = [CarlaLight(1000 + i, sid, ()) for i, sid in enumerate(heads)]
    is_light = [bool(p >= 0) for p in sig.phase_of_row]
    matched = match_light_rows(sig.signal_id, sig.lanes, is_light, lights)
    by_id = {sid: 1000 + i for i, sid in enumerate(heads)}
    for sid, actor in zip(sig.signal_id, matched, strict=True):
        assert actor == by_id.get(sid)
    assert sum(a is not None for a in matched) >= len(sig) // 2
    # a row no head id names is matched by the stop line's lane
    lane = sig.lanes[0]
    assert match_light_rows(["gen:x"], [lane], [True], [CarlaLight(5, "99", (tuple(lane),))]) == [5]
    assert match_light_rows(["gen:x"], [lane], [False], [CarlaLight(5, "99", (tuple(lane),))]) == [None]


# -- config and connection -------------------------------------------------------------------------


def test_config_ports_and_validation():
    assert CarlaConfig().tm_port == 8000 and CarlaConfig(port=2004).tm_port == 8004
    assert CarlaConfig(port=2000, traffic_manager_port=9100).tm_port == 9100
    assert CarlaConfig(port=62000).tm_port == 56000
    assert CarlaConfig(host="h", port=3).address == "h:3"
    for bad in (
        dict(port=0),
        dict(port=70000),
        dict(timeout_s=0),
        dict(timeout_s=float("nan")),
        dict(host=""),
        dict(port=2000, traffic_manager_port=2000),
        dict(reconnect_attempts=0),
        dict(port=True),
    ):
        with pytest.raises(ConfigError, match="carla"):
            CarlaConfig(**bad)


def test_closed_port_gives_the_clear_error_within_the_timeout():
    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(CarlaUnavailableError) as err:
        connect(CarlaConfig(host="127.0.0.1", port=port, timeout_s=2.0))
    assert time.monotonic() - t0 < 5.0
    text = str(err.value)
    assert f"cannot reach a CARLA server at 127.0.0.1:{port} within 2 s" in text
    assert f"CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}" in text and "carlasim/carla:0.9.16" in text
    assert "\n" not in text


def test_reconnect_tries_a_bounded_number_of_times():
    server = FakeServer()
    server.alive = False
    sleeps = []
    cfg = CarlaConfig(reconnect_attempts=3, reconnect_wait_s=0.5)
    with pytest.raises(CarlaUnavailableError, match="after 3 attempts"):
        reconnect(cfg, server.client_factory, sleep=sleeps.append)
    assert sleeps == [0.5, 0.5]

    def comes_back(seconds):
        sleeps.append(seconds)
        server.alive = True

    sleeps.clear()
    server.alive = False
    assert reconnect(cfg, server.client_factory, sleep=comes_back) is not None
    assert sleeps == [0.5]


# -- the backend against a fake server -----------------------------------------------------------------

_MAP = MAPS / "carla" / "Town01.xodr"


def _scenario(**traffic) -> Scenario:
    if not _MAP.exists():
        pytest.skip("../shared/maps/carla/Town01.xodr is absent")
    return Scenario(
        map=str(_MAP),
        route=RouteRequest(random_length_m=300.0),
        traffic=TrafficConfig(vehicle_count=traffic.get("vehicles", 3), walker_count=0),
        weather=traffic.get("weather", "rain"),
    )


@pytest.fixture(scope="module")
def map_cache():
    return {}


def _backend(server, map_cache, **kw):
    cfg = CarlaConfig(timeout_s=1.0, sensor_timeout_s=kw.pop("sensor_timeout_s", 1.0), reconnect_wait_s=0.0)
    return CarlaBackend(
        cfg,
        cameras=kw.pop("cameras", rig("front3", 32, 16)),
        map_cache=map_cache,
        client_factory=server.client_factory,
    )


def test_episode_on_the_fake_server_syncs_spawns_ticks_renders_and_cleans_up(map_cache):
    server = FakeServer()
    backend = _backend(server, map_cache)
    state = backend.reset(_scenario(), seed=4)
    assert server.settings.synchronous_mode and server.settings.fixed_delta_seconds == pytest.approx(0.05)
    assert ("set_synchronous_mode", 8000, True) in server.tm_calls and (
        "set_random_device_seed",
        8000,
        4,
    ) in server.tm_calls
    assert server.weather.precipitation > 0  # the scenario's rain
    kinds = sorted(a.type_id for a in server.actors.values())
    assert kinds.count("sensor.camera.rgb") == 3 and kinds.count("vehicle.lincoln.mkz_2020") == 4
    assert "sensor.other.collision" in kinds and "sensor.other.lane_invasion" in kinds
    # the ego starts on the planned route; the other cars are the state's actors
    assert (
        math.hypot(state.ego.x_m - backend.route.xyz_m[0, 0], state.ego.y_m - backend.route.xyz_m[0, 1]) < 0.5
    )
    assert len(state.actors) == 3 and set(state.actors.type.tolist()) == {ActorType.CAR}
    assert state.tick == 0 and backend.monitor is not None
    images = backend.render(rig("front3", 32, 16))
    assert images.shape == (3, 16, 32, 3) and images.dtype == np.uint8
    # frame-matched: the fake paints the frame number into the red... of BGRA byte 0 (blue)
    assert int(images[0, 0, 0, 2]) == server.frame % 256
    backend.apply_control(Control(0.5, 1.0))
    s1 = backend.tick()
    assert s1.tick == 1 and s1.time_s == pytest.approx(0.05)
    ego = next(a for a in server.actors.values() if a.attributes.get("role_name") == "hero")
    assert ego.controls[-1].throttle == pytest.approx(1.0) and ego.controls[-1].steer == pytest.approx(
        0.5 * 0.61 / LINCOLN_MAX_STEER_RAD, abs=1e-6
    )
    assert int(backend.render(rig("front3", 32, 16))[1, 0, 0, 2]) == server.frame % 256
    autopilot = backend.make_autopilot()
    assert -1.0 <= autopilot.act(s1).steer <= 1.0
    spawned = set(server.actors)
    backend.close()
    assert not server.actors and set(server.destroyed) == spawned  # everything it spawned, nothing else
    assert not server.settings.synchronous_mode  # the server's settings are back
    assert ("set_synchronous_mode", 8000, False) in server.tm_calls
    backend.close()  # twice is fine


def test_reset_destroys_the_previous_episode_and_a_failed_reset_cleans_up(map_cache):
    server = FakeServer()
    backend = _backend(server, map_cache)
    backend.reset(_scenario(), seed=1)
    first = set(server.actors)
    backend.reset(_scenario(), seed=2)
    assert first.isdisjoint(server.actors) and len(server.actors) == len(first)
    server.fail_spawn = "sensor.other.lane_invasion"  # the ego and cameras exist by then
    with pytest.raises(Exception, match="could not attach sensor.other.lane_invasion"):
        backend.reset(_scenario(), seed=3)
    assert not server.actors  # nothing left behind
    server.fail_spawn = None
    backend.reset(_scenario(), seed=3)
    assert server.actors
    backend.close()
    assert not server.actors


def test_a_dead_server_cuts_the_episode_and_the_next_reset_reconnects(map_cache):
    server = FakeServer()
    backend = _backend(server, map_cache)
    backend.reset(_scenario(), seed=5)
    backend.tick()
    server.alive = False
    with pytest.raises(ServerLostError, match="stopped answering at tick 1.*next reset reconnects"):
        backend.tick()
    assert backend.state().tick == 1  # what was read before stays readable
    assert backend.render(rig("front3", 32, 16)).max() == 0  # black, never a stale picture
    # a restarted server: fresh, with none of the old actors
    restarted = FakeServer()
    backend._client_factory = restarted.client_factory
    state = backend.reset(_scenario(), seed=5)
    assert state.tick == 0 and restarted.connections == 1 and restarted.actors
    backend.close()
    assert not restarted.actors


def test_a_server_that_stays_dead_fails_the_reset_after_bounded_retries(map_cache):
    server = FakeServer()
    backend = _backend(server, map_cache)
    backend.reset(_scenario(), seed=5)
    server.alive = False
    with pytest.raises(ServerLostError):
        backend.tick()
    t0 = time.monotonic()
    with pytest.raises(CarlaUnavailableError, match="after 3 attempts"):
        backend.reset(_scenario(), seed=6)
    assert time.monotonic() - t0 < 2.0
    backend.close()


def test_a_late_camera_frame_is_an_error_not_an_old_image(map_cache):
    from sim.carla_backend import SensorFrameError

    server = FakeServer()
    backend = _backend(server, map_cache, sensor_timeout_s=0.3)
    backend.reset(_scenario(), seed=0)
    server.drop_frames = frozenset({server.frame + 1})
    backend.tick()
    with pytest.raises(SensorFrameError, match=f"no data for frame {server.frame}"):
        backend.render(rig("front3", 32, 16))
    backend.tick()
    assert int(backend.render(rig("front3", 32, 16))[0, 0, 0, 2]) == server.frame % 256
    with pytest.raises(ConfigError, match="carries cameras"):
        backend.render(rig("front", 32, 16))
    backend.close()


# -- command line -----------------------------------------------------------------------------------------


GOLDEN_EPISODE = ROOT / "tests" / "golden" / "autopilot_noon.parquet"


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--map", "generated:0", "--routes", "random:1"],
        ["run", "--map", "generated:0", "--store", "{tmp}/store"],
        ["drive", "--map", "generated:0", "--max-steps", "5"],
        ["replay", str(GOLDEN_EPISODE), "--from-step", "3", "--policy", "autopilot"],
        ["collect", "--maps", "generated:0", "--episodes", "1", "--out", "{tmp}/set.npz"],
    ],
    ids=["evaluate", "run", "drive", "replay", "collect"],
)
def test_commands_with_an_unreachable_carla_server_exit_2_with_the_clear_error(command, tmp_path):
    port = _closed_port()
    cmd = [sys.executable, "-m", "scripts.cli", *(c.replace("{tmp}", str(tmp_path)) for c in command)]
    cmd += ["--backend", "carla", "--host", "127.0.0.1", "--port", str(port), "--timeout", "1"]
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("loopdrive: error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"loopdrive: error: cannot reach a CARLA server at 127.0.0.1:{port} within 1 s"
    )
    assert "Traceback" not in result.stderr
    assert time.monotonic() - t0 < 30.0  # python start-up and imports included


def test_env_with_the_carla_backend_fails_clearly_at_reset():
    import gymnasium as gym

    import envs  # noqa: F401  (registers the env ids)

    port = _closed_port()
    env = gym.make(
        "loopdrive/Drive-v0",
        backend="carla",
        carla_host="127.0.0.1",
        carla_port=port,
        carla_timeout_s=1.0,
        disable_env_checker=True,
    )
    t0 = time.monotonic()
    with pytest.raises(CarlaUnavailableError, match=f"127.0.0.1:{port} within 1 s"):
        env.reset(seed=0)
    assert time.monotonic() - t0 < 4.0
    env.close()
    with pytest.raises(ConfigError, match="backend"):
        gym.make("loopdrive/Drive-v0", backend="unity")


# -- a real server ---------------------------------------------------------------------------------------

needs_server = pytest.mark.skipif(
    "CARLA_HOST" not in os.environ,
    reason="needs a CARLA 0.9.15/0.9.16 server: set CARLA_HOST (and CARLA_PORT)",
)


def _server_config() -> CarlaConfig:
    return CarlaConfig(
        host=os.environ["CARLA_HOST"], port=int(os.environ.get("CARLA_PORT", "2000")), timeout_s=20.0
    )


@pytest.mark.carla
@needs_server
def test_real_server_episode_with_the_autopilot():
    backend = CarlaBackend(_server_config(), cameras=rig("front3", 160, 80))
    try:
        scenario = Scenario(
            map=os.environ.get("CARLA_TOWN", "Town01"),
            route=RouteRequest(random_length_m=200.0),
            traffic=TrafficConfig(vehicle_count=10, walker_count=10),
        )
        state = backend.reset(scenario, seed=0)
        driver = backend.make_autopilot()
        for _ in range(200):
            backend.apply_control(driver.act(state))
            state = backend.tick()
            images = backend.render(rig("front3", 160, 80))
            assert images.shape == (3, 80, 160, 3) and images.std() > 0
        assert backend.monitor.progress_m > 10.0
    finally:
        backend.close()


@pytest.mark.carla
@needs_server
def test_real_server_env_steps_and_resets():
    import gymnasium as gym

    import envs  # noqa: F401

    cfg = _server_config()
    env = gym.make(
        "loopdrive/Drive-v0",
        backend="carla",
        carla_host=cfg.host,
        carla_port=cfg.port,
        map=os.environ.get("CARLA_TOWN", "Town01"),
        disable_env_checker=True,
    )
    try:
        for seed in (0, 1):
            obs, info = env.reset(seed=seed)
            for _ in range(20):
                obs, reward, terminated, truncated, info = env.step(info["autopilot_action"])
            assert obs["camera"].shape[0] == 1
    finally:
        env.close()
