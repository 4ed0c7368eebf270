"""``loopdrive bench render``: frames per second of the camera renderer, as JSON.

``register(parser)`` adds the options to the parser it is given (the CLI wires it
under ``bench``); the work is :func:`sim.render.bench.run_bench`.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "run"]


def register(parser: argparse.ArgumentParser) -> None:
    from sim.render.bench import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.render.bench import config_from_args, run_bench

    print(json.dumps(run_bench(config_from_args(args)), indent=1))
    return 0
