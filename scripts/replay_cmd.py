"""``loopdrive replay EPISODE``: re-simulate a stored episode.

* ``--verify``: compare every re-rendered frame with the stored one (bit-exact on the
  embedded backend); exit status 1 naming the first differing step.
* ``--video OUT.mp4``: film the replay (cameras, route map, HUD, who drove).
* ``--from-step K --policy P``: replay to step K, then let policy P drive on from
  exactly that state (a new policy tried on an old intervention); prints both scores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from scripts.backend_args import add_backend_args, env_overrides
from scripts.policies import POLICY_HELP
from sim.errors import LoopdriveError

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "episode",
        type=Path,
        metavar="EPISODE",
        help="an episode file (.parquet) of a store; with --verify also a store folder (every episode)",
    )
    parser.add_argument("--verify", action="store_true", help="compare every frame with the stored one")
    parser.add_argument(
        "--video", type=Path, default=None, metavar="OUT.mp4", help="write an MP4 of the replay"
    )
    parser.add_argument(
        "--from-step", type=int, default=None, metavar="K", help="replay to step K, then --policy"
    )
    parser.add_argument(
        "--policy", default=None, metavar="P", help=f"who drives after --from-step: {POLICY_HELP}"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of a random --policy (default: 0)")
    add_backend_args(parser)
    parser.set_defaults(func=run)


def _verify_folder(root: Path) -> int:
    from envs.catalog import Catalog
    from envs.replay import verify_episode
    from envs.world import SharedAssets

    catalog = Catalog.scan(root)
    for path, reason in catalog.problems:
        print(f"loopdrive: skipped {path}: {reason}", file=sys.stderr)
    assets, failed = SharedAssets(), 0
    for entry in tqdm(catalog.entries, unit="episode", file=sys.stderr, disable=not sys.stderr.isatty()):
        result = verify_episode(entry.path, assets=assets)
        failed += not result.ok
        tqdm.write(result.message())
    print(f"{len(catalog) - failed} of {len(catalog)} episodes bit-exact, {catalog.n_frames} frames")
    return 1 if failed else 0


def _verify(path: Path) -> int:
    from envs.replay import load_episode, verify_episode

    if path.is_dir():
        return _verify_folder(path)
    frames = load_episode(path).header["frames"]
    with tqdm(total=frames, unit="frame", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        result = verify_episode(path, progress=lambda _k: bar.update(1))
    print(result.message())
    return 0 if result.ok else 1


def _continue(args: argparse.Namespace) -> int:
    from envs.replay import VideoWriter, drive_from, load_episode, replay_to
    from scripts.policies import make_policy

    episode = load_episode(args.episode)
    policy = make_policy(args.policy, args.seed)
    policy.reset(args.seed)
    video = VideoWriter(args.video) if args.video else None
    film = None
    if video is not None:

        def film(env, obs, info, k=None):
            video.add(env.frame(), "replay" if k is not None else f"driver: {args.policy}")

    try:
        env, obs, info = replay_to(episode, args.from_step, on_step=film, **_backend(args))
        if video is not None:
            info_end = drive_from(env, obs, info, policy, on_step=lambda e, o, i: film(e, o, i))
        else:
            info_end = drive_from(env, obs, info, policy)
        env.close()
    finally:
        if video is not None:
            video.close()
    old = episode.header["result"]
    new = info_end["score"]
    print(
        f"recorded: {old['termination_reason']}  RC {old['route_completion']:.1f}  "
        f"DS {old['driving_score']:.1f}  ({episode.header['policy_id']})"
    )
    print(
        f"from step {args.from_step} with {args.policy}: {info_end['termination_reason'].value}  "
        f"RC {new['route_completion']:.1f}  DS {new['driving_score']:.1f}"
    )
    if video is not None:
        print(f"wrote {args.video}")
    return 0


def _backend(args: argparse.Namespace) -> dict:
    """Config overrides that replay on a CARLA server (nothing for the embedded default)."""
    return env_overrides(args) if args.backend != "embedded" else {}


def run(args: argparse.Namespace) -> int:
    from envs.replay import load_episode, write_video

    if args.verify and args.backend != "embedded":
        raise LoopdriveError(
            "--verify compares frames bit for bit, which only the embedded simulator reproduces; "
            "drop --backend carla (or use --video / --from-step on CARLA)"
        )

    if (args.from_step is None) != (args.policy is None):
        raise LoopdriveError("--from-step K and --policy P go together")
    if not args.verify and args.video is None and args.from_step is None:
        raise LoopdriveError("nothing to do: give --verify, --video OUT.mp4 or --from-step K --policy P")
    status = 0
    if args.verify:
        status = _verify(args.episode)
    if args.from_step is not None:
        return _continue(args) or status
    if args.video is not None:
        n = write_video(args.video, load_episode(args.episode), **_backend(args))
        print(f"wrote {args.video} ({n} frames)")
    return status
