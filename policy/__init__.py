"""The end-to-end policy: network, checkpoints, behaviour cloning, DAgger, PPO, export.

Modules load on first use (torch and Stable-Baselines3 are heavy):

* :mod:`policy.network`: the network (pure torch), :mod:`policy.features`: the same
  encoder as an SB3 features extractor;
* :mod:`policy.checkpoint`: safetensors + JSON checkpoints, ``default``, and
  :func:`load_policy` (a checkpoint as an env driver: ``reset(seed)``, ``act(obs, info)``);
* :mod:`policy.data`, :mod:`policy.collect`, :mod:`policy.store_data`: training frames;
* :mod:`policy.bc`, :mod:`policy.dagger`, :mod:`policy.ppo`: training;
* :mod:`policy.evaluate`, :mod:`policy.report`, :mod:`policy.export`: evaluation, tables, ONNX.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["load_policy"]


def load_policy(path: str | os.PathLike, layout: Any = None) -> Any:
    """The checkpoint at ``path`` (a folder, its ``config.json`` or ``model.safetensors``, or
    ``default``) as a :class:`policy.checkpoint.CheckpointPolicy`; with ``layout`` (an
    :class:`~policy.network.ObservationLayout`) a mismatched checkpoint is refused."""
    from policy.checkpoint import CheckpointPolicy

    return CheckpointPolicy(path, layout)
