"""Frames per second of the camera renderer: ``python -m sim.render.bench [--help]``.

The world: the embedded backend on a map (Town03 from ``../shared`` when present, else
``generated:0``) with NPC vehicles and walkers, driven by the autopilot; states are
taken every few ticks. With ``crowd`` (the default) every state's actors are moved
into the front camera's view (vehicles on lane points 8-80 m ahead, walkers beside
them), so the count the issue names (30 vehicles, 20 walkers) is really on screen.

Measured, each the best of ``repeat`` timed passes after a warm-up (the machine may
be shared): numba single frames, numba batches, and torch single frames on the CPU.
With ``--device cuda``, the torch path on the GPU too: single frames, the batch
sizes, and ``--cuda-batch`` (default 1024), each including the copy of the images
back to host memory, and its agreement with the numba images of the same states.
``cpu_ms_per_frame`` is process CPU time per frame of the single-frame numba pass
(robust to other load; one thread renders a single front frame).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.errors import ConfigError
from sim.state import Actors, ActorType, WorldState

__all__ = ["RenderBenchConfig", "run_bench", "add_arguments", "config_from_args", "main"]

_SHARED_TOWN03 = Path(__file__).resolve().parents[3] / "shared" / "maps" / "carla" / "Town03.xodr"


@dataclass(frozen=True)
class RenderBenchConfig:
    """What to time: map, traffic, rig, image size, weather, batch sizes, passes."""

    map: str = ""
    vehicles: int = 30
    walkers: int = 20
    crowd: bool = True
    rig: str = "front"
    width_px: int = 160
    height_px: int = 80
    weather: str = "noon"
    frames: int = 64
    batches: tuple[int, ...] = (16, 64)
    repeat: int = 5
    torch: bool = True
    seed: int = 0
    device: str = "cpu"
    cuda_batch: int = 1024

    def __post_init__(self) -> None:
        if self.vehicles < 0 or self.walkers < 0:
            raise ConfigError("bench render: vehicle and walker counts must be >= 0")
        if self.frames < 1 or self.repeat < 1 or not self.batches or min(self.batches) < 1:
            raise ConfigError("bench render: frames, repeat and batch sizes must be positive")
        if self.device not in ("cpu", "cuda") or self.cuda_batch < 1:
            raise ConfigError("bench render: --device must be cpu or cuda and --cuda-batch positive")

    @property
    def map_spec(self) -> str:
        return self.map or (str(_SHARED_TOWN03) if _SHARED_TOWN03.exists() else "generated:0")


def _states(cfg: RenderBenchConfig):
    from sim.embedded import EmbeddedBackend
    from sim.scenario import RouteRequest, Scenario, TrafficConfig

    backend = EmbeddedBackend()
    traffic = TrafficConfig(vehicle_count=cfg.vehicles, walker_count=cfg.walkers)
    scenario = Scenario(map=cfg.map_spec, route=RouteRequest(random_length_m=3000.0), traffic=traffic)
    state = backend.reset(scenario, cfg.seed)
    pilot = backend.make_autopilot()
    states = []
    for tick in range(cfg.frames * 5):
        backend.apply_control(pilot.act(state))
        state = backend.tick()
        if tick % 5 == 4:
            states.append(state)
    return backend, states


def _crowd(state: WorldState, lane_xyz: np.ndarray, lane_yaw: np.ndarray, rng) -> WorldState:
    """The state with its actors moved in front of the ego's front camera."""
    e = state.ego
    c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
    dx, dy = lane_xyz[:, 0] - e.x_m, lane_xyz[:, 1] - e.y_m
    fx, fy = c * dx + s * dy, -s * dx + c * dy
    ahead = np.flatnonzero((fx > 8.0) & (fx < 80.0) & (np.abs(fy) < 0.8 * fx))
    a = state.actors
    if len(ahead) == 0 or len(a) == 0:
        return state
    pick = rng.choice(ahead, size=len(a), replace=len(ahead) < len(a))
    xyz = lane_xyz[pick].copy()
    yaw = lane_yaw[pick].copy()
    walker = a.type == ActorType.WALKER
    side = np.where(rng.random(len(a)) < 0.5, -1.0, 1.0) * 4.0
    xyz[walker, 0] += -np.sin(yaw[walker]) * side[walker]
    xyz[walker, 1] += np.cos(yaw[walker]) * side[walker]
    moved = Actors(a.id, a.type, xyz, yaw, a.half_extent_m, a.velocity_mps)
    return WorldState(state.tick, state.time_s, e, moved, state.signals, state.events)


