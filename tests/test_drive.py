"""Interactive driving: controls, the window, the drive loop in its modes, the CLI.

Everything runs in real pygame under SDL's dummy video driver; input reaches the
loop as events posted to pygame's real event queue (``pygame.event.post``).
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from envs.config import DrivingEnvConfig  # noqa: E402
from envs.drivers import AutopilotPolicy, RandomPolicy  # noqa: E402
from envs.interactive import (  # noqa: E402
    Command,
    ControlsConfig,
    DriveConfig,
    DriveSession,
    InputDevices,
    build_drive_env,
    load_controls,
)
from envs.interactive.controls import AxisConfig, RampConfig  # noqa: E402
from envs.interactive.session import Pacer  # noqa: E402
from envs.world import SharedAssets  # noqa: E402
from scripts.cli import main  # noqa: E402
from sim.scenario import TrafficConfig  # noqa: E402

DT = 0.05
ASSETS = SharedAssets()  # one map build for the whole module


def _config(**changes) -> DrivingEnvConfig:
    base = DrivingEnvConfig(
        map="generated:0",
        route_length_m=(400.0, 400.0),
        camera_width_px=96,
        camera_height_px=48,
        traffic=TrafficConfig(vehicle_count=4, walker_count=2),
        seed=5,
    )
    return base.replace(**changes)


def _key(key: int, down: bool = True) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN if down else pygame.KEYUP, key=key, mod=0))


def _press(key: int) -> None:
    _key(key, True)
    _key(key, False)


@pytest.fixture
def pg():
    pygame.display.init()
    pygame.event.clear()
    yield pygame
    pygame.display.quit()


@pytest.fixture
def messages():
    return []


def _devices(pg, messages, config: ControlsConfig | None = None) -> InputDevices:
    return InputDevices(config or ControlsConfig(), pg, messages.append)


def _session(
    mode="manual", policy=None, *, messages=None, controls=None, record=None, **env_changes
) -> DriveSession:
    policy = policy or AutopilotPolicy()
    name = type(policy).__name__
    stack = build_drive_env(
        _config(**env_changes), mode, policy, policy_id=name, record=record, assets=ASSETS
    )
    say = messages.append if messages is not None else (lambda text: None)
    session = DriveSession(
        stack.env,
        policy,
        policy_name=name,
        config=DriveConfig(mode=mode, speed=0.0, window_width_px=640),
        controls=controls,
        takeover=stack.takeover,
        say=say,
    )
    session.start()
    return session


# -- controls ---------------------------------------------------------------------------


def test_keyboard_steering_and_pedals_ramp_instead_of_jumping(pg, messages):
    devices = _devices(pg, messages)
    ramps = RampConfig()
    _key(pygame.K_LEFT)
    frame = devices.poll(pygame.event.get())
    assert frame.touched_by == "keyboard" and frame.commands == []
    steer = [float(devices.update(DT)[0]) for _ in range(10)]
    step = ramps.steer_rate_per_s * DT
    assert steer[0] == pytest.approx(-step)
    assert np.allclose(np.diff(steer[:7]), -step)  # a steady ramp ...
    assert steer[-1] == -1.0  # ... to full lock, no further
    _key(pygame.K_LEFT, False)
    devices.poll(pygame.event.get())
    back = [float(devices.update(DT)[0]) for _ in range(6)]
    assert back[0] == pytest.approx(-1.0 + ramps.steer_return_per_s * DT)  # returns to the centre
    assert back[-1] == 0.0
    _key(pygame.K_w)  # WASD too
    devices.poll(pygame.event.get())
    accel = [float(devices.update(DT)[1]) for _ in range(3)]
    assert accel == pytest.approx([0.1, 0.2, 0.3])
    _key(pygame.K_w, False)
    _key(pygame.K_SPACE)  # brake
    devices.poll(pygame.event.get())
    assert float(devices.update(DT)[1]) < 0.3 - ramps.throttle_release_per_s * DT + 1e-6


def test_command_keys_map_to_commands(pg, messages):
    devices = _devices(pg, messages)
    for key in (pygame.K_p, pygame.K_r, pygame.K_c, pygame.K_h, pygame.K_RETURN, pygame.K_ESCAPE):
        _press(key)
    frame = devices.poll(pygame.event.get())
    assert frame.commands == [
        Command.PAUSE,
        Command.RESTART,
        Command.CAMERA,
        Command.HUD,
        Command.HAND_BACK,
        Command.QUIT,
    ]
    assert frame.touched_by == ""  # commands are not control input


def test_missing_controls_file_is_a_message_and_the_defaults(tmp_path):
    config, messages = load_controls(tmp_path / "nope.toml")
    assert config == ControlsConfig()
    assert len(messages) == 1 and "nope.toml not found" in messages[0] and "default keys" in messages[0]


def test_bad_controls_files_name_the_problem_and_keep_the_defaults(tmp_path):
    path = tmp_path / "controls.toml"
    path.write_text("[keys\nsteer_left = 1")
    config, messages = load_controls(path)
    assert config == ControlsConfig() and "is not valid TOML" in messages[0]
    path.write_text(
        "[keys]\nsteer_left = ['j']\njump = ['x']\nbrake = 3\n"
        "[joystick]\nsteer = { axis = 1, invert = true }\nthrottle = { axis = 'x' }\n"
        "buttons = { pause = 4, fly = 1 }\n[ramps]\nsteer_rate_per_s = -1\n[sound]\nvolume = 3\n"
    )
    config, messages = load_controls(path)
    text = "\n".join(messages)
    assert config.keys["steer_left"] == ("j",)
    assert config.keys["brake"] == ("down", "s", "space")  # a bad value keeps the default
    assert "unknown action 'jump'" in text and "brake must be a key name" in text
    assert config.joystick.steer == AxisConfig(axis=1, invert=True)
    assert config.joystick.throttle.axis == 5 and "throttle: axis must be an integer" in text
    assert config.joystick.buttons["pause"] == 4 and "unknown command 'fly'" in text
    assert config.ramps == RampConfig() and "steer_rate_per_s must be > 0" in text
    assert "unknown section [sound]" in text
    assert len(messages) == 6


def test_yaml_controls_file(tmp_path):
    path = tmp_path / "controls.yaml"
    path.write_text("keys:\n  hand_back: [tab]\njoystick:\n  brake: {axis: 3, rest: 1}\n")
    config, messages = load_controls(path)
    assert messages == []
    assert config.keys["hand_back"] == ("tab",) and config.joystick.brake == AxisConfig(axis=3, rest=1)


def test_unknown_key_name_is_a_message_and_the_default_drives(pg, messages):
    config = ControlsConfig(
        keys={**ControlsConfig().keys, "steer_left": ("leftish",), "pause": ("p", "f13x")}
    )
    devices = _devices(pg, messages, config)
    assert any(
        "unknown key name 'leftish' for steer_left" in m and "default (left, a)" in m for m in messages
    )
    assert any("'f13x' for pause" in m and "keeping the others" in m for m in messages)
    _key(pygame.K_LEFT)  # the default binding still steers
    _press(pygame.K_p)
    frame = devices.poll(pygame.event.get())
    assert frame.touched_by == "keyboard" and frame.commands == [Command.PAUSE]
    assert devices.update(DT)[0] < 0


def test_axis_mapping_sticks_and_pedals():
    stick = AxisConfig(axis=0, deadzone=0.1)
    assert stick.value(0.05) == 0.0 and stick.value(1.0) == 1.0 and stick.value(-0.55) == pytest.approx(-0.5)
    assert AxisConfig(axis=0, invert=True, deadzone=0.0).value(0.4) == pytest.approx(-0.4)
    trigger = AxisConfig(axis=5, rest=-1.0, deadzone=0.0)  # -1 released, +1 pressed
    assert trigger.value(-1.0) == 0.0 and trigger.value(0.0) == 0.5 and trigger.value(1.0) == 1.0
    pedal = AxisConfig(axis=2, rest=1.0, deadzone=0.0)  # +1 released
    assert pedal.value(1.0) == 0.0 and pedal.value(-1.0) == 1.0
    with pytest.raises(ValueError, match="rest must be"):
        AxisConfig(rest=0.5)


def test_joystick_unplugged_mid_drive_falls_back_to_the_keyboard(pg, messages):
    devices = _devices(pg, messages)
    pygame.event.post(pygame.event.Event(pygame.JOYDEVICEADDED, device_index=7))  # no such device here
    pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, instance_id=3, axis=0, value=0.8))
    pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, instance_id=3, axis=5, value=0.0))
    frame = devices.poll(pygame.event.get())
    assert any("joystick 7 could not be opened" in m for m in messages)
    assert frame.touched_by == "joystick"
    action = devices.update(DT)
    assert action[0] == pytest.approx((0.8 - 0.05) / 0.95) and action[1] == pytest.approx((0.5 - 0.05) / 0.95)
    pygame.event.post(pygame.event.Event(pygame.JOYDEVICEREMOVED, instance_id=3))
    devices.poll(pygame.event.get())
    assert any("unplugged; driving goes on with the keyboard" in m for m in messages)
    after = devices.update(DT)
    # the keyboard's steering ramp starts where the joystick left off and returns to the centre
    assert after[0] == pytest.approx(action[0] - RampConfig().steer_return_per_s * DT)
    assert after[1] == 0.0
    _key(pygame.K_RIGHT)
    assert devices.poll(pygame.event.get()).touched_by == "keyboard"
    assert devices.update(DT)[0] > after[0]


def test_pacer_holds_the_period():
    pacer = Pacer(0.01)
    t0 = time.perf_counter()
    for _ in range(11):
        pacer.wait()
    assert time.perf_counter() - t0 >= 0.095
    t0 = time.perf_counter()
    for _ in range(100):
        Pacer(0.0).wait()
    assert time.perf_counter() - t0 < 0.05


# -- the drive loop -----------------------------------------------------------------------


def test_manual_drive_keys_pause_restart_views_hud_and_screenshot(tmp_path):
    messages = []
    session = _session("manual", messages=messages, rig="front3")
    try:
        assert session.driver == "human"
        _key(pygame.K_UP)
        for _ in range(30):
            assert session.tick()
        speed = float(session._obs["speed"][0])
        assert speed > 1.0  # the person's throttle moved the car
        seed, ticks = session._info["episode_seed"], session._info["state"].tick
        _press(pygame.K_p)
        for _ in range(3):
            session.tick()
        assert session.paused and session._info["state"].tick == ticks  # paused: no steps
        shot = session.screenshot(tmp_path / "paused.png")
        shown = session.frame()  # paused: the same picture the window holds
        _press(pygame.K_p)
        _press(pygame.K_c)
        session.tick()
        assert not session.paused and session.view == 1 and session._info["state"].tick == ticks + 1
        _press(pygame.K_h)
        session.tick()
        assert not session.show_hud
        _key(pygame.K_UP, False)
        _press(pygame.K_r)
        session.tick()
        assert session._info["episode_seed"] == seed and session._info["state"].tick == 1  # restarted
        assert "restarted the episode" in messages
        _press(pygame.K_ESCAPE)
        assert not session.tick()
    finally:
        session.close()
    image = pygame.image.load(str(shot))
    pixels = pygame.surfarray.array3d(image)
    assert image.get_width() >= 640
    assert np.array_equal(pixels.transpose(1, 0, 2), shown)  # the window shows the frame, pixel for pixel
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank


def _drive_script(session: DriveSession, script: dict[int, list[tuple[int, bool]]], start: int, stop: int):
    """Ticks ``start .. stop - 1``, posting ``script[k]``'s key events (key, down) before tick ``k``."""
    for k in range(start, stop):
        for key, down in script.get(k, []):
            _key(key, down)
        if not session.tick():
            return


