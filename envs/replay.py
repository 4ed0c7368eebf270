"""Deterministic replay of stored episodes: re-simulate, verify, continue, film.

An episode file (:mod:`envs.store`) holds what it takes to run the episode again: the
scenario, the episode seed, the env config and every executed action (``float32``).
On the embedded backend the same scenario, seed and actions give the same states and
images bit for bit (:mod:`envs.world`), so:

* :func:`verify_episode` re-simulates and compares every re-rendered frame (cameras and
  route map, decoded losslessly from the file) and the speed with the stored ones, and
  names the first step that differs;
* :func:`replay_to` re-simulates up to step ``K`` and hands back the env in exactly that
  state, so another policy can drive on from an old intervention (:func:`drive_from`);
* :func:`write_video` writes an MP4 (imageio-ffmpeg) of the env's ``frame()`` pictures:
  cameras, route map inset, HUD, and who drove.

The map must be the one recorded: a map whose content hash changed is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow.parquet as pq

from envs.store import StoreError, decode_image, env_config_from_dict, read_header
from sim.errors import LoopdriveError
from sim.scenario import scenario_from_dict

__all__ = [
    "StoredEpisode",
    "load_episode",
    "replay_env",
    "verify_episode",
    "VerifyResult",
    "replay_to",
    "drive_from",
    "write_video",
    "VideoWriter",
]

_ROW_COLUMNS = ["step", "speed_mps", "executed_action", "driver", "intervention"]


@dataclass
class StoredEpisode:
    """An episode file's header and its per-step columns that replay needs."""

    path: Path
    header: dict
    executed: np.ndarray  # (steps, 2) float32
    speed_mps: np.ndarray  # (frames,) float32
    driver: list  # per frame, None on the last
    intervention: list

    @property
    def steps(self) -> int:
        return len(self.executed)

    def frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(step, cameras, route) of every stored frame from ``start``, one row group at a time."""
        pf = pq.ParquetFile(self.path)
        cam_shape = tuple(self.header["camera_shape"][1:])
        route_shape = tuple(self.header["route_shape"])
        for g in range(pf.metadata.num_row_groups):
            t = pf.read_row_group(g, columns=["step", "camera_png", "route_png"])
            for step, cams, route in zip(
                t.column("step").to_pylist(),
                t.column("camera_png").to_pylist(),
                t.column("route_png").to_pylist(),
                strict=True,
            ):
                if step >= start:
                    yield (
                        step,
                        np.stack([decode_image(c, cam_shape) for c in cams]),
                        decode_image(route, route_shape),
                    )


def load_episode(path: str | Path) -> StoredEpisode:
    """Read an episode file's header and action columns (a :class:`StoreError` names a
    file that is not a complete, readable episode)."""
    path = Path(path)
    header = read_header(path)
    try:
        table = pq.read_table(path, columns=_ROW_COLUMNS)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise StoreError(f"{path}: cannot read the episode's rows ({exc.__class__.__name__})") from None
    actions = table.column("executed_action").to_pylist()
    steps = header["steps"]
    if len(actions) != header["frames"] or any(a is None for a in actions[:steps]):
        raise StoreError(f"{path}: the rows disagree with the header ({len(actions)} rows, {steps} steps)")
    executed = np.array(actions[:steps], dtype=np.float32).reshape(steps, 2)
    return StoredEpisode(
        path=path,
        header=header,
        executed=executed,
        speed_mps=np.asarray(table.column("speed_mps").to_numpy(), np.float32),
        driver=table.column("driver").to_pylist(),
        intervention=table.column("intervention").to_pylist(),
    )


def replay_env(
    episode: StoredEpisode, *, assets: Any = None, render_mode: str | None = None, **overrides: Any
):
    """A :class:`~envs.driving.DrivingEnv` built as the recorded one (its config, with the
    stored scenario fixed), not yet reset. ``overrides`` change config fields (a changed
    camera or device does not reproduce the stored frames)."""
    from envs.driving import DrivingEnv

    head = episode.header
    if head.get("backend") != "embedded" and overrides.get("backend", "embedded") == "embedded":
        raise StoreError(
            f"{episode.path}: recorded on backend {head.get('backend')!r}; the embedded simulator cannot "
            "re-simulate it (replay it on its own backend: --backend carla --host H --port P)"
        )
    config = env_config_from_dict(head["env_config"]).replace(scenario=scenario_from_dict(head["scenario"]))
    env = DrivingEnv(
        config.replace(**overrides) if overrides else config, render_mode=render_mode, assets=assets
    )
    return env


def _reset(env, episode: StoredEpisode):
    obs, info = env.reset(seed=int(episode.header["seed"]))
    got = env.world.backend.road_map.content_hash
    if got != episode.header["map_hash"] and env.config.backend == episode.header.get("backend"):
        raise StoreError(
            f"{episode.path}: map {episode.header['scenario']['map']} changed since the recording "
            f"(content hash {got[:12]} != {episode.header['map_hash'][:12]}); replay needs the recorded map"
        )
    return obs, info


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify_episode`. ``first_bad_frame`` is None when every frame
    matched; else ``first_bad_step`` is the step whose action led to it (frame k comes
    from step k-1's action; a bad frame 0, the reset's, names step 0)."""

    path: Path
    frames: int
    first_bad_frame: int | None = None
    what: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_frame is None

    @property
    def first_bad_step(self) -> int | None:
        return None if self.first_bad_frame is None else max(0, self.first_bad_frame - 1)

    def message(self) -> str:
        if self.ok:
            return f"{self.path}: {self.frames} frames bit-exact"
        if self.first_bad_frame == 0:
            return f"{self.path}: step 0 differs: the reset's frame ({self.what})"
        return (
            f"{self.path}: step {self.first_bad_step} differs: the frame after its action "
            f"(frame {self.first_bad_frame}) ({self.what})"
        )


