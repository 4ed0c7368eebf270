"""The one place where the commands turn a ``--policy`` value into a policy.

:func:`make_policy` knows ``random`` and ``autopilot`` (:mod:`envs.drivers`); a trained
checkpoint (``CKPT``: a path) plugs in here once the policy package loads them.
"""

from __future__ import annotations

from pathlib import Path

from envs.drivers import AutopilotPolicy, Policy, RandomPolicy
from sim.errors import LoopdriveError

__all__ = ["POLICY_HELP", "make_policy", "policy_id"]

POLICY_HELP = (
    "random, random-forward (accel in [-0.2, 1]), autopilot, default (the shipped checkpoint), "
    "or a checkpoint folder (CKPT)"
)


def make_policy(spec: str, seed: int = 0) -> Policy:
    """The policy named by ``spec``: ``random`` (uniform [-1, 1] actions, seeded),
    ``random-forward`` (the same with accel in [-0.2, 1]),
    ``autopilot`` (the privileged autopilot), ``default`` (the shipped checkpoint) or a
    checkpoint (its folder, or a file in it)."""
    if spec == "random":
        return RandomPolicy(seed)
    if spec == "random-forward":
        return RandomPolicy(seed, accel_range=(-0.2, 1.0))
    if spec == "autopilot":
        return AutopilotPolicy()
    path = Path(spec)
    if spec == "default" or path.suffix or path.exists():
        from policy import load_policy

        if spec != "default" and not path.exists():
            raise LoopdriveError(f"--policy {spec}: no such checkpoint file or folder")
        try:
            return load_policy(spec)
        except LoopdriveError as exc:
            raise LoopdriveError(f"--policy {spec}: {exc}") from None
    raise LoopdriveError(f"--policy {spec!r}: unknown policy (use {POLICY_HELP})")


def policy_id(spec: str) -> str:
    """The id the store records for a ``--policy`` value (a checkpoint by its file name)."""
    return spec if spec in ("random", "random-forward", "autopilot", "default") else f"ckpt:{Path(spec).name}"
