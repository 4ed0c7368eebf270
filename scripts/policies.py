"""The one place where the commands turn a ``--policy`` value into a policy.

:func:`make_policy` knows ``random`` and ``autopilot`` (:mod:`envs.drivers`); a trained
checkpoint (``CKPT``: a path) plugs in here once the policy package loads them.
"""

from __future__ import annotations

from pathlib import Path

from envs.drivers import AutopilotPolicy, Policy, RandomPolicy
from sim.errors import LoopdriveError

__all__ = ["POLICY_HELP", "make_policy", "policy_id"]

POLICY_HELP = "random, random-forward (accel in [-0.2, 1]), autopilot, or a checkpoint file (CKPT)"


def make_policy(spec: str, seed: int = 0) -> Policy:
    """The policy named by ``spec``: ``random`` (uniform [-1, 1] actions, seeded),
    ``random-forward`` (the same with accel in [-0.2, 1]),
    ``autopilot`` (the privileged autopilot), or a checkpoint path."""
    if spec == "random":
        return RandomPolicy(seed)
    if spec == "random-forward":
        return RandomPolicy(seed, accel_range=(-0.2, 1.0))
    if spec == "autopilot":
        return AutopilotPolicy()
    path = Path(spec)
    if path.suffix or path.exists():
        if not path.is_file():
            raise LoopdriveError(f"--policy {spec}: no such checkpoint file")
        try:
            from policy import load_policy  # provided by the policy package once it exists
        except ImportError:
            raise LoopdriveError(
                f"--policy {spec}: loading checkpoints needs the policy package (not built yet)"
            ) from None
        return load_policy(path)
    raise LoopdriveError(f"--policy {spec!r}: unknown policy (use {POLICY_HELP})")


def policy_id(spec: str) -> str:
    """The id the store records for a ``--policy`` value (a checkpoint by its file name)."""
    return spec if spec in ("random", "random-forward", "autopilot") else f"ckpt:{Path(spec).name}"
