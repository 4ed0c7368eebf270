"""The driving encoder as a Stable-Baselines3 features extractor.

``PPO("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=DrivingFeaturesExtractor,
features_extractor_kwargs=dict(normalized_images=True)))``
builds the same :class:`~policy.network.DrivingEncoder` the behaviour-cloned network
uses, from the env's observation space, so BC weights load into it
(:func:`load_encoder_weights`).

Stable-Baselines3 preprocesses a ``Dict`` observation before the extractor sees it:
the camera ``(N, H, W, 3)`` is no image space to SB3 and arrives as floats, unchanged;
the route map ``(S, S, C)`` uint8 is one, so SB3's ``VecTransposeImage`` hands it over
channel-first ``(C, S, S)`` (and, unless ``normalize_images=False``, divided by 255);
the ``Discrete`` command becomes a one-hot vector. The extractor undoes the route's
transpose and scaling, so the encoder sees what the BC network sees.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from policy.network import DrivingEncoder, DrivingNetwork, NetworkConfig, ObservationLayout

__all__ = ["DrivingFeaturesExtractor", "load_encoder_weights"]


class DrivingFeaturesExtractor(BaseFeaturesExtractor):
    """``DrivingFeaturesExtractor(observation_space, network_config=None, normalized_images=True)``;
    ``normalized_images`` must be the policy's ``normalize_images`` (SB3's default True)."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        network_config: NetworkConfig | None = None,
        normalized_images: bool = True,
    ):
        route_shape = observation_space["route"].shape
        # channel-first after SB3's VecTransposeImage: (C, S, S) with C != S
        self.route_channel_first = route_shape[1] == route_shape[2] and route_shape[0] != route_shape[1]
        if self.route_channel_first:
            c, s, _ = route_shape
            space = dict(observation_space.spaces)
            space["route"] = spaces.Box(0, 255, (s, s, c), observation_space["route"].dtype)
            layout = ObservationLayout.from_space(spaces.Dict(space))
        else:
            layout = ObservationLayout.from_space(observation_space)
        config = network_config or NetworkConfig()
        super().__init__(observation_space, features_dim=config.hidden)
        self.layout = layout
        self.route_scale = 255.0 if (self.route_channel_first and normalized_images) else 1.0
        self.encoder = DrivingEncoder(layout, config)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        route = observations["route"]
        if self.route_channel_first:
            route = route.permute(0, 2, 3, 1) * self.route_scale
        return self.encoder(
            observations["camera"],
            route,
            observations["speed"],
            observations["command"],
            observations["command_distance_m"],
        )


def load_encoder_weights(extractor: DrivingFeaturesExtractor, network: DrivingNetwork) -> None:
    """Copy a behaviour-cloned network's encoder into ``extractor`` (layouts must match)."""
    if network.layout != extractor.layout:
        from policy.checkpoint import LayoutMismatchError

        raise LayoutMismatchError(
            "BC checkpoint and env differ in observation layout "
            f"(checkpoint vs env: {', '.join(network.layout.mismatches(extractor.layout))})"
        )
    extractor.encoder.load_state_dict(network.encoder.state_dict())
