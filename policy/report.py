"""The comparison table of evaluated policies, from ``loopdrive evaluate --out`` files.

``python -m policy.report FOLDER`` reads every ``eval_<policy>_<town>.json`` in FOLDER
(one file per policy and town, as ``scripts/policy_pipeline.sh`` writes them), joins the
routes per policy into one :class:`sim.scoring.SuiteResult` and prints a Markdown table:
routes, Driving Score, Route Completion, Infraction Penalty (suite means), collisions
per km completed, all infractions per km, and the DS as a share of the autopilot's.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from sim.scoring import RouteResult, SuiteResult

__all__ = ["suites_of", "table"]

_COLLISIONS = ("collision_walker", "collision_vehicle", "collision_static")


def _route(d: dict) -> RouteResult:
    return RouteResult(
        route_id=d["route_id"],
        town=d["town"],
        route_completion=d["route_completion"],
        infraction_penalty=d["infraction_penalty"],
        driving_score=d["driving_score"],
        length_m=d["length_m"],
        distance_driven_m=d["distance_driven_m"],
        duration_s=d["duration_s"],
        outside_lanes_share=d["outside_lanes_share"],
        events=tuple(d["events"]),
        infractions=d["infractions"],
        end_reason=d["end_reason"],
    )


def suites_of(folder: Path) -> dict[str, SuiteResult]:
    """Policy name -> the suite of all its routes in ``folder``."""
    routes: dict[str, list[RouteResult]] = defaultdict(list)
    for path in sorted(folder.glob("eval_*_*.json")):
        name = path.stem[len("eval_") :].rsplit("_", 1)[0]
        routes[name] += [_route(r) for r in json.loads(path.read_text())["routes"]]
    return {name: SuiteResult(tuple(rs)) for name, rs in routes.items()}


def table(suites: dict[str, SuiteResult]) -> str:
    """The Markdown table (see the module docstring)."""
    ref = suites.get("autopilot")
    lines = [
        "| policy | routes | DS | RC | IP | collisions / km | infractions / km | DS / autopilot DS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in suites.items():
        per_km = s.infractions_per_km
        collisions = sum(per_km[k] for k in _COLLISIONS)
        share = f"{100 * s.driving_score / ref.driving_score:.0f} %" if ref and ref.driving_score > 0 else "-"
        lines.append(
            f"| {name} | {s.route_count} | {s.driving_score:.1f} | {s.route_completion:.1f} | "
            f"{s.infraction_penalty:.3f} | {collisions:.2f} | {per_km['total']:.2f} | {share} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(suites_of(Path(sys.argv[1]))))
