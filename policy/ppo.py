"""PPO with Stable-Baselines3 on the batched env, with the driving features extractor.

:func:`make_ppo` builds ``PPO("MultiInputPolicy", DrivingSB3VecEnv(...))`` with
:class:`~policy.features.DrivingFeaturesExtractor` and an actor and critic of one
hidden layer (ReLU). Started from a behaviour-cloned checkpoint (``init``), the
extractor takes its encoder, the actor's hidden layer its head and the action mean its
action layer (the BC network squashes that layer with tanh, PPO clips its Gaussian's
samples to [-1, 1] instead, so the start matches BC in the middle of the range).
:func:`train_ppo` runs it, logging mean episode rewards (``VecMonitor``) to
TensorBoard and returning them per rollout.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from envs.config import DrivingEnvConfig
from sim.errors import ConfigError

__all__ = ["PPOConfig", "make_ppo", "train_ppo", "RewardLog", "evaluate_returns", "ppo_to_network"]


@dataclass(frozen=True)
class PPOConfig:
    """Stable-Baselines3 PPO settings that matter here."""

    num_envs: int = field(default=4, metadata={"help": "worlds stepped together"})
    n_steps: int = field(default=128, metadata={"help": "steps per world per rollout"})
    batch_size: int = field(default=128, metadata={"help": "minibatch size"})
    n_epochs: int = field(default=4, metadata={"help": "passes per rollout"})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate"})
    gamma: float = field(default=0.99, metadata={"help": "discount"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus"})
    log_std_init: float = field(default=-1.0, metadata={"help": "initial log std of the Gaussian"})
    share_encoder: bool = field(
        default=False,
        metadata={
            "help": "one encoder for actor and critic (off: the critic's own copy, so its early, large "
            "value errors do not wash out BC features)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the env and the networks"})
    device: str = field(default="cpu", metadata={"help": "torch device (cpu, cuda, auto)"})

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"PPOConfig.lr must be > 0, got {self.lr}")


def _copy_bc(model: Any, init: str) -> None:
    from policy.checkpoint import load_network
    from policy.features import load_encoder_weights

    policy = model.policy
    network = load_network(init)
    load_encoder_weights(policy.features_extractor, network)
    if not policy.share_features_extractor:
        load_encoder_weights(policy.vf_features_extractor, network)
    with torch.no_grad():
        hidden = policy.mlp_extractor.policy_net[0]
        hidden.weight.copy_(network.head[0].weight)
        hidden.bias.copy_(network.head[0].bias)
        policy.action_net.weight.copy_(network.action.weight)
        policy.action_net.bias.copy_(network.action.bias)


def make_ppo(
    config: PPOConfig,
    env_config: DrivingEnvConfig | None = None,
    *,
    init: str | None = None,
    log_dir: str | os.PathLike | None = None,
    assets: Any = None,
) -> Any:
    """A PPO model on a :class:`envs.DrivingSB3VecEnv` (wrapped in ``VecMonitor``);
    ``assets`` (:class:`envs.world.SharedAssets`) lets it share loaded maps with other envs."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from envs.sb3 import DrivingSB3VecEnv
    from policy.features import DrivingFeaturesExtractor
    from policy.network import NetworkConfig

    env_config = (env_config or DrivingEnvConfig()).replace(autopilot_in_info=False)
    venv = DrivingSB3VecEnv(config.num_envs, env_config, assets=assets)
    venv.seed(config.seed)
    env = VecMonitor(venv)
    hidden = NetworkConfig().hidden // 2
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.lr,
        gamma=config.gamma,
        ent_coef=config.ent_coef,
        seed=config.seed,
        device=config.device,
        tensorboard_log=str(log_dir) if log_dir is not None else None,
        policy_kwargs=dict(
            features_extractor_class=DrivingFeaturesExtractor,
            net_arch=dict(pi=[hidden], vf=[hidden]),
            activation_fn=torch.nn.ReLU,
            log_std_init=config.log_std_init,
            share_features_extractor=config.share_encoder,
        ),
        verbose=0,
    )
    if init is not None:
        _copy_bc(model, init)
    return model


def RewardLog() -> Any:  # noqa: N802 - a class built on first use (SB3 is imported lazily)
    """An SB3 callback that keeps the mean episode reward (SB3's last 100 episodes) after
    each rollout in ``.means``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _RewardLog(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.means: list[float] = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            buf = self.model.ep_info_buffer
            if buf:
                self.means.append(float(np.mean([e["r"] for e in buf])))

    return _RewardLog()


def _progress_bar(timesteps: int) -> Any:
    """An SB3 callback showing a tqdm bar of env steps (SB3's own bar needs ``rich``)."""
    import sys

    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    class _Bar(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=timesteps, desc="ppo", unit="step", file=sys.stderr)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return _Bar()


def train_ppo(model: Any, timesteps: int, *, progress: bool = False) -> list[float]:
    """Run PPO for ``timesteps`` env steps (a progress bar on stderr with ``progress``);
    the mean episode reward (last 100 episodes) after each rollout."""
    log = RewardLog()
    callbacks = [log, _progress_bar(timesteps)] if progress else [log]
    model.learn(total_timesteps=timesteps, callback=callbacks)
    return log.means


def ppo_to_network(model: Any, init: str | None = None) -> Any:
    """The PPO policy's deterministic actor as a :class:`~policy.network.DrivingNetwork`
    checkpoint (no pickle): its encoder, hidden layer and action mean (squashed by the
    network's tanh where PPO clips). The waypoint head is ``init``'s, else untrained."""
    from policy.checkpoint import load_network
    from policy.network import DrivingNetwork

    policy = model.policy
    extractor = policy.features_extractor
    network = (
        load_network(init) if init is not None else DrivingNetwork(extractor.layout, extractor.encoder.config)
    )
    network.encoder.load_state_dict(extractor.encoder.state_dict())
    with torch.no_grad():
        hidden = policy.mlp_extractor.policy_net[0]
        network.head[0].weight.copy_(hidden.weight)
        network.head[0].bias.copy_(hidden.bias)
        network.action.weight.copy_(policy.action_net.weight)
        network.action.bias.copy_(policy.action_net.bias)
    return network.cpu().eval()


def evaluate_returns(
    model: Any, env_config: DrivingEnvConfig, episodes: int, seed: int, *, assets: Any = None
) -> list[float]:
    """Undiscounted returns of ``model``'s deterministic policy on ``episodes`` fixed
    episodes: world k of a batch of ``episodes`` worlds reset with ``seed + k``, each
    driven to the end of its first episode (the same episodes for every model);
    ``assets`` as for :func:`make_ppo`."""
    from envs.sb3 import DrivingSB3VecEnv

    if episodes < 1:
        raise ConfigError(f"evaluation episodes must be >= 1, got {episodes}")
    venv = DrivingSB3VecEnv(episodes, env_config.replace(autopilot_in_info=False), assets=assets)
    try:
        venv.seed(seed)
        obs = venv.reset()
        returns = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            actions, _ = model.predict(obs, deterministic=True)
            obs, rewards, dones, _ = venv.step(actions)
            returns += np.where(running, rewards, 0.0)
            running &= ~dones
        return returns.tolist()
    finally:
        venv.close()
