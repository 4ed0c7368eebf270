"""``loopdrive store``: what an episode store holds.

``store summary DIR [--json]``: episodes (by scenario, policy and result), frames and
interventions by trigger; files that cannot be read are reported and skipped.
``store interventions DIR [--trigger T] [--json]``: every intervention with its
episode, step, time and context.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

__all__ = ["register", "summarize"]


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="store_command", metavar="WHAT")
    sub.required = True
    summary = sub.add_parser(
        "summary",
        help="episodes and interventions by trigger",
        description="episodes and interventions by trigger",
    )
    summary.add_argument("dir", type=Path, metavar="DIR", help="the store folder")
    summary.add_argument("--json", action="store_true", help="print JSON")
    summary.set_defaults(func=run_summary)
    inter = sub.add_parser(
        "interventions", help="list the interventions", description="list the interventions of a store"
    )
    inter.add_argument("dir", type=Path, metavar="DIR", help="the store folder")
    inter.add_argument("--trigger", default=None, help="only this trigger")
    inter.add_argument("--json", action="store_true", help="print JSON")
    inter.set_defaults(func=run_interventions)


def summarize(catalog) -> dict:
    """The summary of a :class:`~envs.catalog.Catalog` as plain data."""
    entries = catalog.entries
    return {
        "store": str(catalog.root),
        "episodes": len(entries),
        "frames": catalog.n_frames,
        "interventions": catalog.intervention_counts(),
        "by_scenario": dict(sorted(Counter(e.scenario_name for e in entries).items())),
        "by_policy": dict(sorted(Counter(e.policy_id for e in entries).items())),
        "by_result": dict(sorted(Counter(e.result for e in entries).items())),
        "skipped": [{"path": str(p), "reason": r} for p, r in catalog.problems],
        "unfinished": len(catalog.partials),
    }


def _report_problems(catalog) -> None:
    for path, reason in catalog.problems:
        print(f"loopdrive: skipped {path}: {reason}", file=sys.stderr)


def run_summary(args: argparse.Namespace) -> int:
    from envs.catalog import Catalog

    catalog = Catalog.scan(args.dir)
    _report_problems(catalog)
    s = summarize(catalog)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['store']}: {s['episodes']} episodes, {s['frames']} frames")
    for title, key in (("scenario", "by_scenario"), ("policy", "by_policy"), ("result", "by_result")):
        print(f"by {title}: " + (", ".join(f"{k} {v}" for k, v in s[key].items()) or "-"))
    total = sum(s["interventions"].values())
    print(f"interventions: {total}" + "".join(f"\n  {k:<18} {v}" for k, v in s["interventions"].items()))
    if s["skipped"]:
        print(f"skipped {len(s['skipped'])} unreadable files")
    if s["unfinished"]:
        print(f"{s['unfinished']} unfinished files (a recording in progress, or one that was killed)")
    return 0


def run_interventions(args: argparse.Namespace) -> int:
    from envs.catalog import Catalog

    catalog = Catalog.scan(args.dir)
    _report_problems(catalog)
    rows = catalog.interventions(args.trigger)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'episode':<18} {'trigger':<16} {'driver':<10} {'step':>6} {'time_s':>8} {'context':>8} {'end':>6}"
    )
    for r in rows:
        print(
            f"{r['episode_id']:<18} {r['trigger']:<16} {r['driver']:<10} {r['step']:>6} {r['time_s']:>8.2f} "
            f"{r['context_start_step']:>8} {r.get('end_step', -1):>6}"
        )
    return 0
