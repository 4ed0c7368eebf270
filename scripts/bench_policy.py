"""``loopdrive bench policy``: CPU inference time of the policy network per step, as JSON.

One thread by default (``--threads``), batch 1 by default, the default network (or a
checkpoint's): median and 90th percentile milliseconds per forward pass over
``--repeat`` passes after ``--warmup`` untimed ones.
"""

from __future__ import annotations

import argparse
import time

from scripts.common import print_bench
from sim.errors import LoopdriveError

__all__ = ["register_policy_bench"]


def register_policy_bench(subparsers) -> None:
    """Add ``policy`` to ``loopdrive bench``'s subcommands."""
    p = subparsers.add_parser(
        "policy", help="policy inference time per step on the CPU, JSON", description=__doc__
    )
    p.add_argument(
        "--policy", default=None, help="checkpoint folder or default (default: an untrained default network)"
    )
    p.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--repeat", type=int, default=200, help="timed passes (default: 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed passes first (default: 20)")
    p.set_defaults(func=run_policy_bench)


def run_policy_bench(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from policy.checkpoint import load_network
    from policy.export import INPUT_NAMES, example_inputs
    from policy.network import DrivingNetwork, ObservationLayout

    if min(args.batch, args.threads, args.repeat) < 1 or args.warmup < 0:
        raise LoopdriveError("bench policy: --batch, --threads and --repeat must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    net = load_network(args.policy) if args.policy else DrivingNetwork(ObservationLayout()).eval()
    inputs = example_inputs(net, args.batch)
    tensors = [torch.as_tensor(inputs[k]) for k in INPUT_NAMES]
    times = []
    with torch.inference_mode():
        for k in range(args.warmup + args.repeat):
            t0 = time.perf_counter()
            net(*tensors)
            if k >= args.warmup:
                times.append(time.perf_counter() - t0)
    ms = 1e3 * np.asarray(times)
    result = {
        "batch": args.batch,
        "threads": args.threads,
        "parameters": sum(p.numel() for p in net.parameters()),
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
    }
    print_bench(result)
    return 0
