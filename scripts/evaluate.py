"""``loopdrive evaluate``: drive a policy closed-loop on a suite of routes and score it,
on the embedded simulator or a CARLA server (``--backend carla --host H --port P``).

What is driven: ``--map M... --routes R...`` (Leaderboard route files or ``random:N``
routes on each map), or ``--suite S``: a scenario-library suite (``train``, ``eval``,
``smoke`` or a .yaml), each entry a scenario with its seed and scripted events.

``--policy`` takes ``autopilot``, ``random``, ``default`` (the shipped checkpoint) or a
checkpoint folder. Checkpoints see the world through the env's cameras and route map
(:mod:`policy.evaluate`); with ``--map`` the autopilot and the random policy drive the
bare world (:mod:`sim.evaluation`), which scores exactly as the env path on the same
routes and seeds (``--through-env`` drives them through the env as well); with
``--suite`` every policy drives through the env.

``--out result.json``: ``policy``, ``seed``, ``suite`` (DS, RC, IP means, infractions
and collisions per km completed, route count), ``routes`` (each route's scores, counts
and rates) and, with ``--suite``, ``suite_name`` and the ``skipped`` entries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from scripts.backend_args import add_backend_args, env_overrides, make_backend
from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import LoopdriveError
from sim.scenario import TrafficConfig

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        default="autopilot",
        metavar="POLICY",
        help="autopilot, random, default (the shipped checkpoint) or a checkpoint folder",
    )
    parser.add_argument(
        "--through-env",
        action="store_true",
        help="drive autopilot or random through the env too (checkpoints always are)",
    )
    parser.add_argument(
        "--rig",
        default=None,
        help="camera rig of the env a checkpoint drives (default: the scenario's, front)",
    )
    parser.add_argument(
        "--map",
        nargs="+",
        default=None,
        metavar="MAP",
        help="maps: .xodr, .osm or generated:SEED (with --backend carla also a town name: Town03)",
    )
    parser.add_argument(
        "--routes",
        nargs="+",
        default=None,
        metavar="ROUTES",
        help="Leaderboard route files (routes of each map's town are driven), or random:N",
    )
    parser.add_argument(
        "--suite",
        default=None,
        metavar="SUITE",
        help="a scenario-library suite (train, eval, smoke or a .yaml) instead of --map/--routes; "
        "its scenarios bring their traffic",
    )
    parser.add_argument(
        "--length", type=float, default=1000.0, metavar="M", help="length of random routes (m)"
    )
    parser.add_argument("--route-ids", nargs="+", default=None, metavar="ID", help="only these route ids")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first route; route k uses seed + k")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    add_config_arguments(parser, TrafficConfig, prefix="")
    add_backend_args(parser)
    parser.set_defaults(func=run)


def _jobs_for_map(map_spec: str, args, traffic: TrafficConfig):
    from sim.evaluation import jobs_from_specs, random_jobs
    from sim.maps.leaderboard import read_route_file

    town = Path(map_spec).stem if not map_spec.startswith("generated:") else map_spec.replace(":", "_")
    jobs, skipped = [], 0
    for routes in args.routes:
        if routes.startswith("random:"):
            try:
                count = int(routes.split(":", 1)[1])
            except ValueError:
                raise LoopdriveError(f"{routes}: expected random:N with N an integer") from None
            jobs += random_jobs(map_spec, town, count, args.length, traffic, args.seed + len(jobs))
            continue
        specs = read_route_file(routes)
        mine = [s for s in specs if s.town == town]
        skipped += len(specs) - len(mine)
        if args.route_ids:
            mine = [s for s in mine if s.route_id in set(args.route_ids)]
        jobs += jobs_from_specs(map_spec, town, mine, traffic, args.seed + len(jobs))
    return jobs, skipped


def _driver_factory(policy: str, seed: int):
    from sim.evaluation import RandomDriver

    if policy == "autopilot":
        return lambda backend: backend.make_autopilot()
    if policy == "random":
        return lambda backend: RandomDriver(seed)
    raise LoopdriveError(
        f"--policy {policy!r}: unknown policy (use autopilot, random, default or a checkpoint)"
    )


def _through_env(args: argparse.Namespace) -> bool:
    return args.policy not in ("autopilot", "random") or args.through_env


def _row(r) -> str:
    counts = ", ".join(f"{k}={v}" for k, v in sorted(r.infractions.items()) if v) or "-"
    return (
        f"{r.town:<24} {r.route_id:>10} {r.route_completion:6.1f} {r.infraction_penalty:6.3f} "
        f"{r.driving_score:6.1f}  {counts}"
    )


def _check_source(args: argparse.Namespace) -> None:
    if args.suite is not None and (args.map or args.routes):
        raise LoopdriveError("--suite replaces --map and --routes: give one or the other")
    if args.suite is None and not (args.map and args.routes):
        raise LoopdriveError("nothing to drive: give --map MAP... --routes ROUTES..., or --suite SUITE")


def _run_suite(args: argparse.Namespace) -> int:
    from envs.config import DrivingEnvConfig
    from policy.evaluate import evaluate_jobs, make_policy
    from sim.scenarios import load_suite, suite_jobs

    policy = make_policy(args.policy, args.seed)  # a bad checkpoint fails before any map is built
    if args.out is not None and not args.out.parent.is_dir():
        raise LoopdriveError(f"--out {args.out}: the folder {args.out.parent} does not exist")
    suite = load_suite(args.suite)
    jobs, skipped = suite_jobs(suite)
    for name, reason in dict(skipped).items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if not jobs:
        raise LoopdriveError(f"--suite {args.suite}: no scenario of it can run here (every one was skipped)")
    env_config = DrivingEnvConfig(**env_overrides(args))
    results = evaluate_jobs(jobs, policy, env_config, rig=args.rig, skip_unplannable=True)
    extra = {"suite_name": suite.name, "skipped": [{"scenario": n, "reason": r} for n, r in skipped]}
    return _drive(results, args, len(jobs), extra)


def run(args: argparse.Namespace) -> int:
    _check_source(args)
    if args.suite is not None:
        return _run_suite(args)
    traffic = config_from_args(TrafficConfig, args)
    if _through_env(args):  # a bad checkpoint fails now, before any map is built
        from policy.evaluate import make_policy

        policy = make_policy(args.policy, args.seed)
    else:
        make_driver = _driver_factory(args.policy, args.seed)
    if args.out is not None and not args.out.parent.is_dir():
        raise LoopdriveError(f"--out {args.out}: the folder {args.out.parent} does not exist")
    jobs = []
    for map_spec in args.map:
        mine, skipped = _jobs_for_map(map_spec, args, traffic)
        if skipped:
            print(f"{map_spec}: skipped {skipped} routes of other towns", file=sys.stderr)
        jobs += mine
    if not jobs:
        raise LoopdriveError("no route to drive: no route of the files belongs to the maps' towns")
    if _through_env(args):
        from envs.config import DrivingEnvConfig
        from policy.evaluate import evaluate_jobs

        env_config = DrivingEnvConfig(**env_overrides(args))
        results = evaluate_jobs(jobs, policy, env_config, rig=args.rig, skip_unplannable=True)
        return _drive(results, args, len(jobs))
    backend = make_backend(args)
    try:
        from sim.evaluation import evaluate_suite

        results = evaluate_suite(jobs, make_driver, backend=backend, skip_unplannable=True)
        return _drive(results, args, len(jobs))
    finally:
        backend.close()  # a CARLA server gets its settings back and loses our actors


def _drive(results_iter, args: argparse.Namespace, count: int, extra: dict | None = None) -> int:
    from sim.scoring import SuiteResult

    out: Path | None = args.out

    results, t0 = [], time.perf_counter()
    print(f"{'town':<24} {'route':>10} {'RC':>6} {'IP':>6} {'DS':>6}  infractions")
    quiet = not sys.stderr.isatty() and "CI" in os.environ
    with tqdm(total=count, unit="route", file=sys.stderr, disable=quiet) as bar:  # closed on errors too
        for _job, result, message in results_iter:
            bar.update(1)
            if result is None:
                tqdm.write(f"skipped: {message}", file=sys.stderr)
                continue
            results.append(result)
            tqdm.write(_row(result))
    suite = SuiteResult(results)
    d = {"policy": args.policy, "seed": args.seed, **(extra or {}), **suite.to_dict()}
    s = d["suite"]
    per_km = s["infractions_per_km"]
    total_per_km = per_km.get("total", per_km) if isinstance(per_km, dict) else per_km
    print(
        f"suite: {s['route_count']} routes  DS {s['driving_score']:.1f}  RC {s['route_completion']:.1f}  "
        f"IP {s['infraction_penalty']:.3f}  infractions/km {total_per_km:.2f}  "
        f"collisions/km {s['collisions_per_km']:.2f}  ({time.perf_counter() - t0:.0f} s)"
    )
    if out is not None:
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(d, indent=2))
        os.replace(tmp, out)
        print(f"wrote {out}")
    return 0