def test_copilot_takeover_steer_hand_back_and_the_store_holds_the_intervention(tmp_path):
    import pyarrow.parquet as pq

    from envs.catalog import Catalog

    store = tmp_path / "store"
    session = _session("copilot", AutopilotPolicy(), record=store)
    take, release, back = 10, 22, 30
    script = {
        take: [(pygame.K_LEFT, True)],  # any control input takes over at once
        release: [(pygame.K_LEFT, False)],
        back: [(pygame.K_RETURN, True), (pygame.K_RETURN, False)],  # the hand-back key
        45: [(pygame.K_ESCAPE, True)],
    }
    try:
        _drive_script(session, script, 0, take + 5)
        assert session.driver == "human" and session.interventions == 1
        shot = session.screenshot(tmp_path / "copilot.png")
        _drive_script(session, script, take + 5, 60)
        assert session.driver == "policy" and session.summary.interventions == 1
    finally:
        session.close()
    pixels = pygame.surfarray.array3d(pygame.image.load(str(shot)))
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank

    catalog = Catalog.scan(store)
    assert len(catalog) == 1 and not catalog.problems
    (event,) = catalog.interventions()
    found = (event["trigger"], event["driver"], event["step"], event["end_step"])
    assert found == ("keyboard", "human", take, back)
    (path,) = sorted(store.glob("*.parquet"))
    rows = pq.read_table(path, columns=["step", "driver", "intervention", "executed_action", "policy_action"])
    rows = rows.to_pylist()
    human = [r for r in rows if r["driver"] == "human"]
    assert [r["step"] for r in human] == list(range(take, back))
    assert rows[take]["intervention"] == "keyboard"
    steer = np.array([r["executed_action"][0] for r in human])
    held = steer[: release - take]
    # the person's left steering: ramping from where the policy steered (no jump) to full lock
    assert abs(held[0] - rows[take - 1]["executed_action"][0]) <= RampConfig().steer_rate_per_s * DT + 1e-6
    assert np.all(np.diff(held) <= 0) and held[-1] == -1.0
    assert np.all(np.diff(steer[release - take :]) >= 0)  # released: back towards the centre
    policy_steer = np.array([r["policy_action"][0] for r in human])
    assert np.abs(steer - policy_steer).max() > 0.5  # the store keeps the person's, not the policy's
    after = [r for r in rows[back:] if r["driver"] is not None]
    assert after and all(
        r["driver"] == "policy" and r["executed_action"] == r["policy_action"] for r in after
    )


