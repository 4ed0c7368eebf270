"""The one place where loopdrive's env ids are registered with Gymnasium.

=================================  =========  ============================================
id                                 rig        cameras
=================================  =========  ============================================
``loopdrive/Drive-v0``             front      one windscreen camera
``loopdrive/Drive-front3-v0``      front3     left, front, right (180 degrees)
``loopdrive/Drive-surround8-v0``   surround8  a production car's eight cameras
=================================  =========  ============================================

Every id drives the procedural town ``generated:0`` on a random 600-1000 m route drawn
by each reset's seed, with default traffic, 160 x 80 cameras and the 64 x 64 route map
(the :class:`~envs.config.DrivingEnvConfig` defaults); keyword arguments of
``gymnasium.make`` override config fields. ``gymnasium.make_vec(id, num_envs=N)``
builds the batched :class:`~envs.vector.DrivingVectorEnv`. Registering imports no
simulator code.
"""

from __future__ import annotations

from types import MappingProxyType

import gymnasium as gym

__all__ = ["ENV_IDS", "register_envs"]

#: env id -> camera rig
ENV_IDS = MappingProxyType(
    {
        "loopdrive/Drive-v0": "front",
        "loopdrive/Drive-front3-v0": "front3",
        "loopdrive/Drive-surround8-v0": "surround8",
    }
)


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS` (again: a no-op)."""
    for env_id, rig in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="envs.driving:DrivingEnv",
            vector_entry_point="envs.vector:DrivingVectorEnv",
            kwargs={"rig": rig},
            nondeterministic=False,
        )
