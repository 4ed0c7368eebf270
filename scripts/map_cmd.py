"""``loopdrive map``: show, generate and check maps."""

from __future__ import annotations

import argparse
import importlib

ACTIONS = {
    "show": ("scripts.map_show", "write a top-down picture of a map, with a planned route if asked"),
    "generate": ("scripts.map_generate", "write a procedural town as OpenDRIVE"),
    "check": ("scripts.map_check", "load, raster and report on maps"),
}


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="map_command", metavar="ACTION")
    sub.required = True
    for name, (module, help_text) in ACTIONS.items():
        importlib.import_module(module).register(sub.add_parser(name, help=help_text, description=help_text))
