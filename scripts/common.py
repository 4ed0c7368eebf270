"""Small helpers shared by the subcommands."""

from __future__ import annotations

import argparse

MAP_HELP = "an OpenDRIVE .xodr file, an OpenStreetMap .osm extract, or generated:SEED for a procedural town"


def add_map_argument(parser: argparse.ArgumentParser, *, flag: bool = False, nargs=None) -> None:
    """The MAP argument every map-taking command shares (positional, or ``--map``)."""
    if flag:
        parser.add_argument("--map", required=True, metavar="MAP", help=MAP_HELP)
    else:
        parser.add_argument("map", metavar="MAP", nargs=nargs, help=MAP_HELP)


def default_bench_map() -> str:
    """The benchmarks' map: CARLA's Town03 from the shared folder (``$LOOPDRIVE_SHARED``,
    else ``../shared``) when present, else ``generated:0``."""
    from sim.maps import shared_dir

    town03 = shared_dir() / "maps" / "carla" / "Town03.xodr"
    return str(town03) if town03.is_file() else "generated:0"


def print_bench(result: dict) -> None:
    """Print a benchmark's JSON with the machine's 1-minute load average at its end:
    figures taken beside other work are lower, and this says so."""
    import json
    import os

    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
