"""The camera renderer: rigs, weather, the static scene, geometry, determinism, pictures, bad input.

Pictures of every rig and weather are written to the test's tmp_path and, for a
person to look at, to /tmp/render_look/.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sim.embedded import EmbeddedBackend
from sim.errors import ConfigError
from sim.maps.raster import RasterClass
from sim.render import (
    RIG_NAMES,
    WEATHER_NAMES,
    CameraSpec,
    Renderer,
    StaticKind,
    StaticScene,
    rig,
    weather_preset,
)
from sim.render import layout as L
from sim.render.pack import CAR_RGB, pack_states
from sim.render.scene import GROUNDED_KINDS
from sim.render.workers import RenderWorkers
from sim.render.workers import available as workers_available
from sim.scenario import RouteRequest, Scenario, TrafficConfig
from sim.state import Actors, ActorType, EgoState, LightState, SignalStates, WorldState
from tests.conftest import MAPS, needs_shared

TOWN01 = str(MAPS / "carla" / "Town01.xodr")
LOOK = Path("/tmp/render_look")
_WORLDS: dict = {}


def _world(map_spec: str):
    """(backend, scene, state after 80 ticks) of a map with traffic, built once per session."""
    if map_spec not in _WORLDS:
        backend = EmbeddedBackend()
        scenario = Scenario(
            map=map_spec,
            route=RouteRequest(random_length_m=400),
            traffic=TrafficConfig(vehicle_count=60, walker_count=60),
        )
        state = backend.reset(scenario, 5)
        pilot = backend.make_autopilot()
        for _ in range(80):
            backend.apply_control(pilot.act(state))
            state = backend.tick()
        scene = StaticScene.build(backend.road_map, backend.signals, seed=0)
        _WORLDS[map_spec] = backend, scene, state
    return _WORLDS[map_spec]


def _ego(x: float, y: float, yaw: float, z: float = 0.0) -> EgoState:
    return EgoState(
        x_m=x,
        y_m=y,
        z_m=z,
        yaw_rad=yaw,
        speed_mps=0.0,
        accel_mps2=0.0,
        steer_rad=0.0,
        length_m=4.6,
        width_m=1.9,
    )


def _actors(rows: list[tuple[int, ActorType, float, float, float, float, float, float, float]]) -> Actors:
    """Actors from (id, type, x, y, z, yaw, half length, half width, half height) rows."""
    if not rows:
        return Actors.empty()
    a = np.array([r[2:] for r in rows], dtype=float)
    return Actors(
        id=np.array([r[0] for r in rows], np.int64),
        type=np.array([r[1] for r in rows], np.int8),
        xyz_m=a[:, 0:3],
        yaw_rad=a[:, 3],
        half_extent_m=a[:, 4:7],
        velocity_mps=np.zeros((len(rows), 2)),
    )


def _state(ego: EgoState, actors: Actors, signals: SignalStates) -> WorldState:
    return WorldState(0, 0.0, ego, actors, signals)


def _approach(backend, scene, state, distance_m: float = 28.0) -> WorldState:
    """The state with the ego moved ``distance_m`` before a lit junction's stop line, facing it."""
    sig = backend.signals
    row = int(np.flatnonzero(np.asarray(sig.phase_of_row) >= 0)[0])
    yaw = float(sig.stop_yaw_rad[row])
    sx, sy = sig.stop_xy_m[row]
    lane = backend.road_map.lanes[sig.lanes[row]]
    z = float(lane.xyz_m[-1, 2])
    ego = _ego(sx - distance_m * math.cos(yaw), sy - distance_m * math.sin(yaw), yaw, z)
    keep = np.hypot(state.actors.xyz_m[:, 0] - ego.x_m, state.actors.xyz_m[:, 1] - ego.y_m) > 3.0
    a = state.actors
    actors = Actors(
        a.id[keep], a.type[keep], a.xyz_m[keep], a.yaw_rad[keep], a.half_extent_m[keep], a.velocity_mps[keep]
    )
    return _state(ego, actors, state.signals)


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))


