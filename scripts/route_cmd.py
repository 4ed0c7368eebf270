"""``loopdrive route``: plan CARLA Leaderboard routes on a map.

``loopdrive route plan --map MAP --routes ROUTES.xml [--route-id N] [--json]`` plans
every route of the file whose town is the map's name (the map file name without its
extension), or only route N, and reports per route its length, whether the route
passes within the tolerance of every key point, the largest key-point distance and
any warnings. ``--json`` prints only a JSON list on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from scripts.common import add_map_argument
from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import RouteError
from sim.maps.planner import PlannerConfig

__all__ = ["register"]

#: show a progress bar from this many routes on
PROGRESS_MIN_ROUTES = 5


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="route_command", metavar="ACTION")
    sub.required = True
    help_text = "plan the routes of a Leaderboard route file on a map"
    plan = sub.add_parser("plan", help=help_text, description=help_text)
    add_map_argument(plan, flag=True)
    plan.add_argument(
        "--routes", required=True, metavar="ROUTES.xml", help="a CARLA Leaderboard route file (v1 or v2)"
    )
    plan.add_argument("--route-id", metavar="N", help="plan only the route with this id")
    plan.add_argument("--json", action="store_true", help="print only a JSON list, one object per route")
    add_config_arguments(plan, PlannerConfig)
    plan.set_defaults(func=run_plan)


def _routes_for_map(routes: list, route_id: str | None, town: str, routes_path: str, map_source: str) -> list:
    """The routes to plan: route ``route_id``, or every route of ``town``."""
    from sim.maps.leaderboard import select_route

    if route_id is not None:
        route = select_route(routes, route_id)
        if route.town != town:
            raise RouteError(
                f"{routes_path} route {route.route_id} is in {route.town}, but the map {map_source} is {town}"
            )
        return [route]
    matching = [r for r in routes if r.town == town]
    if not matching:
        towns = ", ".join(sorted({r.town for r in routes}))
        raise RouteError(
            f"{routes_path} has no route in {town} (the town of map {map_source}); its routes are in {towns}"
        )
    skipped = Counter(r.town for r in routes if r.town != town)
    if skipped:
        detail = ", ".join(f"{t}: {n}" for t, n in sorted(skipped.items()))
        print(f"skipped {sum(skipped.values())} routes of other towns ({detail})", file=sys.stderr)
    return matching


def _record(route, planned) -> dict:
    return {
        "route_id": route.route_id,
        "town": route.town,
        "keypoints": route.num_keypoints,
        "length_m": round(planned.route.length_m, 2),
        "points": len(planned.route),
        "reached_all_keypoints": planned.reached_all,
        "max_keypoint_distance_m": round(float(planned.keypoint_distances_m.max()), 3),
        "plan_time_s": round(planned.plan_time_s, 4),
        "commands": planned.route.command_counts(),
        "warnings": planned.warnings,
    }


def _print_text(records: list[dict]) -> None:
    for rec in records:
        reached = "yes" if rec["reached_all_keypoints"] else "no"
        print(
            f"route {rec['route_id']} ({rec['town']}): {rec['length_m']:.1f} m, "
            f"{rec['keypoints']} key points, "
            f"all reached: {reached}, largest key-point distance {rec['max_keypoint_distance_m']:.2f} m, "
            f"planned in {rec['plan_time_s'] * 1000:.0f} ms"
        )
        for warning in rec["warnings"]:
            print(f"  warning: {warning}")


def run_plan(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sim.maps import load_map
    from sim.maps.leaderboard import read_route_file
    from sim.maps.planner import RoutePlanner

    config = config_from_args(PlannerConfig, args)
    routes = read_route_file(args.routes)
    road_map = load_map(args.map)
    chosen = _routes_for_map(routes, args.route_id, road_map.name, args.routes, road_map.source)
    planner = RoutePlanner(road_map, config=config)
    records = []
    bar = tqdm(
        chosen, desc="planning", unit="route", file=sys.stderr, disable=len(chosen) < PROGRESS_MIN_ROUTES
    )
    for route in bar:
        records.append(_record(route, planner.plan_route(route)))
    if args.json:
        print(json.dumps(records, indent=1))
    else:
        _print_text(records)
    return 0
