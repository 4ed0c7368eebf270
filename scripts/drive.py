"""``loopdrive drive``: drive in a pygame window; demonstrate, take over, or shadow a policy.

Modes: ``manual`` (you drive: a demonstration), ``copilot`` (the policy drives; any
control input of yours takes over at once, logged as an intervention with your
actions, until the hand-back key), ``shadow`` (you drive, the policy predicts silently,
disagreements are counted). ``--record STORE`` writes every episode to the episode
store.

Keys (change them in a TOML or YAML ``--controls`` file): arrows or WASD drive
(steering and pedals ramp smoothly), space brakes, Enter or B hands back, P pauses,
R restarts the episode, C switches the camera view, H toggles the HUD, Esc or Q quits.
A game pad or wheel works through pygame's joystick API and may be plugged in and
out while driving.

Headless (``SDL_VIDEODRIVER=dummy``): ``--max-steps N --screenshot shot.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.backend_args import add_backend_args, env_overrides
from scripts.common import MAP_HELP
from scripts.config_args import add_config_arguments, config_from_args
from scripts.policies import POLICY_HELP, make_policy, policy_id
from sim.errors import LoopdriveError
from sim.scenario import TrafficConfig

__all__ = ["register", "DEFAULT_CONTROLS"]

#: the controls file read when ``--controls`` is not given (absent: the default keys)
DEFAULT_CONTROLS = Path("~/.config/loopdrive/controls.toml")


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    source = parser.add_argument_group("what to drive (default: a random route on generated:0)")
    source.add_argument("--scenario", default=None, help="a scenario of the library (name or file)")
    source.add_argument("--map", default=None, metavar="MAP", help=MAP_HELP)
    source.add_argument("--routes", default=None, metavar="R", help="a CARLA Leaderboard route file")
    source.add_argument("--route-id", default=None, metavar="N", help="the route of --routes to drive")
    source.add_argument(
        "--length", type=float, default=800.0, metavar="M", help="random route length (m) without --routes"
    )
    source.add_argument("--seed", type=int, default=None, help="seed of the first episode")
    parser.add_argument("--policy", default="autopilot", help=f"{POLICY_HELP} (default: autopilot)")
    parser.add_argument("--mode", choices=("manual", "copilot", "shadow"), default="manual")
    parser.add_argument("--record", type=Path, default=None, metavar="STORE", help="episode store folder")
    parser.add_argument(
        "--controls",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"keys, joystick and ramps (TOML or YAML; default: {DEFAULT_CONTROLS} if it exists)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="real-time factor (default 1: 20 Hz)")
    pace.add_argument("--fast", action="store_true", help="as fast as it computes, no pacing")
    view = parser.add_argument_group("cameras and window")
    view.add_argument("--rig", default="front", help="camera rig: front, front3, surround8 (default front)")
    view.add_argument(
        "--camera-width", type=int, default=None, metavar="PX", help="default: a checkpoint's, else 320"
    )
    view.add_argument(
        "--camera-height", type=int, default=None, metavar="PX", help="default: a checkpoint's, else 160"
    )
    view.add_argument("--weather", default="noon", help="the cameras' weather preset")
    view.add_argument("--window-width", type=int, default=1280, metavar="PX", help="at least this wide")
    headless = parser.add_argument_group("ending on its own (0: no limit)")
    headless.add_argument("--episodes", type=int, default=0, help="stop after this many episodes")
    headless.add_argument("--max-steps", type=int, default=0, help="stop after this many steps")
    headless.add_argument("--screenshot", type=Path, default=None, help="save the window here at the end")
    add_config_arguments(parser, TrafficConfig)
    add_backend_args(parser)
    parser.set_defaults(func=run)


def _env_config(args: argparse.Namespace):
    from envs.config import DrivingEnvConfig

    cameras = {
        "rig": args.rig,
        "camera_width_px": args.camera_width,
        "camera_height_px": args.camera_height,
        "weather": args.weather,
        "seed": args.seed,
        **env_overrides(args),
    }
    if args.scenario is not None:
        if args.map or args.routes or args.route_id:
            raise LoopdriveError("--scenario names the map and route: drop --map, --routes and --route-id")
        try:
            from sim.scenarios import load_scenario
        except ImportError:
            raise LoopdriveError(
                "--scenario needs the scenario library (sim.scenarios), absent in this version; "
                "use --map MAP [--routes R --route-id N]"
            ) from None
        scenario = load_scenario(args.scenario)
        return DrivingEnvConfig(map=scenario.map, scenario=scenario, **cameras)
    if args.route_id is not None and args.routes is None:
        raise LoopdriveError("--route-id needs --routes (a Leaderboard route file)")
    if args.routes is not None and args.map is None:
        raise LoopdriveError("--routes needs --map (the town its routes run on)")
    traffic = config_from_args(TrafficConfig, args)
    return DrivingEnvConfig(
        map=args.map or "generated:0",
        routes_file=str(args.routes) if args.routes else "",
        route_ids=(args.route_id,) if args.route_id is not None else (),
        route_length_m=(args.length, args.length),
        traffic=traffic,
        **cameras,
    )


def _controls(path: Path | None):
    from envs.interactive import load_controls

    if path is None:
        default = DEFAULT_CONTROLS.expanduser()
        return load_controls(default if default.exists() else None)
    return load_controls(path)


def _camera_size_for(policy, args: argparse.Namespace) -> None:
    """Cameras of the size a checkpoint was trained on unless the command line says otherwise
    (a larger picture for a person, 320x160, with the autopilot or a random policy)."""
    layout = getattr(policy, "layout", None)
    if args.camera_width is None:
        args.camera_width = layout.camera_width_px if layout is not None else 320
    if args.camera_height is None:
        args.camera_height = layout.camera_height_px if layout is not None else 160


def run(args: argparse.Namespace) -> int:
    from envs.interactive import DriveConfig, DriveSession, build_drive_env

    drive = DriveConfig(
        mode=args.mode,
        speed=0.0 if args.fast else args.speed,
        episodes=args.episodes,
        max_steps=args.max_steps,
        window_width_px=args.window_width,
        seed=args.seed,
    )
    if args.screenshot is not None and args.screenshot.suffix.lower() not in (".png", ".bmp", ".jpg"):
        raise LoopdriveError(f"--screenshot {args.screenshot}: give a .png, .bmp or .jpg file name")
    policy = make_policy(args.policy, args.seed or 0)  # the one policy lookup of the commands
    _camera_size_for(policy, args)
    name = policy_id(args.policy)
    controls, messages = _controls(args.controls)
    stack = build_drive_env(
        _env_config(args),
        drive.mode,
        policy,
        policy_id=name,
        record=args.record,
        shadow_thresholds=(drive.shadow_steer, drive.shadow_accel),
    )
    try:
        session = DriveSession(
            stack.env,
            policy,
            policy_name=name,
            config=drive,
            controls=controls,
            takeover=stack.takeover,
        )
    except BaseException:
        stack.env.close()
        raise
    for text in messages:
        session.say(text)
    try:
        session.start()
        summary = session.run()
        if args.screenshot is not None:
            print(f"wrote {session.screenshot(args.screenshot)}")
    finally:
        session.close()
    print(
        f"drove {summary.steps} steps, {summary.episodes} episodes ended, "
        f"{summary.interventions} interventions, {summary.disagreements} disagreements, "
        f"{len(summary.infractions)} infractions"
    )
    return 0
