"""Training data for behaviour cloning: observations with the autopilot's action for each.

:class:`Samples` is the plain data interface the trainers read: one numpy array per
field, frames along the first axis. Collection (:mod:`policy.collect`), DAgger and the
episode store all produce it; :class:`SampleDataset` serves it to a torch
``DataLoader``. ``save_npz``/``load_npz`` keep a set on disk without pickle.

Fields (``N`` frames):

* the observation as the env gives it: ``camera`` uint8 ``(N, cams, H, W, 3)``,
  ``route`` uint8 ``(N, S, S, C)``, ``speed`` float32 ``(N, 1)``, ``command`` int64
  ``(N,)``, ``command_distance_m`` float32 ``(N, 1)``;
* ``action``: float32 ``(N, 2)``, the privileged autopilot's ``[steer, accel]`` for that
  state (the label, also where something else was driving);
* ``waypoints``: float32 ``(N, 2 x len(WAYPOINT_TIMES_S))``, the ego's future
  positions in its frame at that step (m / ``WAYPOINT_SCALE_M``), with
  ``waypoints_valid`` bool ``(N,)`` true where the autopilot itself drove that future;
* ``weight``: float32 ``(N,)``, the frame's weight in the loss (takeovers weigh more).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from policy.network import WAYPOINT_SCALE_M, WAYPOINT_TIMES_S
from sim.errors import LoopdriveError

__all__ = ["Samples", "SampleDataset", "DataError", "future_waypoints", "OBS_FIELDS"]

#: the observation's fields in a :class:`Samples`
OBS_FIELDS: tuple[str, ...] = ("camera", "route", "speed", "command", "command_distance_m")


class DataError(LoopdriveError):
    """A training set that cannot be used (empty, malformed, unreadable)."""


@dataclass(frozen=True)
class Samples:
    """Frames with their labels (see the module docstring)."""

    camera: np.ndarray
    route: np.ndarray
    speed: np.ndarray
    command: np.ndarray
    command_distance_m: np.ndarray
    action: np.ndarray
    waypoints: np.ndarray
    waypoints_valid: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.camera)
        for f in dataclasses.fields(self):
            if len(getattr(self, f.name)) != n:
                raise DataError(
                    f"samples: field {f.name} has {len(getattr(self, f.name))} frames, camera {n}"
                )

    def __len__(self) -> int:
        return len(self.camera)

    @classmethod
    def concat(cls, parts: list[Samples]) -> Samples:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise DataError("no frames to train on: every part is empty")
        for f in dataclasses.fields(cls):
            shapes = sorted({getattr(p, f.name).shape[1:] for p in parts})
            if len(shapes) > 1:
                raise DataError(
                    f"frames of different layouts cannot train one network: {f.name} "
                    f"{' vs '.join(str(s) for s in shapes)} (collect with one --rig)"
                )
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)}
        )

    def subset(self, index: np.ndarray) -> Samples:
        return Samples(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (.npz, uncompressed; written then renamed)."""
        out = Path(path)
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        os.replace(tmp, out)
        return out

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> Samples:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: no such training set")
        try:
            with np.load(p, allow_pickle=False) as data:
                missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
                if missing:
                    raise DataError(f"{p}: not a training set, missing {', '.join(missing)}")
                return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: unreadable training set ({exc})") from None


def future_waypoints(pose: np.ndarray, expert: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The ego's future positions at :data:`WAYPOINT_TIMES_S` in its own frame at each step.

    ``pose``: ``(T, 3)`` x, y (m), yaw (rad) per step of one episode; ``expert``: ``(T,)``
    true where the autopilot's own action was applied. Returns ``(T, 2K)`` in units of
    :data:`WAYPOINT_SCALE_M` and a ``(T,)`` mask: valid where every step up to the last
    waypoint exists and was driven by the autopilot."""
    t_count = len(pose)
    offsets = [round(t / dt_s) for t in WAYPOINT_TIMES_S]
    horizon = offsets[-1]
    out = np.zeros((t_count, 2 * len(offsets)), np.float32)
    valid = np.zeros(t_count, np.bool_)
    if t_count == 0:
        return out, valid
    cos, sin = np.cos(pose[:, 2]), np.sin(pose[:, 2])
    for k, off in enumerate(offsets):
        j = np.minimum(np.arange(t_count) + off, t_count - 1)
        dx, dy = pose[j, 0] - pose[:, 0], pose[j, 1] - pose[:, 1]
        out[:, 2 * k] = (cos * dx + sin * dy) / WAYPOINT_SCALE_M  # forward
        out[:, 2 * k + 1] = (-sin * dx + cos * dy) / WAYPOINT_SCALE_M  # right (y right, yaw clockwise)
    bad = np.concatenate([~expert.astype(np.bool_), np.ones(horizon, np.bool_)])
    bad_run = np.convolve(bad.astype(np.int32), np.ones(horizon + 1, np.int32), mode="full")
    valid = bad_run[horizon : horizon + t_count] == 0
    return out, valid


class SampleDataset(Dataset):
    """A :class:`Samples` as a torch ``Dataset`` of dicts of tensors (no copies up front)."""

    def __init__(self, samples: Samples):
        if len(samples) == 0:
            raise DataError("no frames to train on: the training set is empty")
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.samples
        return {f.name: torch.as_tensor(getattr(s, f.name)[i]) for f in dataclasses.fields(s)}
