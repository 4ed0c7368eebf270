"""``loopdrive train bc|dagger|ppo``: train the end-to-end policy into a checkpoint.

* ``bc --data SET.npz... --out CKPT``: behaviour cloning on collected frames.
* ``dagger --data SET.npz... --out CKPT --iterations K``: BC (or ``--init CKPT``), then
  K rounds of gated policy rollouts labelled by the autopilot, retraining after each;
  ``--store DIR`` records the rollouts into an episode store too (each takeover an
  intervention of the catalog, trigger ``disagreement``).
* ``ppo --out CKPT --timesteps N [--init CKPT]``: Stable-Baselines3 PPO on the
  batched env with the same encoder; the result is saved as a checkpoint (no pickle).

TensorBoard logs go to ``--log-dir`` (default: ``CKPT/tb``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    from policy.bc import BCConfig
    from policy.dagger import DaggerConfig, GateConfig
    from policy.ppo import PPOConfig

    sub = parser.add_subparsers(dest="train_command", metavar="KIND")
    sub.required = True
    bc = sub.add_parser("bc", help="behaviour cloning on collected frames", description=__doc__)
    _common(bc, data=True)
    add_config_arguments(bc, BCConfig)
    bc.set_defaults(func=run_bc)
    dagger = sub.add_parser("dagger", help="DAgger with autopilot-gated takeover", description=__doc__)
    _common(dagger, data=True)
    dagger.add_argument("--init", default=None, help="start from this checkpoint instead of BC on --data")
    dagger.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="DIR",
        help="also record the rollouts into this episode store folder (takeovers as interventions)",
    )
    add_config_arguments(dagger, BCConfig, skip=("seed",))
    add_config_arguments(dagger, DaggerConfig, skip=("gate",))
    add_config_arguments(dagger, GateConfig, prefix="gate_")
    dagger.set_defaults(func=run_dagger)
    ppo = sub.add_parser("ppo", help="Stable-Baselines3 PPO on the vectorised env", description=__doc__)
    _common(ppo, data=False)
    ppo.add_argument("--init", default=None, help="start from this BC checkpoint (or default)")
    ppo.add_argument("--timesteps", type=int, default=20_000, help="env steps in all (default: 20000)")
    ppo.add_argument("--map", default="generated:0", help="town of the PPO env (default: generated:0)")
    ppo.add_argument(
        "--route-length",
        type=float,
        nargs=2,
        default=(100.0, 200.0),
        metavar=("MIN", "MAX"),
        help="route length",
    )
    add_config_arguments(ppo, PPOConfig)
    ppo.set_defaults(func=run_ppo)


def _common(parser: argparse.ArgumentParser, *, data: bool) -> None:
    if data:
        parser.add_argument(
            "--data",
            nargs="+",
            type=Path,
            required=True,
            help="training sets (.npz) or episode store folders",
        )
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--log-dir", type=Path, default=None, help="TensorBoard logs (default: OUT/tb)")


def _load(paths: list[Path]):
    from policy.data import DataError, Samples
    from policy.store_data import samples_from_store

    parts = [samples_from_store(p) if p.is_dir() else Samples.load_npz(p) for p in paths]
    empty = [str(p) for p, s in zip(paths, parts, strict=True) if len(s) == 0]
    if len(empty) == len(parts):
        raise DataError(f"no usable frames: {', '.join(empty)} hold none")
    return Samples.concat(parts)


def _check_out(out: Path) -> None:
    if not out.parent.is_dir():
        raise LoopdriveError(f"--out {out}: the folder {out.parent} does not exist")


def run_bc(args: argparse.Namespace) -> int:
    from policy.bc import BCConfig, train_bc
    from policy.checkpoint import save_checkpoint

    _check_out(args.out)
    config = config_from_args(BCConfig, args)
    data = _load(args.data)
    print(f"training on {len(data)} frames from {len(args.data)} file(s)", file=sys.stderr)
    network, report = train_bc(data, config, log_dir=args.log_dir or args.out / "tb")
    training = {
        "kind": "bc",
        "command": " ".join(sys.argv),
        "data": [str(p) for p in args.data],
        "frames": len(data),
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "report": report.to_dict(),
    }
    save_checkpoint(args.out, network, training)
    print(json.dumps({"checkpoint": str(args.out), **report.to_dict()}))
    return 0


def run_dagger(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from policy.bc import BCConfig
    from policy.checkpoint import load_network
    from policy.collect import CollectConfig
    from policy.dagger import DaggerConfig, GateConfig
    from policy.dagger import run_dagger as dagger

    _check_out(args.out)
    if args.store is not None and args.store.exists() and not args.store.is_dir():
        raise LoopdriveError(f"--store {args.store}: exists and is not a folder")
    bc = config_from_args(BCConfig, args)
    config = config_from_args(DaggerConfig, args, gate=config_from_args(GateConfig, args, prefix="gate_"))
    data = _load(args.data)
    maps = config.maps or CollectConfig().maps
    network = load_network(args.init) if args.init else None
    bar = tqdm(
        total=config.iterations * config.episodes, unit="episode", desc="dagger rollouts", file=sys.stderr
    )

    def progress(town, seed, log):
        bar.update(1)
        tqdm.write(
            f"{town} seed {seed}: {log.steps} steps, takeovers {log.takeovers}, "
            f"policy {100 * (1 - log.expert_share):.0f} %, DS {log.score['driving_score']:.1f}",
            file=sys.stderr,
        )

    _, history = dagger(
        data,
        config,
        bc,
        args.out,
        maps=maps,
        network=network,
        log_dir=args.log_dir or args.out / "tb",
        progress=progress,
        store=args.store,
    )
    bar.close()
    for entry in history:
        print(json.dumps({k: v for k, v in entry.items() if k != "bc"}))
    return 0


def run_ppo(args: argparse.Namespace) -> int:
    from envs.config import DrivingEnvConfig
    from policy.checkpoint import save_checkpoint
    from policy.ppo import PPOConfig, make_ppo, ppo_to_network, train_ppo

    _check_out(args.out)
    if args.timesteps < 1:
        raise LoopdriveError(f"--timesteps must be >= 1, got {args.timesteps}")
    config = config_from_args(PPOConfig, args)
    env_config = DrivingEnvConfig(map=args.map, route_length_m=tuple(args.route_length))
    model = make_ppo(config, env_config, init=args.init, log_dir=args.log_dir or args.out / "tb")
    means = train_ppo(model, args.timesteps, progress=True)
    network = ppo_to_network(model, init=args.init)
    save_checkpoint(
        args.out, network, {"kind": "ppo", "timesteps": args.timesteps, "mean_episode_reward": means}
    )
    print(json.dumps({"checkpoint": str(args.out), "mean_episode_reward": means}))
    return 0
