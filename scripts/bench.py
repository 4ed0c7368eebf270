"""``loopdrive bench``: simulator speed, as JSON.

``bench env`` times the Gymnasium env (cameras, route map, world) with random
actions; ``bench world`` times the embedded world alone (ego physics, NPC traffic, walkers,
signals, collisions, infractions; no rendering, no driver): the ego's controls are
recorded from the autopilot in a first pass and replayed in the timed pass, which
the determinism of the world makes identical.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from scripts.common import default_bench_map, print_bench
from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_command", metavar="WHAT")
    sub.required = True
    world = sub.add_parser(
        "world",
        help="ticks per second of the embedded world (no rendering)",
        description="ticks per second of the embedded world (no rendering)",
    )
    world.add_argument(
        "--map",
        default=None,
        help="map to run on (default: Town03 from the shared folder, $LOOPDRIVE_SHARED or ../shared, "
        "when present, else generated:0)",
    )
    world.add_argument("--vehicles", type=int, default=30, help="NPC vehicles (default: 30)")
    world.add_argument("--walkers", type=int, default=20, help="walkers (default: 20)")
    world.add_argument(
        "--ticks", type=int, default=6000, help="ticks to time (default: 6000, 5 simulated minutes)"
    )
    world.add_argument("--seed", type=int, default=0, help="world seed")
    world.add_argument("--repeat", type=int, default=3, help="timed repetitions; the median is reported")
    world.set_defaults(func=run_world)
    from scripts.bench_env import register_env_bench

    register_env_bench(sub)
    from scripts.bench_policy import register_policy_bench

    register_policy_bench(sub)
    from scripts.bench_ppo import register_ppo_bench

    register_ppo_bench(sub)


def _record_controls(backend, scenario, seed: int, ticks: int) -> list:
    state = backend.reset(scenario, seed)
    pilot = backend.make_autopilot()
    controls = []
    for _ in range(ticks):
        control = pilot.act(state)
        controls.append(control)
        backend.apply_control(control)
        state = backend.tick()
    return controls


def run_world(args: argparse.Namespace) -> int:
    from sim.embedded import EmbeddedBackend
    from sim.scenario import RouteRequest, Scenario, TrafficConfig

    if args.ticks <= 0 or args.repeat <= 0 or args.vehicles < 0 or args.walkers < 0:
        raise LoopdriveError("bench world: --ticks and --repeat must be positive, counts >= 0")
    map_spec = args.map or default_bench_map()
    traffic = TrafficConfig(vehicle_count=args.vehicles, walker_count=args.walkers)
    scenario = Scenario(map=map_spec, route=RouteRequest(random_length_m=5000.0), traffic=traffic)
    backend = EmbeddedBackend()
    controls = _record_controls(backend, scenario, args.seed, args.ticks)
    rates = []
    for _ in range(args.repeat):
        backend.reset(scenario, args.seed)
        t0 = time.perf_counter()
        for control in controls:
            backend.apply_control(control)
            backend.tick()
        rates.append(args.ticks / (time.perf_counter() - t0))
    rates.sort()
    result = {
        "map": map_spec,
        "vehicles": len(backend.traffic),
        "walkers": len(backend.walkers),
        "ticks": args.ticks,
        "ticks_per_second": round(rates[len(rates) // 2], 1),
        "ticks_per_second_all": [round(r, 1) for r in rates],
        "simulated_seconds_per_second": round(rates[len(rates) // 2] * scenario.world.dt_s, 1),
        "threads": {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print_bench(result)
    return 0
