"""``loopdrive map generate``: write a procedural town as an OpenDRIVE file.

Every :class:`sim.maps.generator.TownConfig` field is an option (``--seed``,
``--blocks-x``, ``--lanes-per-direction``, ...). The file is written to a temporary
name in the target folder and renamed when complete, then parsed back and summarised
in one line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import MapError
from sim.maps import RoadMap
from sim.maps.generator import TownConfig, generate_town

__all__ = ["register", "run"]


def register(parser: argparse.ArgumentParser) -> None:
    """Add the TownConfig options and ``--out`` to the ``map generate`` parser."""
    add_config_arguments(parser, TownConfig)
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE.xodr", help="the OpenDRIVE file to write (.xodr)"
    )
    parser.set_defaults(func=run)


def _write_atomically(path: Path, text: str) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise MapError(f"{path}: the output folder {folder} does not exist (create it first)")
    if path.is_dir():
        raise MapError(f"{path}: is a folder; give a file name such as town.xodr")
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MapError(f"{path}: cannot write the town ({exc.strerror or exc.__class__.__name__})") from None


def run(args: argparse.Namespace) -> int:
    """Generate, write and summarise the town; returns the exit status (0)."""
    config = config_from_args(TownConfig, args)
    text = generate_town(config)
    _write_atomically(args.out, text)
    road_map = RoadMap.from_xodr(args.out.stem, text, source=str(args.out))
    roads = text.count("<road ")
    print(
        f"{args.out}: {roads} roads, {len(road_map.junctions)} junctions, "
        f"{len(road_map.lanes)} driving lanes, {road_map.driving_lane_km:.2f} lane km"
    )
    return 0