def _mosaic(imgs: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) side by side, four per row."""
    n, h, w, _ = imgs.shape
    cols = min(4, n)
    rows = -(-n // cols)
    out = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i in range(n):
        out[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = imgs[i]
    return out


# -- cameras and weather -----------------------------------------------------------------------


def test_rigs_have_the_documented_cameras():
    assert RIG_NAMES == ("front", "front3", "surround8")
    (front,) = rig("front")
    assert (front.name, front.width_px, front.height_px, front.fov_deg) == ("front", 160, 80, 90.0)
    assert (front.x_m, front.y_m, front.z_m, front.yaw_rad) == (1.5, 0.0, 1.6, 0.0)
    assert front.pitch_rad == pytest.approx(math.radians(-5.0))
    assert front.focal_px == pytest.approx(80.0)
    assert [c.name for c in rig("front3")] == ["front_left", "front", "front_right"]
    assert [round(math.degrees(c.yaw_rad)) for c in rig("front3")] == [-60, 0, 60]
    s8 = rig("surround8", width_px=64, height_px=48)
    assert len({c.name for c in s8}) == 8 and all((c.width_px, c.height_px) == (64, 48) for c in s8)
    assert sorted(round(math.degrees(c.yaw_rad)) for c in s8) == [-130, -60, 0, 0, 0, 60, 130, 180]
    assert {c.fov_deg for c in rig("surround8", fov_deg=70.0)} == {70.0}


def test_pixel_rays_point_where_the_pinhole_model_says():
    cam = CameraSpec("c", width_px=8, height_px=8, fov_deg=90.0, yaw_rad=math.pi / 2, pitch_rad=0.0)
    rays = cam.rays_ego()
    # 90 degrees over 8 px: focal 4 px; pixel (0, 7) looks through (u, v) = (3.5, -3.5) from the centre
    expect = np.array([4.0, 3.5, 3.5]) / math.sqrt(4.0**2 + 3.5**2 + 3.5**2)  # camera: forward, right, up
    # turned 90 degrees right: camera forward = ego +y, camera right = ego -x
    assert rays[0, 7] == pytest.approx([-expect[1], expect[0], expect[2]])
    up = CameraSpec("u", pitch_rad=0.3).rotation_ego()
    assert up[:, 0] == pytest.approx([math.cos(0.3), 0.0, math.sin(0.3)])  # positive pitch looks up


def test_bad_names_and_ranges_are_config_errors_that_say_what_is_valid():
    with pytest.raises(ConfigError, match="front, front3, surround8"):
        rig("fisheye")
    with pytest.raises(ConfigError, match="noon, cloudy, sunset, night, rain"):
        weather_preset("snow")
    assert WEATHER_NAMES == ("noon", "cloudy", "sunset", "night", "rain")
    for bad in (
        {"width_px": 4},
        {"height_px": 5000},
        {"fov_deg": 180.0},
        {"fov_deg": 0.0},
        {"z_m": 0.0},
        {"width_px": 160.5},
        {"fov_deg": float("nan")},
        {"pitch_rad": 2.0},
    ):
        with pytest.raises(ConfigError):
            CameraSpec("c", **bad)
    with pytest.raises(ConfigError, match="width_px"):
        rig("front", width_px=2)


def test_cuda_without_cuda_says_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, scene, _ = _world(TOWN01) if MAPS.is_dir() else (None, None, None)
    if scene is None:
        pytest.skip("../shared maps are absent")
    with pytest.raises(ConfigError, match="CUDA"):
        Renderer(scene, rig("front"), weather_preset("noon"), device="cuda")
    with pytest.raises(ConfigError, match="cpu, cuda"):
        Renderer(scene, rig("front"), weather_preset("noon"), device="tpu")
    with pytest.raises(ConfigError, match="numba, torch"):
        Renderer(scene, rig("front"), weather_preset("noon"), backend="opengl")


def test_weather_palettes_darken_the_wet_road_and_fog_reaches_one_at_far():
    noon, rain = weather_preset("noon"), weather_preset("rain")
    road = RasterClass.ROAD
    assert rain.palette()[road] == pytest.approx(noon.palette()[road] * (1 - 0.42) * np.array(rain.tint_rgb))
    assert rain.palette()[RasterClass.OFF_ROAD] == pytest.approx(
        noon.palette()[RasterClass.OFF_ROAD] * np.array(rain.tint_rgb)
    )
    for w in (noon, rain, weather_preset("night")):
        assert w.fog_factor(0.0) == 0.0 and w.fog_factor(w.far_m) == pytest.approx(1.0)
    assert rain.far_m < noon.far_m


# -- the static scene ---------------------------------------------------------------------------


@needs_shared
def test_structures_stand_off_road_clear_of_every_lane():
    _, scene, _ = _world(TOWN01)
    raster = scene.raster
    assert scene.count(StaticKind.BUILDING) > 50 and scene.count(StaticKind.TREE) > 100
    assert scene.count(StaticKind.LAMP_POST) > 20
    cfg = scene.config
    clearance = {
        StaticKind.BUILDING: cfg.building_setback_m,
        StaticKind.TREE: cfg.tree_clearance_m,
        StaticKind.LAMP_POST: cfg.lamp_clearance_m,
    }
    for i in np.flatnonzero(np.isin(scene.kinds, GROUNDED_KINDS)):
        box = scene.boxes[i]
        reach = clearance[StaticKind(scene.kinds[i])] - 0.1  # one raster pixel of sampling slack
        u, v = np.meshgrid(
            np.arange(-box[L.HX] - reach, box[L.HX] + reach + 1e-9, 0.1),
            np.arange(-box[L.HY] - reach, box[L.HY] + reach + 1e-9, 0.1),
        )
        c, s = math.cos(box[L.YAW]), math.sin(box[L.YAW])
        xy = np.stack([box[L.X] + c * u - s * v, box[L.Y] + s * u + c * v], axis=-1)
        labels = raster.label_at(xy)
        assert (labels == RasterClass.OFF_ROAD).all(), (
            f"box {i} ({StaticKind(scene.kinds[i]).name}) near paint"
        )


@needs_shared
def test_every_light_row_has_a_head_facing_its_traffic_and_stop_rows_a_sign():
    backend, scene, _ = _world("generated:1")
    sig = backend.signals
    lamps = scene.boxes[scene.boxes[:, L.MAT] == L.MAT_SIGNAL_LAMP]
    lights = np.flatnonzero(np.asarray(sig.phase_of_row) >= 0)
    stops = np.flatnonzero(np.asarray(sig.phase_of_row) < 0)
    assert len(lights) and len(stops)
    assert scene.signal_rows == len(sig)
    heads = scene.boxes[(scene.kinds == StaticKind.SIGNAL) & (scene.boxes[:, L.MAT] == L.MAT_PLAIN)]
    for row in lights:
        mine = lamps[lamps[:, L.AUX] == row]
        # one head over the lane, and one across the junction where the lane goes straight on
        assert len(mine) in (3, 6)
        assert set(mine[:, L.AUX2].astype(int)) == {LightState.RED, LightState.YELLOW, LightState.GREEN}
        yaw = sig.stop_yaw_rad[row]
        fwd = np.array([math.cos(yaw), math.sin(yaw)])
        over = mine[np.hypot(*(mine[:, :2] - sig.stop_xy_m[row]).T) < 1.5]
        assert len(over) == 3  # the overhead head hangs at the stop line
        red = over[over[:, L.AUX2] == LightState.RED][0]
        green = over[over[:, L.AUX2] == LightState.GREEN][0]
        assert red[L.Z] > green[L.Z]  # red on top
        assert np.allclose(red[:2] @ fwd, green[:2] @ fwd)
        # the lamps sit on the face of their head that looks back at the approaching traffic
        housing = heads[np.hypot(*(heads[:, :2] - red[:2]).T) < 0.5]
        assert len(housing) >= 1
        assert (housing[:, :2] @ fwd > red[:2] @ fwd).all()
    assert scene.count(StaticKind.STOP_SIGN) == 4 * len(stops)  # pole and three plates


@needs_shared
def test_the_same_seed_places_the_same_structures():
    backend, scene, _ = _world(TOWN01)
    again = StaticScene.build(backend.road_map, backend.signals, seed=0)
    other = StaticScene.build(backend.road_map, backend.signals, seed=1)
    assert np.array_equal(again.boxes, scene.boxes) and np.array_equal(again.kinds, scene.kinds)
    assert not np.array_equal(
        other.boxes[other.kinds == StaticKind.BUILDING], scene.boxes[scene.kinds == StaticKind.BUILDING]
    )


# -- geometry -----------------------------------------------------------------------------------


def _ray_box_mask(cam: CameraSpec, centre_ego, half, z_lo: float) -> np.ndarray:
    """Pixels whose centre ray hits an axis-aligned ego-frame box (independent numpy slab test)."""
    rays = cam.rays_ego()
    o = np.array([cam.x_m, cam.y_m, cam.z_m])
    lo = np.array([centre_ego[0] - half[0], centre_ego[1] - half[1], z_lo])
    hi = np.array([centre_ego[0] + half[0], centre_ego[1] + half[1], z_lo + 2 * half[2]])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / rays, (hi - o) / rays
    tn = np.minimum(t1, t2).max(axis=-1)
    tf = np.maximum(t1, t2).min(axis=-1)
    return (tn <= tf) & (tn > 0)


@needs_shared
def test_a_box_ten_metres_ahead_covers_exactly_the_pixels_its_rays_hit():
    backend, scene, _ = _world(TOWN01)
    lane = next(iter(backend.road_map.lanes.values()))
    x, y, z = lane.xyz_m[len(lane.xyz_m) // 2]
    yaw = float(lane.yaw_rad[len(lane.xyz_m) // 2])
    ego = _ego(x, y, yaw, z)
    half = (0.6, 1.0, 1.4)  # a static obstacle: one box, plain orange
    ahead = _actors([(7, ActorType.STATIC, x + 10 * math.cos(yaw), y + 10 * math.sin(yaw), z, yaw, *half)])
    renderer = Renderer(scene, rig("front"), weather_preset("noon"))
    with_box = renderer.render(_state(ego, ahead, backend.state().signals))[0]
    without = renderer.render(_state(ego, Actors.empty(), backend.state().signals))[0]
    changed = (with_box != without).any(axis=-1)
    expect = _ray_box_mask(rig("front")[0], (10.0, 0.0), half, 0.0)
    assert expect.sum() > 300
    assert np.array_equal(changed, expect)
    # the face toward the camera is orange, lit by the noon sun
    centre = with_box[expect].astype(int)
    assert (centre[:, 0] > centre[:, 1]).all() and (centre[:, 1] > centre[:, 2]).all()


@needs_shared
def test_a_car_ten_metres_ahead_is_visible_in_its_id_colour():
    backend, scene, _ = _world(TOWN01)
    lane = next(iter(backend.road_map.lanes.values()))
    x, y, z = lane.xyz_m[len(lane.xyz_m) // 2]
    yaw = float(lane.yaw_rad[len(lane.xyz_m) // 2])
    car = _actors(
        [(4, ActorType.CAR, x + 10 * math.cos(yaw), y + 10 * math.sin(yaw), z, yaw, 2.3, 0.95, 0.75)]
    )
    img = Renderer(scene, rig("front"), weather_preset("noon")).render(
        _state(_ego(x, y, yaw, z), car, backend.state().signals)
    )[0]
    packed = pack_states([_state(_ego(x, y, yaw, z), car, backend.state().signals)], scene.signal_rows)
    body = packed.actors[1]
    assert any(np.array_equal(body[[L.R, L.G, L.B]], c) for c in CAR_RGB)
    assert len(packed.actors) == 7  # wheels, body, cabin, two head and two tail lights
    _save(img, LOOK / "car_10m_ahead.png")
    middle = img[40:56, 70:90].reshape(-1, 3).astype(int)
    # the car's back (lit body colour) fills the middle of the picture: not the road's grey
    assert np.abs(middle - middle.mean(axis=0)).max() < 120
    assert not np.allclose(middle.mean(axis=0), img[78, 80].astype(int), atol=10)


# -- determinism and batches ----------------------------------------------------------------------


@needs_shared
def test_the_same_state_renders_bit_for_bit_and_batches_match_single_frames():
    backend, scene, state = _world(TOWN01)
    renderer = Renderer(scene, rig("front3"), weather_preset("rain"))
    first = renderer.render(state)
    again = Renderer(
        StaticScene.build(backend.road_map, backend.signals, seed=0), rig("front3"), weather_preset("rain")
    ).render(state)
    assert first.dtype == np.uint8 and first.shape == (3, 80, 160, 3)
    assert np.array_equal(first, again)
    near = _approach(backend, scene, state)
    batch = renderer.render_batch([state, near, state])
    assert batch.shape == (3, 3, 80, 160, 3)
    assert np.array_equal(batch[0], first) and np.array_equal(batch[2], first)
    assert np.array_equal(batch[1], renderer.render(near))


def _claimed_all(workers, n: int) -> bool:
    """Wait (10 s at most) until the render threads have taken ``n`` slots this round."""
    deadline = time.monotonic() + 10.0
    while workers.claimed < n and time.monotonic() < deadline:
        time.sleep(0.001)
    return workers.claimed == n


@needs_shared
@pytest.mark.skipif(not workers_available(), reason="render workers need POSIX semaphores (Linux)")
@pytest.mark.parametrize("threads", [1, 2])
def test_render_workers_draw_what_one_batched_call_draws(threads):
    """Slots drawn by the render threads, by the caller at collect() and by the caller for a
    state too big for a slot: the same images as one batched call, round after round."""
    backend, scene, state = _world(TOWN01)
    renderer = Renderer(scene, rig("front3"), weather_preset("night"))
    near = _approach(backend, scene, state)
    e = near.ego
    few = _state(
        e, _actors([(3, ActorType.CAR, e.x_m + 9.0, e.y_m, e.z_m, 0.0, 2.2, 1.0, 0.8)]), state.signals
    )
    a, half = near.actors, slice(0, len(near.actors.id) // 2)
    fewer = _state(
        e,
        Actors(
            a.id[half],
            a.type[half],
            a.xyz_m[half],
            a.yaw_rad[half],
            a.half_extent_m[half],
            a.velocity_mps[half],
        ),
        state.signals,
    )
    states = [few, state, fewer, few, near]  # the traffic states do not fit a slot
    expected = renderer.render_batch(states)
    room = len(pack_states([fewer], scene.signal_rows).actors)
    workers = RenderWorkers(renderer, 5, threads, box_capacity=room)
    try:
        for wait in (True, False, True):
            workers.begin()
            for k, s in enumerate(states):
                if workers.add(k, s) > room:
                    workers.skip(k)[:] = renderer.render_batch([s])
            if wait:  # the render threads take every slot (skipped ones they pass over)
                assert _claimed_all(workers, len(states))
            assert np.array_equal(workers.collect(), expected)
        workers.begin()  # a round left unfinished (a world raised) is collected by the next
        workers.add(0, near)
        workers.begin()
        with pytest.raises(RuntimeError, match="add slot 0 next"):
            workers.add(1, near)
    finally:
        workers.close()
    assert not workers.alive


@needs_shared
@pytest.mark.skipif(not workers_available(), reason="render workers need POSIX semaphores (Linux)")
def test_a_render_thread_error_reaches_collect(monkeypatch):
    import sim.render.workers as workers_module

    serve = workers_module.serve_slots

    def broken(*args):
        if args[-1]:  # a render thread's loop
            raise MemoryError("out of memory in the camera kernel")
        return serve(*args)

    monkeypatch.setattr(workers_module, "serve_slots", broken)
    _, scene, state = _world(TOWN01)
    workers = RenderWorkers(Renderer(scene, rig("front"), weather_preset("noon")), 2, 1, box_capacity=4096)
    for thread in workers._threads:
        thread.join(timeout=10)
    workers.begin()
    workers.add(0, state)
    workers.add(1, state)
    with pytest.raises(MemoryError, match="camera kernel"):
        workers.collect()
    workers.close()


@needs_shared
def test_actors_of_an_unknown_type_are_refused():
    _, scene, state = _world(TOWN01)
    e = state.ego
    odd = _state(e, _actors([(3, 99, e.x_m + 9.0, e.y_m, e.z_m, 0.0, 2.2, 1.0, 0.8)]), state.signals)
    renderer = Renderer(scene, rig("front"), weather_preset("noon"))
    with pytest.raises(ConfigError, match="ActorType values"):
        renderer.render(odd)
    if workers_available():
        workers = RenderWorkers(renderer, 1, 1, box_capacity=64)
        try:
            workers.begin()
            with pytest.raises(ConfigError, match="ActorType values"):
                workers.add(0, odd)
        finally:
            workers.close()


@needs_shared
def test_states_with_the_wrong_signal_rows_are_refused():
    backend, scene, state = _world(TOWN01)
    bad = WorldState(0, 0.0, state.ego, state.actors, SignalStates.empty())
    with pytest.raises(ConfigError, match="signal rows"):
        Renderer(scene, rig("front"), weather_preset("noon")).render(bad)


# -- pictures ---------------------------------------------------------------------------------------


def _check_picture(img: np.ndarray, renderer: Renderer) -> None:
    """Not blank: many colours, sky at the top, grey road at the bottom."""
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours >= 40, f"only {colours} colours"
    h, w = img.shape[:2]
    sky = np.floor(renderer.tables.background[0].reshape(h, w, 3) + 0.5)
    top = np.abs(img[:2].astype(int) - sky[:2]).max(axis=-1) <= 3
    assert top.mean() > 0.3, f"only {top.mean():.0%} of the top rows show sky"
    bottom = img[-4:, w // 4 : 3 * w // 4].reshape(-1, 3).astype(int)
    assert np.abs(bottom - sky[-4:, w // 4 : 3 * w // 4].reshape(-1, 3)).max(axis=1).mean() > 10
    if not renderer.weather.headlights:
        assert (bottom.max(axis=1) - bottom.min(axis=1)).mean() < 40  # asphalt and paint are grey


@needs_shared
@pytest.mark.parametrize("map_spec", [TOWN01, "generated:1"])
def test_pictures_of_every_rig_and_weather(map_spec, tmp_path):
    backend, scene, state = _world(map_spec)
    junction = _approach(backend, scene, state)
    name = Path(map_spec).stem if map_spec.endswith(".xodr") else map_spec.replace(":", "")
    for rig_name in RIG_NAMES:
        for weather in WEATHER_NAMES:
            renderer = Renderer(scene, rig(rig_name, width_px=160, height_px=80), weather_preset(weather))
            imgs = renderer.render(junction)
            assert imgs.shape == (len(renderer.cams), 80, 160, 3)
            if rig_name == "front":
                _check_picture(imgs[0], renderer)
            picture = _mosaic(imgs)
            _save(picture, tmp_path / f"{name}_{rig_name}_{weather}.png")
            _save(picture, LOOK / f"{name}_{rig_name}_{weather}.png")
    big = Renderer(scene, rig("front", width_px=640, height_px=320), weather_preset("noon")).render(junction)
    _save(big[0], LOOK / f"{name}_front_noon_640.png")
    road = big[0][-20:, 280:360].reshape(-1, 3).astype(int)
    assert (road.max(axis=1) - road.min(axis=1)).mean() < 25  # grey asphalt and white paint below the car


@needs_shared
@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("weather", ["noon", "night"])
def test_the_torch_path_agrees_with_the_numba_path(weather, device):
    """float32 tensors against float64 loops: a ground sample within ~1e-5 m of a texel edge, or
    a ray grazing a box edge, may land on the other side; everything else is equal. The same
    torch code runs on a CUDA GPU where there is one."""
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine (torch.cuda.is_available() is False)")
    backend, scene, state = _world(TOWN01)
    states = [state, _approach(backend, scene, state), _approach(backend, scene, state, 12.0)]
    cams = rig("front3")
    fast = Renderer(scene, cams, weather_preset(weather)).render_batch(states)
    ours = Renderer(scene, cams, weather_preset(weather), device=device, backend="torch").render_batch(states)
    assert ours.shape == fast.shape and ours.dtype == np.uint8
    diff = np.abs(fast.astype(int) - ours.astype(int)).max(axis=-1)
    assert (diff <= 2).mean() >= 0.999, f"{(diff <= 2).mean():.5f} of pixels within 2"
    assert (diff == 0).mean() >= 0.99


def test_bench_config_rejects_nonsense():
    from sim.render.bench import RenderBenchConfig

    with pytest.raises(ConfigError):
        RenderBenchConfig(frames=0)
    with pytest.raises(ConfigError):
        RenderBenchConfig(batches=())
    with pytest.raises(ConfigError):
        RenderBenchConfig(vehicles=-1)
