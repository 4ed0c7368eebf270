"""``loopdrive run``: drive scenario episodes with a policy and record them to a store.

Each episode k runs with seed ``--seed + k``, through a takeover wrapper (with
``--takeover autopilot`` the autopilot takes over when a trigger fires and hands back
when it is resolved) and a recorder that writes one Parquet file per episode into
``--store``. At the end the store's catalog is read back and its interventions by
trigger are checked against the ones the run wrote (a mismatch exits with status 1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from scripts.backend_args import add_backend_args, env_overrides
from scripts.common import MAP_HELP
from scripts.config_args import add_config_arguments, config_from_args
from scripts.policies import POLICY_HELP, make_policy, policy_id
from sim.errors import LoopdriveError, RouteError
from sim.scenario import RouteRequest, Scenario, TrafficConfig

__all__ = ["register", "load_scenario_arg", "on_map", "run_episodes"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        default=None,
        metavar="NAME|FILE",
        help="a library scenario name or a scenario file (YAML/JSON); default: a random route on --map",
    )
    parser.add_argument(
        "--map", default=None, metavar="MAP", help=f"{MAP_HELP}; with --scenario: put it on this map"
    )
    parser.add_argument(
        "--route-length",
        type=float,
        nargs=2,
        default=(150.0, 300.0),
        metavar=("MIN", "MAX"),
        help="random route length range in m, without --scenario (default: 150 300)",
    )
    parser.add_argument("--policy", default="random", help=f"{POLICY_HELP} (default: random)")
    parser.add_argument(
        "--takeover",
        choices=("none", "autopilot"),
        default="autopilot",
        help="takeover gate (default: autopilot)",
    )
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of episode 0; episode k uses seed + k")
    parser.add_argument("--store", type=Path, required=True, metavar="DIR", help="the episode store folder")
    parser.add_argument("--context-s", type=float, default=3.0, help="seconds of context per intervention")
    parser.add_argument("--camera-width", type=int, default=160, help="camera width in pixels (default: 160)")
    parser.add_argument("--camera-height", type=int, default=80, help="camera height in pixels (default: 80)")
    parser.add_argument(
        "--rig", default="front", help="camera rig: front, front3, surround8 (default: front)"
    )
    parser.add_argument("--weather", default="noon", help="camera weather preset (default: noon)")
    parser.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    add_config_arguments(parser, TrafficConfig, prefix="")
    add_backend_args(parser)
    parser.set_defaults(func=run)


def load_scenario_arg(spec: str) -> Scenario:
    """A scenario from the library by name, or from a YAML/JSON file."""
    try:
        from sim.scenarios import load_scenario  # the scenario library, when present
    except ImportError:
        load_scenario = None
    if load_scenario is not None:
        return load_scenario(spec)
    import yaml

    from sim.scenario import scenario_from_dict

    path = Path(spec)
    if not path.is_file():
        raise LoopdriveError(
            f"--scenario {spec}: no such scenario file (the scenario library is not available)"
        )
    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as exc:
        raise LoopdriveError(f"{path}: not a readable YAML/JSON file ({exc.__class__.__name__})") from None
    try:
        return scenario_from_dict(data)
    except LoopdriveError as exc:
        raise LoopdriveError(f"{path}: {exc}") from None


def on_map(scenario: Scenario, map_spec: str) -> Scenario:
    """``scenario`` on another map: keypoint routes belong to their map, so the route is
    re-planned as a random route of about the same length (drawn from the episode seed)."""
    import dataclasses

    route = scenario.route
    if not route.is_random:
        pts = route.keypoints_xyz_m
        length = sum(math.dist(a[:2], b[:2]) for a, b in zip(pts, pts[1:], strict=False))
        route = RouteRequest(random_length_m=max(length, 50.0), route_id=route.route_id)
    return dataclasses.replace(scenario, map=map_spec, route=route)


def _scenario(args: argparse.Namespace) -> Scenario | None:
    if args.scenario is None:
        return None
    scenario = load_scenario_arg(args.scenario)
    return on_map(scenario, args.map) if args.map else scenario


def _check(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise LoopdriveError(f"--episodes must be >= 1, got {args.episodes}")
    lo, hi = args.route_length
    if not 0 < lo <= hi:
        raise LoopdriveError(f"--route-length must be MIN MAX with 0 < MIN <= MAX, got {lo} {hi}")
    if args.store.exists() and not args.store.is_dir():
        raise LoopdriveError(f"--store {args.store}: exists and is not a folder")


def run_episodes(
    env_kwargs: dict,
    *,
    policy_spec: str,
    takeover: str,
    episodes: int,
    seed: int,
    store: Path,
    context_s: float = 3.0,
    on_step=None,
    progress: bool = True,
) -> dict:
    """Record ``episodes`` episodes; returns per-episode results, the interventions the
    run wrote by trigger, and the catalog's count of the same files."""
    import gymnasium as gym

    import envs  # noqa: F401 - registers the env ids
    from envs.catalog import Catalog
    from envs.recorder import RecorderWrapper
    from envs.takeover import TakeoverWrapper

    policy = make_policy(policy_spec, seed)
    base = gym.make("loopdrive/Drive-v0", **env_kwargs)
    gated = TakeoverWrapper(base, gate=None if takeover == "none" else takeover, context_s=context_s)
    env = RecorderWrapper(gated, store, policy_id=policy_id(policy_spec))
    written: dict[str, int] = {}
    results, skipped = [], []
    bar = tqdm(total=episodes, unit="episode", file=sys.stderr, disable=not sys.stderr.isatty())
    try:
        for k in range(episodes):
            try:
                obs, info = env.reset(seed=seed + k)
            except RouteError as exc:  # this seed's route cannot be planned: the next one
                skipped.append({"seed": seed + k, "reason": str(exc)})
                tqdm.write(f"skipped seed {seed + k}: {exc}", file=sys.stderr)
                continue
            policy.reset(seed + k)
            while True:
                obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
                if "intervention" in info:
                    trig = info["intervention"]["trigger"]
                    written[trig] = written.get(trig, 0) + 1
                if on_step is not None:
                    on_step(env, obs, info)
                if terminated or truncated:
                    break
            results.append(_episode_line(env.last_path, info))
            bar.update(1)
            if progress:
                tqdm.write(_format(results[-1]), file=sys.stdout)
                sys.stdout.flush()
    finally:
        bar.close()
        env.close()
    catalog = Catalog.scan(store)
    mine = {str(p) for p in env.paths}
    counts: dict[str, int] = {}
    for event in catalog.interventions():
        if event["path"] in mine:
            counts[event["trigger"]] = counts.get(event["trigger"], 0) + 1
    return {
        "episodes": results,
        "interventions_written": dict(sorted(written.items())),
        "interventions_in_catalog": dict(sorted(counts.items())),
        "files_in_catalog": sum(1 for e in catalog.entries if str(e.path) in mine),
        "skipped": skipped,
    }


