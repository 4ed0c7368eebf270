"""``loopdrive demo``: the main job on the embedded default, end to end so far.

Generates a procedural town (OpenDRIVE), plans a random route on it, and writes the
town, a top-down picture with the route, and a JSON summary to ``--out``. Later
issues make the demo drive, record, train and replay.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sim.errors import LoopdriveError

__all__ = ["register", "run_demo"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="town and route seed (default: 0)")
    parser.add_argument(
        "--route-length", type=float, default=800.0, metavar="M", help="approximate route length in metres"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)"
    )
    parser.set_defaults(func=run)


def run_demo(seed: int, route_length_m: float, out: Path) -> dict:
    import cv2

    from scripts.map_show import render_picture
    from sim.maps import load_map
    from sim.maps.lanegraph import LaneGraph
    from sim.maps.planner import RoutePlanner
    from sim.maps.raster import build_raster
    from sim.routes import random_route

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    road_map = load_map(f"generated:{seed}")
    (out / "town.xodr").write_text(road_map.xodr_text)
    planner = RoutePlanner(road_map)
    route = random_route(planner, road_map, np.random.default_rng(seed), route_length_m)
    raster = build_raster(road_map)
    picture = out / "town_route.png"
    rgb = render_picture(raster, 2000, (route.xyz_m[:, :2], route.xyz_m[[0, -1], :2]))
    if not cv2.imwrite(str(picture), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise LoopdriveError(f"{picture}: could not write the picture")
    commands = {}
    for c in route.command.tolist():
        commands[int(c)] = commands.get(int(c), 0) + 1
    summary = {
        "town": road_map.name,
        "driving_lanes": len(road_map.lanes),
        "junctions": len(road_map.junctions),
        "lane_km": round(road_map.driving_lane_km, 2),
        "strongly_connected": LaneGraph(road_map).is_strongly_connected(),
        "route_length_m": round(route.length_m, 1),
        "route_points": len(route.s_m),
        "route_commands": commands,
        "files": [str(out / "town.xodr"), str(picture)],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run(args: argparse.Namespace) -> int:
    s = run_demo(args.seed, args.route_length, args.out)
    print(
        f"town {s['town']}: {s['driving_lanes']} driving lanes, {s['junctions']} junctions, "
        f"{s['lane_km']} lane-km, strongly connected: {s['strongly_connected']}"
    )
    print(f"route: {s['route_length_m']} m, {s['route_points']} points")
    for path in s["files"]:
        print(f"wrote {path}")
    print(f"done in {s['seconds']} s")
    return 0
