"""The end-to-end driving network: cameras, route map, speed and command in; steer and accel out.

Pure torch, no I/O. The network is built from an :class:`ObservationLayout` (the
shapes of the env's observation, :mod:`envs.spaces`) and a :class:`NetworkConfig`:

* :class:`CameraEncoder`: a few strided convolutions sized for the default 160x80
  camera, then one linear layer; a rig's cameras share its weights and a fusion layer
  joins their features (in rig order).
* :class:`RouteEncoder`: strided convolutions over the 64x64 low-definition route map.
* speed (m/s), the next maneuver (one-hot of the command) and the distance to it enter
  the trunk directly, normalised inside the model.
* heads: ``action`` = ``[steer, accel]`` in [-1, 1] (tanh), and the auxiliary head
  ``waypoints``: the ego's own future positions at :data:`WAYPOINT_TIMES_S`, in its
  frame at the current step (x forward, y right, metres / :data:`WAYPOINT_SCALE_M`), a
  label the simulator gives for free.

Every position of the flat output has a name: :data:`OUTPUT_SLICES` (``steer``,
``accel``, ``waypoints``); :func:`split_outputs` turns the flat tensor into a dict.

Inputs, as the env gives them (batched): ``camera`` uint8 ``(B, N, H, W, 3)``,
``route`` uint8 ``(B, S, S, C)``, ``speed`` float ``(B, 1)``, ``command`` int64 ``(B,)``
(RoadOption value, 0 for VOID) and ``command_distance_m`` float ``(B, 1)``.
:class:`DrivingEncoder` also takes floats in 0-255 and a one-hot command, which is what
Stable-Baselines3 hands a features extractor (:mod:`policy.features`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "ObservationLayout",
    "NetworkConfig",
    "CameraEncoder",
    "RouteEncoder",
    "DrivingEncoder",
    "DrivingNetwork",
    "OUTPUTS",
    "OUTPUT_SLICES",
    "OUTPUT_SIZE",
    "ACTION_SLICE",
    "WAYPOINT_TIMES_S",
    "WAYPOINT_SCALE_M",
    "split_outputs",
]

#: the auxiliary head's times ahead (s) of the future ego positions
WAYPOINT_TIMES_S: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
#: waypoint coordinates are given to and predicted by the network in units of this (m)
WAYPOINT_SCALE_M = 10.0
#: the flat output, in order: (name, width)
OUTPUTS: tuple[tuple[str, int], ...] = (("steer", 1), ("accel", 1), ("waypoints", 2 * len(WAYPOINT_TIMES_S)))


def _slices(outputs: tuple[tuple[str, int], ...]) -> dict[str, slice]:
    out, start = {}, 0
    for name, width in outputs:
        out[name] = slice(start, start + width)
        start += width
    return out


#: name -> positions in the flat output
OUTPUT_SLICES: dict[str, slice] = _slices(OUTPUTS)
#: width of the flat output
OUTPUT_SIZE = sum(width for _, width in OUTPUTS)
#: ``[steer, accel]`` in the flat output (the env's action order)
ACTION_SLICE = slice(OUTPUT_SLICES["steer"].start, OUTPUT_SLICES["accel"].stop)

_SPEED_SCALE_MPS = 10.0
_DISTANCE_SCALE_M = 100.0
_DISTANCE_NEAR_M = 20.0


def split_outputs(flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """The flat output ``(B, OUTPUT_SIZE)`` as named parts (``action`` is steer and accel)."""
    parts = {name: flat[:, s] for name, s in OUTPUT_SLICES.items()}
    parts["action"] = flat[:, ACTION_SLICE]
    return parts


@dataclass(frozen=True)
class ObservationLayout:
    """The observation shapes a network is built for (recorded in every checkpoint)."""

    camera_count: int = 1
    camera_height_px: int = 80
    camera_width_px: int = 160
    route_size_px: int = 64
    route_channels: int = 2
    command_count: int = 7

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ObservationLayout.{f.name} must be a positive integer, got {value!r}")

    @classmethod
    def from_space(cls, space: Any) -> ObservationLayout:
        """The layout of a Gymnasium ``Dict`` observation space of the driving env."""
        n, h, w, _ = space["camera"].shape
        s, _, c = space["route"].shape
        return cls(int(n), int(h), int(w), int(s), int(c), int(space["command"].n))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservationLayout:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(data) - names), sorted(names - set(data))
        if unknown or missing:
            raise ValueError(f"observation layout: unknown fields {unknown}, missing fields {missing}")
        return cls(**data)

    def mismatches(self, other: ObservationLayout) -> list[str]:
        """``"field: self's value vs other's"`` for every field that differs."""
        return [
            f"{f.name} {getattr(self, f.name)} vs {getattr(other, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


@dataclass(frozen=True)
class NetworkConfig:
    """Widths of the network's parts."""

    camera_channels: tuple[int, ...] = (24, 32, 48, 64)
    camera_features: int = 128
    route_channels: tuple[int, ...] = (16, 32, 32)
    route_features: int = 64
    hidden: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "camera_channels", tuple(int(c) for c in self.camera_channels))
        object.__setattr__(self, "route_channels", tuple(int(c) for c in self.route_channels))
        widths = [*self.camera_channels, *self.route_channels]
        widths += [self.camera_features, self.route_features, self.hidden]
        if not self.camera_channels or not self.route_channels or any(w < 1 for w in widths):
            raise ValueError(f"NetworkConfig: every width must be a positive integer, got {self}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"network config: unknown fields {unknown}")
        return cls(**data)


def _conv_stack(in_channels: int, channels: tuple[int, ...], first_kernel: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, out in enumerate(channels):
        kernel = first_kernel if k == 0 else 3
        layers += [nn.Conv2d(in_channels, out, kernel, stride=2, padding=kernel // 2), nn.ReLU()]
        in_channels = out
    return nn.Sequential(*layers)


def _out_size(size: int, count: int) -> int:
    for _ in range(count):
        size = (size + 1) // 2  # stride 2, "same" padding
    return size


class CameraEncoder(nn.Module):
    """One camera image ``(B, H, W, 3)`` (0-255, any dtype) -> ``(B, camera_features)``."""

    def __init__(self, layout: ObservationLayout, config: NetworkConfig):
        super().__init__()
        self.convs = _conv_stack(3, config.camera_channels, 5)
        n = len(config.camera_channels)
        h, w = _out_size(layout.camera_height_px, n), _out_size(layout.camera_width_px, n)
        self.fc = nn.Sequential(
            nn.Linear(config.camera_channels[-1] * h * w, config.camera_features), nn.ReLU()
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() * (1.0 / 255.0) - 0.5
        return self.fc(self.convs(x).flatten(1))


class RouteEncoder(nn.Module):
    """The route map ``(B, S, S, C)`` (0-255) -> ``(B, route_features)``."""

    def __init__(self, layout: ObservationLayout, config: NetworkConfig):
        super().__init__()
        self.convs = _conv_stack(layout.route_channels, config.route_channels, 3)
        s = _out_size(layout.route_size_px, len(config.route_channels))
        self.fc = nn.Sequential(
            nn.Linear(config.route_channels[-1] * s * s, config.route_features), nn.ReLU()
        )

    def forward(self, route: torch.Tensor) -> torch.Tensor:
        x = route.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
        return self.fc(self.convs(x).flatten(1))


class DrivingEncoder(nn.Module):
    """Every observation part -> one feature vector ``(B, features_dim)``.

    ``forward(camera, route, speed, command_onehot, command_distance_m)``: the camera
    ``(B, N, H, W, 3)`` and the route map in 0-255 (uint8 or float), the command one-hot
    ``(B, command_count)``. The rig's cameras share one :class:`CameraEncoder`."""

    def __init__(self, layout: ObservationLayout, config: NetworkConfig | None = None):
        super().__init__()
        config = config or NetworkConfig()
        self.layout, self.config = layout, config
        self.camera = CameraEncoder(layout, config)
        n = layout.camera_count
        self.fusion = (
            nn.Sequential(nn.Linear(n * config.camera_features, config.camera_features), nn.ReLU())
            if n > 1
            else nn.Identity()
        )
        self.route = RouteEncoder(layout, config)
        scalars = 3  # speed, distance (linear and near-field)
        width = config.camera_features + config.route_features + layout.command_count + scalars
        self.trunk = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU())
        self.features_dim = config.hidden

    def forward(
        self,
        camera: torch.Tensor,
        route: torch.Tensor,
        speed: torch.Tensor,
        command_onehot: torch.Tensor,
        command_distance_m: torch.Tensor,
    ) -> torch.Tensor:
        b, n = camera.shape[0], camera.shape[1]
        cams = self.camera(camera.reshape(b * n, *camera.shape[2:])).reshape(b, -1)
        d = command_distance_m.reshape(b, 1).float()
        scalars = torch.cat(
            [
                speed.reshape(b, 1).float() / _SPEED_SCALE_MPS,
                d / _DISTANCE_SCALE_M,
                torch.exp(-d / _DISTANCE_NEAR_M),
            ],
            dim=1,
        )
        onehot = command_onehot.reshape(b, -1).float()
        x = torch.cat([self.fusion(cams), self.route(route), onehot, scalars], dim=1)
        return self.trunk(x)


class DrivingNetwork(nn.Module):
    """Encoder and heads; ``forward`` returns the flat output ``(B, OUTPUT_SIZE)``
    (:data:`OUTPUT_SLICES`), the action part already in [-1, 1]."""

    def __init__(self, layout: ObservationLayout, config: NetworkConfig | None = None):
        super().__init__()
        self.layout = layout
        self.config = config or NetworkConfig()
        self.encoder = DrivingEncoder(layout, self.config)
        hidden = self.config.hidden
        self.head = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU())
        self.action = nn.Linear(hidden // 2, 2)
        self.waypoints = nn.Linear(
            hidden // 2, OUTPUT_SLICES["waypoints"].stop - OUTPUT_SLICES["waypoints"].start
        )

    def forward(
        self,
        camera: torch.Tensor,
        route: torch.Tensor,
        speed: torch.Tensor,
        command: torch.Tensor,
        command_distance_m: torch.Tensor,
    ) -> torch.Tensor:
        onehot = nn.functional.one_hot(command.reshape(-1).long(), self.layout.command_count)
        h = self.head(self.encoder(camera, route, speed, onehot, command_distance_m))
        return torch.cat([torch.tanh(self.action(h)), self.waypoints(h)], dim=1)

    def forward_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``forward`` on a batched observation dict (the env's keys)."""
        return self(obs["camera"], obs["route"], obs["speed"], obs["command"], obs["command_distance_m"])