def test_shadow_mode_the_person_drives_and_disagreements_count():
    session = _session("shadow", AutopilotPolicy())
    try:
        for _ in range(5):  # the autopilot wants to drive off, the person does not
            session.tick()
        assert session.driver == "human" and session.disagreements == 1  # counted where it starts
        assert float(session._obs["speed"][0]) < 0.5
    finally:
        session.close()


def test_a_drive_goes_on_with_the_keyboard_after_a_bad_key_and_an_unplugged_joystick():
    messages = []
    keys = {**ControlsConfig().keys, "throttle": ("gaspedal", "up")}
    session = _session("manual", messages=messages, controls=ControlsConfig(keys=keys))
    try:
        assert any("unknown key name 'gaspedal' for throttle" in m for m in messages)
        pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, instance_id=0, axis=0, value=-1.0))
        pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, instance_id=0, axis=5, value=1.0))
        for _ in range(20):
            assert session.tick()
        steer_rad = session._info["state"].ego.steer_rad
        assert float(session._obs["speed"][0]) > 1.0 and steer_rad < 0  # the joystick drove, left
        pygame.event.post(pygame.event.Event(pygame.JOYDEVICEREMOVED, instance_id=0))
        _key(pygame.K_UP)  # the keyboard drives on
        _key(pygame.K_RIGHT)
        for _ in range(20):
            assert session.tick()
        assert any("unplugged; driving goes on with the keyboard" in m for m in messages)
        assert session._info["state"].ego.steer_rad > 0 and float(session._obs["speed"][0]) > 2.0
        assert any("unplugged" in line for line in session._hud().messages)  # on the HUD too
    finally:
        session.close()


