"""``loopdrive bench ppo``'s parts: the fixed-episode returns and the command's checks.

The benchmark itself (minutes of PPO) is run by hand; its figures are in the README.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import DrivingEnvConfig
from policy.ppo import PPOConfig, evaluate_returns, make_ppo
from scripts.cli import main
from sim.infractions import InfractionConfig
from tests.test_env import SMALL

#: a stuck car's episode ends after 0.5 s (10 steps) standing still, a moving one after 2 s
TINY = DrivingEnvConfig(
    **{**SMALL, "infractions": InfractionConfig(blocked_s=0.5, timeout_base_s=2.0, timeout_s_per_m=0.0)}
)


@pytest.fixture(scope="module")
def model():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield make_ppo(PPOConfig(num_envs=2, n_steps=16, batch_size=16, n_epochs=1), TINY)
    finally:
        torch.set_num_threads(threads)


def test_fixed_episode_returns_repeat_and_differ_by_seed(model):
    first = evaluate_returns(model, TINY, 3, seed=7)
    again = evaluate_returns(model, TINY, 3, seed=7)
    other = evaluate_returns(model, TINY, 3, seed=8)
    assert len(first) == 3 and np.all(np.isfinite(first))
    assert first == again  # the same episodes, the same deterministic policy
    assert first != other  # other routes


def test_fixed_episode_returns_follow_the_policy(model):
    """Another action mean gives other returns on the same episodes."""
    import torch

    before = evaluate_returns(model, TINY, 2, seed=3)
    bias = model.policy.action_net.bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias.copy_(torch.tensor([0.0, 1.0]))  # full throttle, straight
    try:
        after = evaluate_returns(model, TINY, 2, seed=3)
    finally:
        with torch.no_grad():
            bias.copy_(saved)
    # standing still ends the episode after 0.5 s with nothing gained or lost; driving
    # runs into the 2 s time limit (-30) with some progress
    assert max(abs(r) for r in before) < 1e-3
    assert all(-30.0 < r < -1.0 for r in after)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--timesteps", "0"], "must be >= 1"),
        (["--eval-episodes", "0"], "must be >= 1"),
        (["--route-length", "50", "10"], "--route-length"),
        (["--blocked-s", "0"], "--blocked-s"),
        (["--n-steps", "0"], "n_steps must be >= 1"),
        (["--traffic", "-1", "0"], "--traffic"),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, argv, says):
    assert main(["bench", "ppo", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("loopdrive: error: ") and says in err and "\n" not in err


def test_evaluation_needs_an_episode(model):
    from sim.errors import ConfigError

    with pytest.raises(ConfigError, match="episodes"):
        evaluate_returns(model, TINY, 0, seed=0)
