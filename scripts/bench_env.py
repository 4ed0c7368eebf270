"""``loopdrive bench env``: steps per second of the driving env, as JSON.

Random actions (uniform in [-1, 1]) with resets: one :class:`envs.DrivingEnv` for
``--num-envs 1``, else one :class:`envs.DrivingVectorEnv` of N worlds (NEXT_STEP
autoreset; on the CPU, render threads draw each world's cameras while the next worlds
step, :mod:`sim.render.workers`). A step counts once per world.

* timed passes: ``--repeat`` passes of ``--steps`` steps after ``--warmup`` steps (numba
  compiles, caches fill); the median rate is reported (the machine may be shared);
* profile pass (``--profile``, on by default): the same again with timers around the
  world tick, the route map, the autopilot's action for ``info``, the cameras and the
  resets, reported as microseconds per env step (``other`` is the env's own Python:
  observation, rewards, info, batching, packing states for the cameras). For the vector
  env ``render`` is the time a step waits for its cameras once every world has stepped:
  render threads draw most of them while the worlds step (:class:`envs.cameras.Frames`);
* ``--fast``: no autopilot action in ``info`` (``DrivingEnvConfig.autopilot_in_info``);
* ``--memory``: ``--steps`` default 10^6, every world reset every 1000 steps
  (``--episode-steps``); the resident set size is sampled as it runs and its growth
  after the warm-up (the first tenth) is reported.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from contextlib import contextmanager

from scripts.common import default_bench_map, print_bench
from sim.errors import LoopdriveError

__all__ = ["register_env_bench", "run_env_bench", "camera_size"]

_PAGE_MB = resource.getpagesize() / 2**20


def register_env_bench(subparsers) -> None:
    """Add ``env`` to ``loopdrive bench``'s subcommands (``subparsers`` from add_subparsers)."""
    p = subparsers.add_parser(
        "env",
        help="steps per second of the driving env (cameras, route map, rewards), JSON",
        description=(
            "Random actions with resets on one driving env (--num-envs 1) or the batched vector env "
            "(N worlds, every camera in one render call per step). A step counts once per world. "
            "Prints JSON: steps_per_second, frames_per_second (camera images), peak_rss_mb, and a "
            "per-step profile (world tick, route map, autopilot, cameras, the rest)."
        ),
    )
    p.add_argument(
        "--num-envs", type=int, default=1, help="worlds; >1 uses the batched vector env (default 1)"
    )
    p.add_argument("--camera", default="160x80", help="camera size WxH (default 160x80)")
    p.add_argument("--rig", default="front", help="camera rig: front, front3, surround8 (default front)")
    p.add_argument(
        "--actors", type=int, default=50, help="NPCs: 3/5 vehicles, 2/5 walkers (default 50: 30 + 20)"
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="render device (default cpu)")
    p.add_argument("--steps", type=int, default=None, help="env steps to time (default 2000; --memory: 10^6)")
    p.add_argument("--warmup", type=int, default=200, help="env steps before timing (default 200)")
    p.add_argument(
        "--map",
        default=None,
        help="map (default: Town03 from the shared folder, $LOOPDRIVE_SHARED or ../shared, when present, "
        "else generated:0)",
    )
    p.add_argument("--seed", type=int, default=0, help="reset seed (default 0)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes; the median is reported (default 3)")
    p.add_argument("--fast", action="store_true", help="no autopilot action in info")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profile pass")
    p.add_argument("--memory", action="store_true", help="long run: resident memory growth after warm-up")
    p.add_argument(
        "--episode-steps",
        type=int,
        default=None,
        help="also reset every world after this many steps (default: never; --memory: 1000)",
    )
    p.add_argument(
        "--render-threads",
        type=int,
        default=None,
        help="numba threads for the camera kernel (the vector env draws on all but one of them while its "
        "worlds step; 1: one batched call after the last world)",
    )
    p.set_defaults(func=run_env_bench)


def camera_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (``--camera``) as (width, height); a one-line error otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise LoopdriveError(f"--camera must be WIDTHxHEIGHT such as 160x80, got {text!r}") from None
    return w, h


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Runner:
    """Steps one env or one vector env with seeded random actions, counting env steps."""

    def __init__(self, args: argparse.Namespace, config):
        import numpy as np

        from envs.driving import DrivingEnv
        from envs.vector import DrivingVectorEnv

        self.n = args.num_envs
        self.env = DrivingEnv(config) if self.n == 1 else DrivingVectorEnv(self.n, config)
        self.rng = np.random.default_rng(args.seed)
        self.episodes = 0
        self.episode_steps = args.episode_steps or (1000 if args.memory else 0)
        self._since_reset = 0
        self.env.reset(seed=args.seed)
        shape = (2,) if self.n == 1 else (self.n, 2)
        self._shape = shape

    def run(self, steps: int, every: Callable[[int], None] | None = None) -> int:
        """Step until ``steps`` env steps are done (whole vector steps); returns them."""
        done = 0
        while done < steps:
            action = self.rng.uniform(-1.0, 1.0, self._shape).astype("float32")
            _, _, terminated, truncated, _ = self.env.step(action)
            self._since_reset += 1
            if self.episode_steps and self._since_reset >= self.episode_steps:
                self.env.reset()  # every world
                self.episodes += self.n
                self._since_reset = 0
            elif self.n == 1:
                if terminated or truncated:
                    self.env.reset()
                    self.episodes += 1
            else:
                self.episodes += int((terminated | truncated).sum())
            done += self.n
            if every is not None:
                every(done)
        return done