def test_hand_back_outside_copilot_says_why(tmp_path):
    messages = []
    session = _session("manual", RandomPolicy(1), messages=messages)
    try:
        _press(pygame.K_RETURN)
        session.tick()
        assert any("nothing to hand back in manual mode" in m for m in messages)
    finally:
        session.close()


# -- the command line ------------------------------------------------------------------------


def test_cli_drive_headless_writes_a_screenshot(tmp_path, capsys):
    shot = tmp_path / "shot.png"
    args = ["drive", "--map", "generated:0", "--length", "300", "--mode", "manual", "--fast"]
    args += ["--max-steps", "5", "--camera-width", "96", "--camera-height", "48", "--window-width", "640"]
    args += ["--vehicle-count", "2", "--walker-count", "0", "--controls", str(tmp_path / "none.toml")]
    assert main([*args, "--screenshot", str(shot)]) == 0
    out = capsys.readouterr()
    assert shot.exists() and "drove 5 steps" in out.out
    assert "none.toml not found" in out.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--route-id", "3"], "--route-id needs --routes"),
        (["--routes", "r.xml"], "--routes needs --map"),
        (["--policy", "nothing.pt"], "--policy nothing.pt: no such checkpoint file"),
        (["--policy", "bogus"], "--policy 'bogus': unknown policy"),
        (["--speed", "-1"], "drive speed must be >= 0"),
        (["--scenario", "x", "--map", "generated:1"], "--scenario names the map"),
    ],
)
def test_cli_drive_mistakes_are_one_line(args, message, capsys):
    assert main(["drive", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopdrive: error: ") and message in err and err.count("\n") == 1