def _diff(obs: dict, cams: np.ndarray, route: np.ndarray, speed: float) -> str:
    if obs["camera"].shape != cams.shape or not np.array_equal(obs["camera"], cams):
        n = int(np.count_nonzero(obs["camera"] != cams)) if obs["camera"].shape == cams.shape else -1
        return f"camera: {n} values differ" if n >= 0 else "camera: shape differs"
    if not np.array_equal(obs["route"], route):
        return f"route map: {int(np.count_nonzero(obs['route'] != route))} values differ"
    if np.float32(obs["speed"][0]) != np.float32(speed):
        return f"speed {float(obs['speed'][0])!r} != stored {float(speed)!r}"
    return ""


def verify_episode(
    path: str | Path, *, assets: Any = None, progress: Callable[[int], None] | None = None
) -> VerifyResult:
    """Re-simulate an episode file from its scenario, seed and executed actions, and
    compare every frame bit for bit with the stored one."""
    episode = load_episode(path)
    env = replay_env(episode, assets=assets)
    try:
        frames = episode.frames()
        obs, _ = _reset(env, episode)
        for step, cams, route in frames:
            if step > 0:
                obs, *_ = env.step(episode.executed[step - 1])
            what = _diff(obs, cams, route, episode.speed_mps[step])
            if what:
                return VerifyResult(episode.path, episode.header["frames"], step, what)
            if progress is not None:
                progress(step)
        return VerifyResult(episode.path, episode.header["frames"])
    finally:
        env.close()


def replay_to(
    episode: StoredEpisode, step: int, env=None, *, assets: Any = None, on_step=None, **overrides: Any
):
    """Re-simulate to observation ``step`` (0 .. steps); returns ``(env, obs, info)`` in
    exactly the recorded state there (on the embedded backend; ``overrides`` such as
    ``backend="carla"`` replay the actions on another simulator, where the state follows
    them as closely as that simulator does). ``on_step(env, obs, info, k)`` sees every frame."""
    if not 0 <= step <= episode.steps:
        raise LoopdriveError(f"{episode.path}: --from-step must lie in [0, {episode.steps}], got {step}")
    env = env if env is not None else replay_env(episode, assets=assets, **overrides)
    obs, info = _reset(env, episode)
    if on_step is not None:
        on_step(env, obs, info, 0)
    for k in range(step):
        obs, _, _, _, info = env.step(episode.executed[k])
        if on_step is not None:
            on_step(env, obs, info, k + 1)
    return env, obs, info


def drive_from(env, obs: dict, info: dict, policy: Any, *, max_steps: int = 100_000, on_step=None) -> dict:
    """Let ``policy`` (``act(obs, info)``) drive ``env`` from ``obs`` until the episode
    ends; returns the last info (score, termination reason)."""
    for _ in range(max_steps):
        obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
        if on_step is not None:
            on_step(env, obs, info)
        if terminated or truncated:
            break
    return info


class VideoWriter:
    """MP4 frames through imageio-ffmpeg (H.264, even sizes), opened on the first frame."""

    def __init__(self, path: str | Path, fps: float = 20.0):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise LoopdriveError(f"--video {self.path}: the folder {self.path.parent} does not exist")
        self.fps = fps
        self._writer = None

    def add(self, frame: np.ndarray, label: str = "") -> None:
        import imageio.v2 as imageio

        frame = np.ascontiguousarray(frame)
        if label:
            frame = frame.copy()
            h = frame.shape[0]
            cv2.putText(
                frame, label, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 230, 64), 1, cv2.LINE_AA
            )
        h, w = frame.shape[:2]
        frame = frame[: h - h % 2, : w - w % 2]
        if self._writer is None:
            self._writer = imageio.get_writer(
                self.path, fps=self.fps, codec="libx264", macro_block_size=1, quality=7, pixelformat="yuv420p"
            )
        self._writer.append_data(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_video(
    path: str | Path,
    episode: StoredEpisode,
    *,
    assets: Any = None,
    until: int | None = None,
    **overrides: Any,
) -> int:
    """Re-simulate an episode and film it (cameras, route map, HUD, who drove); returns the frame count.
    ``overrides`` (config fields, e.g. ``backend="carla"``) re-simulate it elsewhere."""
    video = VideoWriter(path, fps=round(1.0 / episode.header["env_config"]["world"]["dt_s"]))
    count = 0

    def film(env, obs, info, k):
        nonlocal count
        driver = episode.driver[k] if k < len(episode.driver) else None
        label = f"driver: {driver}" if driver else ""
        if driver and driver != "policy":
            label += f"  ({_trigger_at(episode, k)})"
        video.add(env.frame(), label)
        count += 1

    try:
        end = episode.steps if until is None else until
        env, _, _ = replay_to(episode, end, assets=assets, on_step=film, **overrides)
        env.close()
    finally:
        video.close()
    return count


def _trigger_at(episode: StoredEpisode, k: int) -> str:
    for j in range(k, -1, -1):
        if episode.intervention[j]:
            return episode.intervention[j]
    return ""
