"""The ``loopdrive`` command: one entry point, one subcommand per job.

Each subcommand lives in its own module under :mod:`scripts` and exposes
``register(subparsers)``; the modules are imported only when the command line asks
for them, so ``loopdrive --help`` stays fast. User mistakes (a missing file, a bad
value) end with one ``loopdrive: error: ...`` line and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sim.errors import LoopdriveError

__all__ = ["main", "build_parser"]

#: subcommand -> (module under scripts/, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("scripts.demo", "the main job: a town, a route, the policy driving a scenario under takeover"),
    "map": ("scripts.map_cmd", "show, generate and check OpenDRIVE maps"),
    "route": ("scripts.route_cmd", "plan CARLA Leaderboard routes on a map"),
    "scenarios": (
        "scripts.scenarios_cmd",
        "the scenario library: list, show, check and run scenarios and suites",
    ),
    "evaluate": ("scripts.evaluate", "drive a policy closed-loop on routes and score it (Leaderboard)"),
    "bench": ("scripts.bench", "measure simulator speed"),
    "drive": ("scripts.drive", "drive in a pygame window: demonstrate, take over a policy, shadow it"),
    "run": ("scripts.run_cmd", "drive scenario episodes with a policy (and takeovers) and record them"),
    "store": ("scripts.store_cmd", "what an episode store holds: episodes, interventions by trigger"),
    "replay": (
        "scripts.replay_cmd",
        "re-simulate a stored episode: verify it, film it, drive on from a step",
    ),
    "collect": ("scripts.collect_cmd", "drive the autopilot with perturbations and record labelled frames"),
    "train": ("scripts.train_cmd", "train the policy: bc, dagger or ppo"),
    "export": ("scripts.export_cmd", "export a checkpoint to ONNX, checked with onnxruntime"),
}

EXIT_USAGE = 2


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopdrive",
        description="Closed-loop driving simulator for end-to-end policies.",
        epilog="Run 'loopdrive COMMAND --help' for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = _wanted_command(argv)
    for name, (module, help_text) in COMMANDS.items():
        if wanted is None or wanted == name:
            importlib.import_module(module).register(
                sub.add_parser(name, help=help_text, description=help_text)
            )
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _wanted_command(argv: list[str] | None) -> str | None:
    for arg in argv or []:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LoopdriveError as exc:
        print(f"loopdrive: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("loopdrive: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
