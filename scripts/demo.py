"""``loopdrive demo``: the main job on the embedded default, end to end so far.

Generates a procedural town (OpenDRIVE), plans a random route on it, and writes the
town, a top-down picture with the route, and a JSON summary to ``--out``. Then it
drives: a library scenario (``--scenario``, default ``red_light_runner_town1``; ``random``
drives a short random route on the town instead) with the shipped camera policy
(``--policy``, default ``default``) under the autopilot-gated takeover, records the
episode to ``--out/store``, prints the scores and the interventions, and writes a video
of it (``demo.mp4``: cameras, route map, HUD, who drove).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sim.errors import LoopdriveError

__all__ = ["register", "run_demo", "drive_demo", "DEMO_SCENARIO"]

#: the library scenario the demo drives unless told otherwise
DEMO_SCENARIO = "red_light_runner_town1"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="town and route seed (default: 0)")
    parser.add_argument(
        "--route-length", type=float, default=800.0, metavar="M", help="approximate route length in metres"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)"
    )
    parser.add_argument(
        "--policy",
        default="default",
        help="who drives under the autopilot gate: default (the shipped camera policy), random, "
        "random-forward, autopilot or a checkpoint folder",
    )
    parser.add_argument(
        "--scenario",
        default=DEMO_SCENARIO,
        metavar="NAME|FILE",
        help=f"the scenario to drive (default: {DEMO_SCENARIO}); 'random' for a random route on the town",
    )
    parser.add_argument(
        "--drive-length", type=float, default=150.0, metavar="M", help="length of the driven route (m)"
    )
    parser.add_argument("--no-drive", action="store_true", help="only the town, the route and the picture")
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


def drive_demo(args: argparse.Namespace) -> dict:
    """One recorded, filmed episode under the autopilot gate; the run's results."""
    from envs.replay import VideoWriter
    from scripts.run_cmd import load_scenario_arg, run_episodes
    from sim.scenario import TrafficConfig

    kwargs = {
        "map": f"generated:{args.seed}",
        "route_length_m": (args.drive_length, args.drive_length),
        "traffic": TrafficConfig(vehicle_count=25, walker_count=15),
    }
    if args.scenario and args.scenario != "random":
        scenario = load_scenario_arg(args.scenario)
        kwargs.update(scenario=scenario, map=scenario.map)
    video = VideoWriter(args.out / "demo.mp4")

    def film(env, obs, info):
        label = f"driver: {info['driver']}"
        video.add(env.unwrapped.frame(), label)

    try:
        out = run_episodes(
            kwargs,
            policy_spec=args.policy,
            takeover="autopilot",
            episodes=1,
            seed=args.seed,
            store=args.out / "store",
            on_step=film,
            progress=False,
        )
    finally:
        video.close()
    return out


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    s = run_demo(args.seed, args.route_length, args.out)
    print(
        f"town {s['town']}: {s['driving_lanes']} driving lanes, {s['junctions']} junctions, "
        f"{s['lane_km']} lane-km, strongly connected: {s['strongly_connected']}"
    )
    print(f"route: {s['route_length_m']} m, {s['route_points']} points")
    for path in s["files"]:
        print(f"wrote {path}")
    if not args.no_drive:
        t0 = time.perf_counter()
        d = drive_demo(args)
        _print_drive(d, args)
        print(f"drove in {time.perf_counter() - t0:.1f} s")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


def _print_drive(d: dict, args: argparse.Namespace) -> None:
    from envs.store import read_header

    ep = d["episodes"][0]
    head = read_header(ep["file"])
    print(
        f"drove {head['scenario'].get('name') or head['scenario']['map']} with {args.policy} under the "
        f"autopilot gate: {ep['steps']} steps, {ep['result']}, RC {ep['route_completion']:.1f}, "
        f"DS {ep['driving_score']:.1f}"
    )
    events = [e for e in head["events"] if e["kind"] == "intervention"]
    print(f"interventions: {len(events)}")
    for e in events:
        print(f"  step {e['step']:5d}  t {e['time_s']:6.2f} s  {e['trigger']:<16} until step {e['end_step']}")
    print(f"recorded {ep['file']}")
    print(f"wrote {args.out / 'demo.mp4'}")
