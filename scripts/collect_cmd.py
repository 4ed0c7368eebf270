"""``loopdrive collect``: the autopilot drives with injected perturbations; every kept
frame is labelled with the autopilot's corrective action and written as a training set.

The output is a training set file (``.npz``, no pickle: :class:`policy.data.Samples`)
that ``loopdrive train bc|dagger --data`` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    from policy.collect import CollectConfig, PerturbationConfig

    parser.add_argument("--out", type=Path, required=True, help="training set to write (.npz)")
    parser.add_argument("--workers", type=int, default=1, help="processes driving in parallel (default: 1)")
    add_config_arguments(parser, CollectConfig, skip=("perturb",))
    add_config_arguments(parser, PerturbationConfig, prefix="perturb_")
    parser.set_defaults(func=run)


def _check_out(out: Path) -> None:
    if out.suffix != ".npz":
        raise LoopdriveError(f"--out {out}: a training set is a .npz file")
    if not out.parent.is_dir():
        raise LoopdriveError(f"--out {out}: the folder {out.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from policy.collect import CollectConfig, PerturbationConfig, collect
    from policy.data import Samples

    _check_out(args.out)
    perturb = config_from_args(PerturbationConfig, args, prefix="perturb_")
    config = config_from_args(CollectConfig, args, perturb=perturb)
    parts, scores = [], []
    with tqdm(total=config.episodes, unit="episode", file=sys.stderr) as bar:
        for town, seed, samples, log in collect(config, workers=args.workers):
            parts.append(samples)
            scores.append(log.score["driving_score"])
            bar.update(1)
            bar.set_postfix(frames=sum(len(p) for p in parts))
            tqdm.write(
                f"{town} seed {seed}: {log.steps} steps, {len(samples)} frames, "
                f"{log.termination}, DS {log.score['driving_score']:.1f}",
                file=sys.stderr,
            )
    data = Samples.concat(parts)
    data.save_npz(args.out)
    print(f"wrote {args.out}: {len(data)} frames from {len(parts)} episodes")
    return 0
