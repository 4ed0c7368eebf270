"""Checkpoints: safetensors weights plus a JSON config that records the observation layout.

A checkpoint is a folder with two files:

* ``model.safetensors``: the :class:`~policy.network.DrivingNetwork`'s state dict
  (no pickle anywhere);
* ``config.json``: ``format`` (:data:`FORMAT`), ``layout`` (the
  :class:`~policy.network.ObservationLayout` it was trained for: camera count and
  size, route-map size and channels, command count), ``network`` (the
  :class:`~policy.network.NetworkConfig`), ``outputs`` (the flat output's names and
  widths) and ``training`` (free-form provenance: command, data, losses).

:func:`load_network` refuses a checkpoint whose layout differs from the env's, naming
each mismatched field. ``"default"`` names the small checkpoint shipped in the
repository (:data:`DEFAULT_CHECKPOINT`, produced by the command in the README).
:class:`CheckpointPolicy` wraps a checkpoint as a deterministic ``act(obs)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policy.network import OUTPUTS, DrivingNetwork, NetworkConfig, ObservationLayout
from sim.errors import LoopdriveError

__all__ = [
    "FORMAT",
    "DEFAULT_CHECKPOINT",
    "CheckpointError",
    "LayoutMismatchError",
    "resolve_checkpoint",
    "save_checkpoint",
    "read_config",
    "load_network",
    "CheckpointPolicy",
    "obs_to_tensors",
]

#: the ``format`` field of ``config.json``
FORMAT = "loopdrive-policy/1"
#: the checkpoint shipped in the repository, named ``default`` wherever a policy is taken
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "default"
_WEIGHTS, _CONFIG = "model.safetensors", "config.json"


class CheckpointError(LoopdriveError):
    """A checkpoint that is missing, malformed or unreadable."""


class LayoutMismatchError(CheckpointError):
    """A checkpoint made for another observation layout than the env's."""


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder ``path`` names (``"default"``: the shipped one)."""
    p = DEFAULT_CHECKPOINT if str(path) == "default" else Path(path)
    if p.is_file() and p.name in (_WEIGHTS, _CONFIG):
        p = p.parent
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such checkpoint folder (expected {_WEIGHTS} and {_CONFIG} in it)")
    for name in (_WEIGHTS, _CONFIG):
        if not (p / name).is_file():
            raise CheckpointError(f"{p}: not a checkpoint, {name} is missing")
    return p


def save_checkpoint(
    path: str | os.PathLike, network: DrivingNetwork, training: dict[str, Any] | None = None
) -> Path:
    """Write ``network`` to the folder ``path`` (created; files written then renamed)."""
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "format": FORMAT,
        "layout": network.layout.to_dict(),
        "network": network.config.to_dict(),
        "outputs": [[name, width] for name, width in OUTPUTS],
        "training": training or {},
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(tensors, str(out / (_WEIGHTS + ".tmp")), metadata={"format": FORMAT})
    (out / (_CONFIG + ".tmp")).write_text(json.dumps(config, indent=2) + "\n")
    os.replace(out / (_WEIGHTS + ".tmp"), out / _WEIGHTS)
    os.replace(out / (_CONFIG + ".tmp"), out / _CONFIG)
    return out


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's ``config.json``, checked for its format and fields."""
    folder = resolve_checkpoint(path)
    try:
        config = json.loads((folder / _CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder / _CONFIG}: unreadable ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{folder / _CONFIG}: not a {FORMAT} checkpoint config")
    outputs = [tuple(o) for o in config.get("outputs", [])]
    if outputs != [tuple(o) for o in OUTPUTS]:
        raise CheckpointError(
            f"{folder / _CONFIG}: outputs {outputs} differ from this network's {list(OUTPUTS)}"
        )
    return config


def load_network(path: str | os.PathLike, layout: ObservationLayout | None = None) -> DrivingNetwork:
    """The network of a checkpoint, in eval mode on the CPU. With ``layout`` (the env's),
    a checkpoint made for another layout raises :class:`LayoutMismatchError` naming the
    fields that differ."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_checkpoint(path)
    config = read_config(folder)
    try:
        saved = ObservationLayout.from_dict(config["layout"])
        net_config = NetworkConfig.from_dict(config["network"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / _CONFIG}: bad layout or network config ({exc})") from None
    if layout is not None and saved != layout:
        raise LayoutMismatchError(
            f"checkpoint {folder} was made for another observation layout "
            f"(checkpoint vs env: {', '.join(saved.mismatches(layout))}); "
            "use a checkpoint trained for this env, or build the env to match"
        )
    network = DrivingNetwork(saved, net_config)
    try:
        state = load_file(str(folder / _WEIGHTS))
        network.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{folder / _WEIGHTS}: weights do not fit the config ({exc})") from None
    return network.eval()


def obs_to_tensors(obs: dict[str, Any], batched: bool = False) -> dict[str, torch.Tensor]:
    """An env observation (single, or ``batched``) as the network's input tensors."""
    keys = ("camera", "route", "speed", "command", "command_distance_m")
    out = {k: torch.as_tensor(np.asarray(obs[k])) for k in keys}
    if not batched:
        out = {k: v.unsqueeze(0) for k, v in out.items()}
    out["command"] = out["command"].reshape(-1).long()
    return out


class CheckpointPolicy:
    """A checkpoint as a deterministic driver: ``act(obs[, info]) -> float32 [steer, accel]``
    (the :class:`envs.drivers.Policy` protocol: ``reset(seed)`` and ``act(obs, info)``).

    ``layout`` (optional) is the env's :class:`ObservationLayout`; a checkpoint made for
    another is refused. Inference runs on the CPU, without gradients."""

    def __init__(self, path: str | os.PathLike, layout: ObservationLayout | None = None):
        self.path = resolve_checkpoint(path)
        self.network = load_network(self.path, layout)
        self.layout = self.network.layout

    @classmethod
    def from_network(cls, network: DrivingNetwork) -> CheckpointPolicy:
        """The same driver around a network in memory (DAgger's rounds)."""
        out = cls.__new__(cls)
        out.path = Path("<memory>")
        out.network = network.eval()
        out.layout = network.layout
        return out

    def check_layout(self, layout: ObservationLayout) -> None:
        """Raise :class:`LayoutMismatchError` unless ``layout`` is the checkpoint's."""
        if layout != self.layout:
            raise LayoutMismatchError(
                f"checkpoint {self.path} was made for another observation layout "
                f"(checkpoint vs env: {', '.join(self.layout.mismatches(layout))})"
            )

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the policy is deterministic and keeps no state."""

    def _check_obs(self, obs: dict[str, Any], batched: bool) -> None:
        """An observation of another layout (another camera size or rig) is refused, naming it."""
        camera, route = np.shape(obs["camera"]), np.shape(obs["route"])
        if batched:
            camera, route = camera[1:], route[1:]
        lay = self.layout
        want_cam = (lay.camera_count, lay.camera_height_px, lay.camera_width_px, 3)
        want_route = (lay.route_size_px, lay.route_size_px, lay.route_channels)
        if camera != want_cam or route != want_route:
            raise LayoutMismatchError(
                f"checkpoint {self.path} was made for cameras {want_cam} and a route map {want_route} "
                f"(n, H, W, C), but the env gives {camera} and {route}: set the env's rig and camera size "
                "to the checkpoint's"
            )

    @torch.inference_mode()
    def act(self, obs: dict[str, Any], info: dict[str, Any] | None = None) -> np.ndarray:
        """``float32 [steer, accel]`` for one observation (``info`` is ignored: no privileged input)."""
        self._check_obs(obs, batched=False)
        out = self.network.forward_obs(obs_to_tensors(obs))
        return out[0, :2].numpy().astype(np.float32)

    @torch.inference_mode()
    def act_batch(self, obs: dict[str, Any]) -> np.ndarray:
        """Actions ``(B, 2)`` for a batched observation (a vector env's)."""
        self._check_obs(obs, batched=True)
        return self.network.forward_obs(obs_to_tensors(obs, batched=True))[:, :2].numpy().astype(np.float32)
