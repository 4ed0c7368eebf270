"""Behaviour cloning: fit the network to the autopilot's actions with a torch DataLoader.

:func:`train_bc` trains a :class:`~policy.network.DrivingNetwork` (new, or the one it
is given, for DAgger's rounds) on :class:`~policy.data.Samples`:

* loss = ``steer_weight`` x L1(steer) + L1(accel) + ``waypoint_weight`` x L1(waypoints,
  where valid), each frame weighted by ``Samples.weight``;
* Adam with a cosine learning rate, seeded shuffling and initialisation, a held-out
  split (``val_share``) scored after each epoch;
* a tqdm bar (``progress``) and TensorBoard scalars (``log_dir``): ``train/loss``,
  ``train/steer_l1``, ``train/accel_l1``, ``train/waypoints_l1`` per step, ``val/*`` per
  epoch.

It returns the network and a :class:`BCReport` (per-epoch losses), which the
checkpoint's ``training`` field records.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from policy.data import DataError, SampleDataset, Samples
from policy.network import OUTPUT_SLICES, DrivingNetwork, NetworkConfig, ObservationLayout
from sim.errors import ConfigError

__all__ = ["BCConfig", "BCReport", "train_bc", "layout_of_samples", "bc_losses"]


@dataclass(frozen=True)
class BCConfig:
    """How behaviour cloning trains."""

    epochs: int = field(default=8, metadata={"help": "passes over the training set"})
    batch_size: int = field(default=64, metadata={"help": "frames per step"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate (Adam, cosine decay)"})
    weight_decay: float = field(default=1e-5, metadata={"help": "Adam weight decay"})
    steer_weight: float = field(default=2.0, metadata={"help": "weight of the steering loss"})
    waypoint_weight: float = field(default=0.2, metadata={"help": "weight of the auxiliary waypoint loss"})
    val_share: float = field(default=0.1, metadata={"help": "share of frames held out for validation"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and shuffling"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)"})
    device: str = field(default="cpu", metadata={"help": "torch device to train on (cpu, cuda)"})

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"BCConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "weight_decay", "steer_weight", "waypoint_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"BCConfig.{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.val_share < 1:
            raise ConfigError(f"BCConfig.val_share must lie in [0, 1), got {self.val_share}")


@dataclass
class BCReport:
    """Losses per epoch (mean over the epoch's frames) and the frames used."""

    train_frames: int = 0
    val_frames: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_steer_l1: list[float] = field(default_factory=list)
    val_accel_l1: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def layout_of_samples(samples: Samples) -> ObservationLayout:
    """The observation layout of a training set."""
    _, n, h, w, _ = samples.camera.shape
    _, s, _, c = samples.route.shape
    return ObservationLayout(int(n), int(h), int(w), int(s), int(c))


def bc_losses(out: torch.Tensor, batch: dict[str, torch.Tensor], config: BCConfig) -> dict[str, torch.Tensor]:
    """The named weighted losses of a batch (``loss`` is their sum)."""
    weight = batch["weight"].float()
    norm = weight.sum().clamp_min(1e-6)
    action = batch["action"].float()
    steer = ((out[:, OUTPUT_SLICES["steer"]] - action[:, 0:1]).abs().squeeze(1) * weight).sum() / norm
    accel = ((out[:, OUTPUT_SLICES["accel"]] - action[:, 1:2]).abs().squeeze(1) * weight).sum() / norm
    valid = batch["waypoints_valid"].float() * weight
    wp_err = (out[:, OUTPUT_SLICES["waypoints"]] - batch["waypoints"].float()).abs().mean(1)
    waypoints = (wp_err * valid).sum() / valid.sum().clamp_min(1e-6)
    loss = config.steer_weight * steer + accel + config.waypoint_weight * waypoints
    return {"loss": loss, "steer_l1": steer, "accel_l1": accel, "waypoints_l1": waypoints}


def _split(n: int, val_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_val = int(round(n * val_share)) if n > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _forward(net: DrivingNetwork, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return net(batch["camera"], batch["route"], batch["speed"], batch["command"], batch["command_distance_m"])


def _to(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def _validate(net: DrivingNetwork, loader: DataLoader, config: BCConfig) -> dict[str, float]:
    net.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in loader:
        batch = _to(batch, config.device)
        losses = bc_losses(_forward(net, batch), batch, config)
        b = len(batch["action"])
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * b
        count += b
    net.train()
    return {k: v / max(count, 1) for k, v in sums.items()}


class _Trainer:
    """The optimisation step and its logging."""

    def __init__(self, network, opt, sched, writer, bar, config: BCConfig):
        self.network, self.opt, self.sched = network, opt, sched
        self.writer, self.bar, self.config = writer, bar, config
        self.step = 0

    def log(self, prefix: str, values: dict[str, Any], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", float(v), step)

    def epoch(self, loader: DataLoader, epoch: int) -> float:
        """One pass; returns the mean training loss."""
        running, seen = 0.0, 0
        for batch in loader:
            batch = _to(batch, self.config.device)
            losses = bc_losses(_forward(self.network, batch), batch, self.config)
            self.opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            self.opt.step()
            self.sched.step()
            b = len(batch["action"])
            running, seen, self.step = running + float(losses["loss"].detach()) * b, seen + b, self.step + 1
            self.log("train", {k: v.detach() for k, v in losses.items()}, self.step)
            self.bar.update(1)
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{running / seen:.4f}")
        return running / max(seen, 1)


def train_bc(
    samples: Samples,
    config: BCConfig | None = None,
    *,
    network: DrivingNetwork | None = None,
    network_config: NetworkConfig | None = None,
    log_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[DrivingNetwork, BCReport]:
    """Behaviour cloning on ``samples`` (see the module docstring)."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    config = config or BCConfig()
    if len(samples) == 0:
        raise DataError("no usable frames to train on: the training set is empty")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    layout = layout_of_samples(samples)
    if network is None:
        network = DrivingNetwork(layout, network_config)
    elif network.layout != layout:
        raise DataError(
            f"training set layout differs from the network's: {', '.join(network.layout.mismatches(layout))}"
        )
    network = network.to(config.device).train()
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = _split(len(samples), config.val_share, rng)
    gen = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(
        SampleDataset(samples.subset(train_idx)), batch_size=config.batch_size, shuffle=True, generator=gen
    )
    val_loader = DataLoader(SampleDataset(samples.subset(val_idx)), batch_size=256) if len(val_idx) else None
    opt = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * len(train_loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total))
    )
    writer = SummaryWriter(str(log_dir)) if log_dir is not None else None
    report = BCReport(train_frames=len(train_idx), val_frames=len(val_idx))
    bar = tqdm(total=total, unit="batch", desc="bc", disable=not progress)
    trainer = _Trainer(network, opt, sched, writer, bar, config)
    for epoch in range(config.epochs):
        report.train_loss.append(trainer.epoch(train_loader, epoch))
        if val_loader is not None:
            val = _validate(network, val_loader, config)
            report.val_loss.append(val["loss"])
            report.val_steer_l1.append(val["steer_l1"])
            report.val_accel_l1.append(val["accel_l1"])
            trainer.log("val", val, epoch + 1)
    bar.close()
    if writer is not None:
        writer.close()
    return network.cpu().eval(), report