@contextmanager
def _timers(totals: dict[str, float]):
    """Time the expensive calls of a step by wrapping their classes' methods."""
    from envs.cameras import CameraSet, Frames
    from sim.autopilot import Autopilot
    from sim.embedded import EmbeddedBackend
    from sim.routemap import RouteMap

    targets = {
        "tick": (EmbeddedBackend, "tick"),
        "reset": (EmbeddedBackend, "reset"),
        "route_map": (RouteMap, "render"),
        "autopilot": (Autopilot, "act"),
        "render": (CameraSet, "render"),
        "render_wait": (Frames, "result"),
    }
    saved = {}
    for name, (cls, attr) in targets.items():
        original = getattr(cls, attr)
        saved[name] = (cls, attr, original)
        totals.setdefault(name, 0.0)

        def timed(*a, __orig=original, __name=name, **kw):
            t0 = time.perf_counter()
            try:
                return __orig(*a, **kw)
            finally:
                totals[__name] += time.perf_counter() - t0

        setattr(cls, attr, timed)
    try:
        yield totals
    finally:
        for cls, attr, original in saved.values():
            setattr(cls, attr, original)


def _config(args: argparse.Namespace):
    from envs.config import DrivingEnvConfig
    from sim.scenario import TrafficConfig

    width, height = camera_size(args.camera)
    vehicles = round(args.actors * 3 / 5)
    map_spec = args.map or default_bench_map()
    return DrivingEnvConfig(
        map=map_spec,
        rig=args.rig,
        camera_width_px=width,
        camera_height_px=height,
        render_device=args.device,
        traffic=TrafficConfig(vehicle_count=vehicles, walker_count=args.actors - vehicles),
        autopilot_in_info=not args.fast,
    )


def _profile(runner: _Runner, steps: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    with _timers(totals):
        t0 = time.perf_counter()
        done = runner.run(steps)
        wall = time.perf_counter() - t0
    us = {k: 1e6 * v / done for k, v in totals.items()}
    render = us.pop("render") + us.pop("render_wait")
    out = {k: round(v, 1) for k, v in us.items()}
    out["render"] = round(render, 1)
    out["total"] = round(1e6 * wall / done, 1)
    out["other"] = round(out["total"] - sum(v for k, v in out.items() if k != "total"), 1)
    return out


def _memory(runner: _Runner, steps: int) -> dict:
    warm = max(steps // 10, runner.n)
    samples: list[tuple[int, float]] = []
    stride = max(steps // 200, runner.n)

    def sample(done: int) -> None:
        if done % stride < runner.n:
            samples.append((done, _rss_mb()))

    t0 = time.perf_counter()
    done = runner.run(steps, sample)
    wall = time.perf_counter() - t0
    after = [rss for d, rss in samples if d >= warm]
    base = after[0] if after else _rss_mb()
    return {
        "memory_steps": done,
        "memory_seconds": round(wall, 1),
        "warmup_steps": warm,
        "rss_after_warmup_mb": round(base, 1),
        "rss_end_mb": round(_rss_mb(), 1),
        "rss_growth_after_warmup_mb": round(_rss_mb() - base, 1),
        "rss_max_after_warmup_mb": round(max(after, default=base), 1),
        "rss_samples_mb": [[d, round(rss, 1)] for d, rss in samples[:: max(1, len(samples) // 10)]],
        "episodes": runner.episodes,
    }


def run_env_bench(args: argparse.Namespace) -> int:
    if args.num_envs < 1 or args.actors < 0 or args.warmup < 0 or (args.steps is not None and args.steps < 1):
        raise LoopdriveError("bench env: --num-envs and --steps must be positive, --actors and --warmup >= 0")
    if args.repeat < 1:
        raise LoopdriveError("bench env: --repeat must be positive")
    if args.episode_steps is not None and args.episode_steps < 1:
        raise LoopdriveError("bench env: --episode-steps must be positive")
    import numba

    if args.render_threads is not None:
        if not 1 <= args.render_threads <= numba.config.NUMBA_NUM_THREADS:
            raise LoopdriveError(f"--render-threads must lie in [1, {numba.config.NUMBA_NUM_THREADS}]")
        numba.set_num_threads(args.render_threads)
    config = _config(args)
    t0 = time.perf_counter()
    runner = _Runner(args, config)
    build_s = time.perf_counter() - t0
    runner.run(args.warmup)
    n_cams = (
        runner.env.single_observation_space["camera"].shape[0]
        if runner.n > 1
        else (runner.env.observation_space["camera"].shape[0])
    )
    result = {
        "map": config.map,
        "num_envs": runner.n,
        "rig": config.rig,
        "cameras": n_cams,
        "camera": f"{config.camera_width_px}x{config.camera_height_px}",
        "route_map": "x".join(str(v) for v in config.route_map.shape),
        "device": config.render_device,
        "vehicles": config.traffic.vehicle_count,
        "walkers": config.traffic.walker_count,
        "fast": bool(args.fast),
        "render_threads": numba.get_num_threads(),
        "build_seconds": round(build_s, 2),
    }
    if args.memory:
        result.update(_memory(runner, args.steps or 1_000_000))
    else:
        steps = args.steps or 2000
        episodes0 = runner.episodes
        rates, done, wall = [], 0, 0.0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = runner.run(steps)
            dt = time.perf_counter() - t0
            rates.append(n / dt)
            done, wall = done + n, wall + dt
        rate = sorted(rates)[len(rates) // 2]
        result.update(
            steps=done,
            seconds=round(wall, 2),
            resets=runner.episodes - episodes0,
            steps_per_second=round(rate, 1),
            steps_per_second_all=[round(r, 1) for r in rates],
            frames_per_second=round(rate * n_cams, 1),
        )
        if args.profile:
            result["profile_us_per_step"] = _profile(runner, steps)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print_bench(result)
    return 0
