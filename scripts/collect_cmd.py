"""``loopdrive collect``: the autopilot drives with injected perturbations; every kept
frame is labelled with the autopilot's corrective action.

Where it drives: random routes on ``--maps``, or the (scenario, seed) entries of a
scenario-library suite (``--suite train``: episode k drives entry k, cycling, with its
scripted events). Where it goes: ``--out SET.npz`` writes a training set
(:class:`policy.data.Samples`, no pickle); any other ``--out`` is an episode store folder
that every episode is recorded into (one Parquet file each, driver ``autopilot``,
policy id ``autopilot+perturbation``: the executed action is the perturbed one, the
row's ``autopilot_action`` the label). ``loopdrive train bc|dagger --data`` reads both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.backend_args import add_backend_args, env_overrides
from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    from policy.collect import CollectConfig, PerturbationConfig

    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="training set to write (.npz), or an episode store folder to record the episodes into "
        "(every step is recorded there; --every applies to .npz only)",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes driving in parallel (default: 1)")
    add_config_arguments(parser, CollectConfig, skip=("perturb",))
    add_config_arguments(parser, PerturbationConfig, prefix="perturb_")
    add_backend_args(parser)
    parser.set_defaults(func=run)


def _is_store(out: Path) -> bool:
    return out.suffix != ".npz"


def _check_out(out: Path) -> None:
    if not out.parent.is_dir():
        raise LoopdriveError(f"--out {out}: the folder {out.parent} does not exist")
    if _is_store(out) and out.exists() and not out.is_dir():
        raise LoopdriveError(f"--out {out}: exists and is not a folder (a training set is a .npz file)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from envs.config import DrivingEnvConfig
    from policy.collect import CollectConfig, PerturbationConfig, collect, plan_for
    from policy.data import Samples

    _check_out(args.out)
    perturb = config_from_args(PerturbationConfig, args, prefix="perturb_")
    config = config_from_args(CollectConfig, args, perturb=perturb)
    _, skipped = plan_for(config)  # a bad suite fails here, before any world is built
    for name, reason in dict(skipped).items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    store = args.out if _is_store(args.out) else None
    parts, frames, episodes = [], 0, 0
    with tqdm(total=config.episodes, unit="episode", file=sys.stderr) as bar:
        env_config = DrivingEnvConfig(**env_overrides(args))
        for name, seed, samples, log in collect(
            config, env_config, workers=args.workers, store=store, keep_samples=store is None
        ):
            bar.update(1)
            if log.skipped:
                tqdm.write(f"skipped {name} seed {seed}: {log.skipped}", file=sys.stderr)
                continue
            episodes += 1
            kept = log.steps if samples is None else len(samples)
            frames += kept
            if samples is not None:
                parts.append(samples)
            bar.set_postfix(frames=frames)
            tqdm.write(
                f"{name} seed {seed}: {log.steps} steps, {kept} frames, "
                f"{log.termination}, DS {log.score['driving_score']:.1f}",
                file=sys.stderr,
            )
    if store is not None:
        print(f"recorded {episodes} episodes ({frames} steps) into the episode store {store}")
        return 0
    data = Samples.concat(parts)
    data.save_npz(args.out)
    print(f"wrote {args.out}: {len(data)} frames from {len(parts)} episodes")
    return 0
