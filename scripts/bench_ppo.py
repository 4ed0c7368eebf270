"""``loopdrive bench ppo``: does Stable-Baselines3 PPO learn on the batched env? JSON.

For each ``--seeds`` value: a PPO model started from ``--init`` (the shipped default
policy unless told otherwise; ``none`` starts from scratch) on
``--num-envs`` worlds of ``--map`` with random routes of ``--route-length`` metres;
its deterministic policy's returns on ``--eval-episodes`` fixed episodes (world k reset
with ``--eval-seed + k``, the same episodes before and after and for every seed,
none of them a training reset), then ``--timesteps`` of PPO, then the same episodes
again. Printed: per seed the returns before and after, SB3's mean episode reward per
rollout, and the seconds; in all, the mean return before and after and in how many
seeds it rose.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from policy.ppo import PPOConfig
from scripts.common import print_bench
from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import LoopdriveError

__all__ = ["register_ppo_bench"]

#: PPO settings of the benchmark where they differ from :class:`policy.ppo.PPOConfig`'s:
#: longer rollouts, and a gentle start for BC weights
BENCH_DEFAULTS = {"n_steps": 256, "batch_size": 256, "lr": 3e-5, "log_std_init": -2.0}


def register_ppo_bench(subparsers) -> None:
    """Add ``ppo`` to ``loopdrive bench``'s subcommands."""
    p = subparsers.add_parser(
        "ppo", help="PPO's returns on fixed episodes before and after a short run, JSON", description=__doc__
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="PPO seeds (default: 0 1 2)")
    p.add_argument("--timesteps", type=int, default=8192, help="env steps of PPO per seed (default: 8192)")
    add_config_arguments(p, PPOConfig, skip=("seed",), defaults=BENCH_DEFAULTS)
    p.add_argument("--map", default="generated:100", help="town (default: generated:100)")
    p.add_argument(
        "--route-length",
        type=float,
        nargs=2,
        default=(60.0, 120.0),
        metavar=("MIN", "MAX"),
        help="route length range in metres (default: 60 120)",
    )
    p.add_argument("--eval-episodes", type=int, default=8, help="fixed evaluation episodes (default: 8)")
    p.add_argument("--eval-seed", type=int, default=50_000, help="seed of the first one (default: 50000)")
    p.add_argument(
        "--init",
        default="default",
        help="start from this BC checkpoint (default: the shipped default policy); none: from scratch",
    )
    p.add_argument("--camera", default="160x80", help="camera size WxH (default: 160x80)")
    p.add_argument(
        "--traffic",
        type=int,
        nargs=2,
        default=None,
        metavar=("VEHICLES", "WALKERS"),
        help="NPC vehicles and walkers per world (default: the env's traffic by route length)",
    )
    p.add_argument(
        "--blocked-s",
        type=float,
        default=10.0,
        help="standing still this long ends an episode (default: 10; the env's default is 180)",
    )
    p.set_defaults(func=run_ppo_bench)


def _check(args: argparse.Namespace) -> None:
    if min(args.timesteps, args.eval_episodes) < 1:
        raise LoopdriveError("bench ppo: --timesteps and --eval-episodes must be >= 1")
    config_from_args(PPOConfig, args, seed=0)  # its own checks, before any world is built
    if not args.blocked_s > 0:
        raise LoopdriveError(f"bench ppo: --blocked-s must be > 0, got {args.blocked_s:g}")
    low, high = args.route_length
    if not 0 < low <= high:
        raise LoopdriveError(f"bench ppo: --route-length needs 0 < MIN <= MAX, got {low:g} {high:g}")
    if args.traffic is not None and min(args.traffic) < 0:
        raise LoopdriveError(f"bench ppo: --traffic counts must be >= 0, got {args.traffic}")


def _one_seed(args: argparse.Namespace, seed: int, env_config, assets) -> dict:
    import numpy as np

    from policy.ppo import evaluate_returns, make_ppo, train_ppo

    t0 = time.perf_counter()
    config = config_from_args(PPOConfig, args, seed=seed)
    model = make_ppo(config, env_config, init=None if args.init == "none" else args.init, assets=assets)
    before = evaluate_returns(model, env_config, args.eval_episodes, args.eval_seed, assets=assets)
    rollouts = train_ppo(model, args.timesteps, progress=True)
    after = evaluate_returns(model, env_config, args.eval_episodes, args.eval_seed, assets=assets)
    model.get_env().close()
    return {
        "seed": seed,
        "return_before": round(float(np.mean(before)), 2),
        "return_after": round(float(np.mean(after)), 2),
        "returns_before": [round(r, 2) for r in before],
        "returns_after": [round(r, 2) for r in after],
        "rollout_mean_episode_reward": [round(r, 2) for r in rollouts],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def run_ppo_bench(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from envs.config import DrivingEnvConfig
    from envs.world import SharedAssets
    from scripts.bench_env import camera_size
    from sim.scenario import TrafficConfig

    _check(args)
    width, height = camera_size(args.camera)
    base = DrivingEnvConfig(
        map=args.map, route_length_m=tuple(args.route_length), camera_width_px=width, camera_height_px=height
    )
    if args.traffic is not None:
        base = base.replace(
            traffic=TrafficConfig(vehicle_count=args.traffic[0], walker_count=args.traffic[1])
        )
    env_config = base.replace(infractions=dataclasses.replace(base.infractions, blocked_s=args.blocked_s))
    assets = SharedAssets()  # the map is loaded once for every env of every seed
    runs = []
    for seed in tqdm(args.seeds, desc="ppo seeds", unit="seed", file=sys.stderr):
        runs.append(_one_seed(args, seed, env_config, assets))
        tqdm.write(
            f"seed {seed}: return {runs[-1]['return_before']} -> {runs[-1]['return_after']} "
            f"({runs[-1]['seconds']} s)",
            file=sys.stderr,
        )
    result = {
        "map": args.map,
        "route_length_m": list(args.route_length),
        "timesteps_per_seed": args.timesteps,
        "num_envs": args.num_envs,
        "init": args.init,
        "ppo": {
            k: v for k, v in dataclasses.asdict(config_from_args(PPOConfig, args)).items() if k != "seed"
        },
        "blocked_s": args.blocked_s,
        "camera": args.camera,
        "traffic": args.traffic,
        "eval_episodes": args.eval_episodes,
        "runs": runs,
        "mean_return_before": round(float(np.mean([r["return_before"] for r in runs])), 2),
        "mean_return_after": round(float(np.mean([r["return_after"] for r in runs])), 2),
        "rose_in": f"{sum(r['return_after'] > r['return_before'] for r in runs)} of {len(runs)} seeds",
    }
    print_bench(result)
    return 0
