"""``loopdrive scenarios``: the scenario library.

* ``loopdrive scenarios list [--json]``: the library's scenarios (name, map, events,
  description); ``--json`` prints a JSON list of objects (``name``, ``description``,
  ``map``, ``events``, ``weather``, ``rig``, ``available``).
* ``loopdrive scenarios show NAME``: one scenario as the loader sees it (YAML).
* ``loopdrive scenarios check FILE...``: validate scenario files, one line per file;
  exit status 2 with the first error's line when any is bad.
* ``loopdrive scenarios run SUITE|NAME... [--policy autopilot|random] [--seeds 0 1]``:
  drive suites or scenarios closed-loop and print Leaderboard scores per route and for
  the suite (``--out result.json`` writes them). Scenarios whose data is absent (a
  CARLA town) are skipped, saying why.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenarios_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("list", help="the library's scenarios", description="the library's scenarios")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(func=run_list)
    p = sub.add_parser("show", help="one scenario as loaded", description="one scenario as loaded (YAML)")
    p.add_argument("name", metavar="NAME", help="a library scenario name or a .yaml path")
    p.set_defaults(func=run_show)
    p = sub.add_parser("check", help="validate scenario files", description="validate scenario files")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario .yaml files")
    p.set_defaults(func=run_check)
    help_text = "drive suites or scenarios closed-loop and score them"
    p = sub.add_parser("run", help=help_text, description=help_text)
    p.add_argument(
        "targets", nargs="+", metavar="SUITE|NAME", help="suite names (train, eval, ...) or scenarios"
    )
    p.add_argument("--policy", default="autopilot", choices=("autopilot", "random"), help="who drives")
    p.add_argument("--seeds", type=int, nargs="+", metavar="N", help="seeds for scenarios given by name")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="write the scores as JSON")
    p.set_defaults(func=run_suite)


def _summary(scenario) -> dict:
    from sim.scenario import scenario_to_dict
    from sim.scenarios import scenario_unavailable

    d = scenario_to_dict(scenario)
    return {
        "name": scenario.name,
        "description": scenario.description,
        "map": scenario.map,
        "events": [e["type"] for e in d["events"]],
        "weather": scenario.weather,
        "rig": scenario.rig,
        "available": scenario_unavailable(scenario) is None,
    }


def run_list(args: argparse.Namespace) -> int:
    from sim.scenarios import MissingData, library_names, load_scenario

    rows = []
    for name in library_names():
        try:
            rows.append(_summary(load_scenario(name)))
        except MissingData as exc:
            rows.append({"name": name, "description": str(exc), "available": False})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        events = ", ".join(r.get("events", [])) or "-"
        mark = "" if r["available"] else "  [unavailable here]"
        print(f"{r['name']:<32} {r.get('map', '?'):<14} {events:<40} {r['description']}{mark}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import yaml

    from sim.scenario import scenario_to_dict
    from sim.scenarios import load_scenario

    print(yaml.safe_dump(scenario_to_dict(load_scenario(args.name)), sort_keys=False), end="")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from sim.scenarios import load_scenario

    first_error = None
    for f in args.files:
        try:
            s = load_scenario(f if str(f).endswith((".yaml", ".yml")) else f"{f}")
            print(f"{f}: ok ({s.map}, {len(s.events)} event(s))")
        except LoopdriveError as exc:
            print(f"{f}: error: {exc}")
            first_error = first_error or exc
    if first_error is not None:
        raise LoopdriveError(str(first_error))
    return 0


def _jobs(args: argparse.Namespace):
    from sim.scenarios import Suite, library_names, load_suite, suite_jobs, suite_names

    jobs, skipped = [], []
    suites, names = set(suite_names()), set(library_names())
    for target in args.targets:
        if target in suites:
            suite = load_suite(target)
        elif target in names or target.endswith((".yaml", ".yml")):
            suite = Suite(target, "", tuple((target, s) for s in (args.seeds or [0])))
        else:
            raise LoopdriveError(
                f"{target!r}: neither a suite ({', '.join(sorted(suites))}) nor a library scenario "
                "(see 'loopdrive scenarios list')"
            )
        more, skip = suite_jobs(suite)
        jobs += more
        skipped += skip
    return jobs, skipped


def run_suite(args: argparse.Namespace) -> int:
    from sim.embedded import EmbeddedBackend
    from sim.evaluation import RandomDriver, evaluate_suite
    from sim.scoring import SuiteResult

    if args.out is not None and not args.out.parent.is_dir():
        raise LoopdriveError(f"--out {args.out}: the folder {args.out.parent} does not exist")
    jobs, skipped = _jobs(args)
    for name, reason in dict(skipped).items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if not jobs:
        raise LoopdriveError("no scenario to drive here (every one was skipped)")
    if args.policy == "autopilot":
        make_driver = lambda backend: backend.make_autopilot()  # noqa: E731
    else:
        make_driver = lambda backend: RandomDriver(backend.episode_seed)  # noqa: E731
    results, t0 = [], time.perf_counter()
    print(f"{'scenario':<40} {'RC':>6} {'IP':>6} {'DS':>6}  infractions / end")
    bar = tqdm(total=len(jobs), unit="route", file=sys.stderr, disable=not sys.stderr.isatty())
    backend = EmbeddedBackend()
    for job, result, _message in evaluate_suite(jobs, make_driver, backend=backend):
        bar.update(1)
        results.append(result)
        counts = ", ".join(f"{k}={v}" for k, v in sorted(result.infractions.items()) if v) or "-"
        end = backend.monitor.end_reason.name.lower() if backend.monitor.end_reason is not None else "?"
        tqdm.write(
            f"{job.route_id:<40} {result.route_completion:6.1f} {result.infraction_penalty:6.3f} "
            f"{result.driving_score:6.1f}  {counts} / {end}"
        )
    bar.close()
    suite = SuiteResult(results)
    print(
        f"suite: {suite.route_count} routes ({args.policy})  DS {suite.driving_score:.1f}  "
        f"RC {suite.route_completion:.1f}  IP {suite.infraction_penalty:.3f}  "
        f"({time.perf_counter() - t0:.0f} s, {len(dict(skipped))} scenario(s) skipped)"
    )
    if args.out is not None:
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(suite.to_dict(), indent=2))
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
    return 0