def _visible(states, cam, far_m: float) -> float:
    """Mean actors per state whose centre is within the camera's horizontal view and ``far_m``."""
    half = math.radians(cam.fov_deg) / 2.0
    counts = []
    for st in states:
        e, a = st.ego, st.actors
        c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
        dx, dy = a.xyz_m[:, 0] - e.x_m, a.xyz_m[:, 1] - e.y_m
        fx, fy = c * dx + s * dy, -s * dx + c * dy
        ang = np.abs(np.arctan2(fy, fx) - cam.yaw_rad)
        counts.append(int(np.count_nonzero((ang < half) & (np.hypot(fx, fy) < far_m))))
    return float(np.mean(counts)) if counts else 0.0


def _best_rate(fn, frames: int, repeat: int) -> float:
    fn()  # warm-up: compile, caches
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = max(best, frames / (time.perf_counter() - t0))
    return best


def _single_pass(renderer, states):
    def run():
        for st in states:
            renderer.render(st)

    return run


def run_bench(cfg: RenderBenchConfig) -> dict:
    """Time the renderer as ``cfg`` says; returns the figures as a JSON-ready dict."""
    import numba

    from sim.render import Renderer, StaticScene, rig, weather_preset

    cams = rig(cfg.rig, width_px=cfg.width_px, height_px=cfg.height_px)
    weather = weather_preset(cfg.weather)
    backend, states = _states(cfg)
    if cfg.crowd:
        lanes = list(backend.road_map.lanes.values())
        xyz = np.concatenate([ln.xyz_m for ln in lanes])
        yaw = np.concatenate([ln.yaw_rad for ln in lanes])
        rng = np.random.default_rng(cfg.seed)
        states = [_crowd(st, xyz, yaw, rng) for st in states]
    t0 = time.perf_counter()
    scene = StaticScene.build(backend.road_map, backend.signals, seed=cfg.seed)
    scene_s = time.perf_counter() - t0
    renderer = Renderer(scene, cams, weather)
    result = {
        "map": cfg.map_spec,
        "rig": cfg.rig,
        "image": [cfg.height_px, cfg.width_px],
        "weather": cfg.weather,
        "actors_per_state": float(np.mean([len(st.actors) for st in states])),
        "actors_in_view": _visible(states, cams[0], 100.0),
        "static_boxes": len(scene.boxes),
        "scene_build_s": round(scene_s, 2),
        "numba_threads": numba.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    n = len(states)
    c0 = time.process_time()
    result["numba_single_fps"] = round(_best_rate(_single_pass(renderer, states), n, cfg.repeat), 1)
    result["cpu_ms_per_frame"] = round((time.process_time() - c0) / (n * (cfg.repeat + 1)) * 1e3, 3)
    for b in cfg.batches:
        batch = [states[i % n] for i in range(b)]
        rate = _best_rate(lambda batch=batch: renderer.render_batch(batch), b, cfg.repeat)
        result[f"numba_batch{b}_fps"] = round(rate, 1)
    if cfg.torch:
        import torch

        tr = Renderer(scene, cams, weather, device="cpu", backend="torch")
        batch = [states[i % n] for i in range(16)]
        threads = torch.get_num_threads()
        for label, count in (
            ("", threads),
            ("_1thread", 1),
        ):  # small ops: one thread may beat a contended two
            torch.set_num_threads(count)
            single = _best_rate(_single_pass(tr, states[:16]), 16, cfg.repeat)
            result[f"torch_cpu_single_fps{label}"] = round(single, 1)
            rate = _best_rate(lambda: tr.render_batch(batch), 16, cfg.repeat)
            result[f"torch_cpu_batch16_fps{label}"] = round(rate, 1)
        torch.set_num_threads(threads)
        result["torch_threads"] = threads
    if cfg.device == "cuda":
        result.update(_cuda_pass(cfg, scene, cams, weather, renderer, states))
    result["config"] = asdict(cfg)
    return result


def _cuda_pass(cfg: RenderBenchConfig, scene, cams, weather, reference, states) -> dict:
    """The torch renderer on the GPU: frames per second (images copied back) and agreement."""
    import torch

    from sim.render import Renderer

    gpu = Renderer(scene, cams, weather, device="cuda")
    n = len(states)

    def timed(fn):
        def run():
            fn()
            torch.cuda.synchronize()

        return run

    out = {"cuda_device": torch.cuda.get_device_name(0)}
    out["cuda_single_fps"] = round(_best_rate(timed(_single_pass(gpu, states[:16])), 16, cfg.repeat), 1)
    for b in sorted({*cfg.batches, cfg.cuda_batch}):
        batch = [states[i % n] for i in range(b)]
        rate = _best_rate(timed(lambda batch=batch: gpu.render_batch(batch)), b, cfg.repeat)
        out[f"cuda_batch{b}_fps"] = round(rate, 1)
    sample = states[: min(n, 16)]
    diff = np.abs(reference.render_batch(sample).astype(int) - gpu.render_batch(sample).astype(int)).max(
        axis=-1
    )
    out["cuda_vs_numba_equal_share"] = round(float((diff == 0).mean()), 5)
    out["cuda_vs_numba_within2_share"] = round(float((diff <= 2).mean()), 5)
    out["cuda_max_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options (shared by ``python -m sim.render.bench`` and ``loopdrive bench render``)."""
    d = RenderBenchConfig()
    parser.add_argument(
        "--map", default="", help="map (default: ../shared Town03 when present, else generated:0)"
    )
    parser.add_argument(
        "--vehicles", type=int, default=d.vehicles, help=f"NPC vehicles (default: {d.vehicles})"
    )
    parser.add_argument("--walkers", type=int, default=d.walkers, help=f"walkers (default: {d.walkers})")
    parser.add_argument("--no-crowd", action="store_true", help="leave actors where the world put them")
    parser.add_argument("--rig", default=d.rig, help=f"camera rig (default: {d.rig})")
    parser.add_argument("--width", type=int, default=d.width_px, help=f"image width (default: {d.width_px})")
    parser.add_argument(
        "--height", type=int, default=d.height_px, help=f"image height (default: {d.height_px})"
    )
    parser.add_argument("--weather", default=d.weather, help=f"weather preset (default: {d.weather})")
    parser.add_argument("--frames", type=int, default=d.frames, help=f"distinct states (default: {d.frames})")
    parser.add_argument(
        "--batch", type=int, nargs="+", default=list(d.batches), help="batch sizes (default: 16 64)"
    )
    parser.add_argument("--repeat", type=int, default=d.repeat, help="timed passes; the best is reported")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch path")
    parser.add_argument("--seed", type=int, default=d.seed, help="world and scene seed")
    parser.add_argument(
        "--device", default=d.device, choices=("cpu", "cuda"), help="also time the torch path on CUDA"
    )
    parser.add_argument(
        "--cuda-batch", type=int, default=d.cuda_batch, help=f"largest CUDA batch (default {d.cuda_batch})"
    )


def config_from_args(args: argparse.Namespace) -> RenderBenchConfig:
    return RenderBenchConfig(
        map=args.map,
        vehicles=args.vehicles,
        walkers=args.walkers,
        crowd=not args.no_crowd,
        rig=args.rig,
        width_px=args.width,
        height_px=args.height,
        weather=args.weather,
        frames=args.frames,
        batches=tuple(args.batch),
        repeat=args.repeat,
        torch=not args.no_torch,
        seed=args.seed,
        device=args.device,
        cuda_batch=args.cuda_batch,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.render.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(run_bench(config_from_args(args)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