def _episode_line(path: Path, info: dict) -> dict:
    score = info["score"]
    return {
        "file": str(path),
        "steps": int(info["state"].tick),
        "result": info["termination_reason"].value,
        "route_completion": round(score["route_completion"], 1),
        "driving_score": round(score["driving_score"], 1),
    }


def _format(r: dict) -> str:
    return (
        f"{Path(r['file']).name}  {r['steps']:6d} steps  {r['result']:<16} "
        f"RC {r['route_completion']:5.1f}  DS {r['driving_score']:5.1f}"
    )


def env_kwargs_from_args(args: argparse.Namespace, scenario: Scenario | None, traffic: TrafficConfig) -> dict:
    kwargs = {
        "camera_width_px": args.camera_width,
        "camera_height_px": args.camera_height,
        "rig": args.rig,
        "weather": args.weather,
        "traffic": traffic,
        "route_length_m": tuple(args.route_length),
        **env_overrides(args),
    }
    if scenario is not None:
        kwargs["scenario"] = scenario
        kwargs["map"] = scenario.map
    elif args.map:
        kwargs["map"] = args.map
    return kwargs


def run(args: argparse.Namespace) -> int:
    _check(args)
    traffic = config_from_args(TrafficConfig, args)
    scenario = _scenario(args)
    t0 = time.perf_counter()
    out = run_episodes(
        env_kwargs_from_args(args, scenario, traffic),
        policy_spec=args.policy,
        takeover=args.takeover,
        episodes=args.episodes,
        seed=args.seed,
        store=args.store,
        context_s=args.context_s,
        progress=not args.json,
    )
    out["seconds"] = round(time.perf_counter() - t0, 1)
    match = out["interventions_written"] == out["interventions_in_catalog"] and out[
        "files_in_catalog"
    ] == len(out["episodes"])
    out["catalog_matches"] = match
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        written = ", ".join(f"{k} {v}" for k, v in out["interventions_written"].items()) or "none"
        print(f"{len(out['episodes'])} episodes recorded to {args.store} in {out['seconds']} s")
        print(f"interventions written: {written}")
        print(
            f"catalog: {out['files_in_catalog']} files, interventions {out['interventions_in_catalog']}"
            f" -> {'match' if match else 'MISMATCH'}"
        )
    if not match:
        print(f"loopdrive: the catalog of {args.store} disagrees with what this run wrote", file=sys.stderr)
        return 1
    return 0
