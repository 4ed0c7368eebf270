"""The driving env's observation and action spaces.

Observation, a ``Dict`` (no privileged state ever enters it):

* ``camera``: ``Box(0, 255, (n_cams, H, W, 3), uint8)``, RGB images of the rig, in
  rig order (``front``: 1, ``front3``: left, front, right; ``surround8``: 8).
* ``route``: ``Box(0, 255, (S, S, C), uint8)``, the low-definition route map
  (:mod:`sim.routemap`; default S 64, C 2: ``road`` then ``route``), heading-up,
  the ego at row 48, column 32, 2 m per pixel, GPS-grade noise.
* ``speed``: ``Box(0, 60, (1,), float32)``, the ego's speed (m/s).
* ``command``: ``Discrete(7)``, the next maneuver as its RoadOption value (LEFT 1,
  RIGHT 2, STRAIGHT 3, LANEFOLLOW 4, CHANGELANELEFT 5, CHANGELANERIGHT 6; VOID -1 is 0).
* ``command_distance_m``: ``Box(0, 1000, (1,), float32)``, the distance along the
  route to where that maneuver starts (0 inside it; to the goal for LANEFOLLOW),
  clipped at 1000 m ("turn left in 80 m").

Action: ``Box(-1, 1, (2,), float32)`` = ``[steer, accel]``: steer -1 full left, +1 full
right; accel > 0 throttle, < 0 brake (mapped to physics in :mod:`sim.vehicle` alone).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.world import COMMAND_DISTANCE_MAX_M, SPEED_MAX_MPS
from sim.routemap import RouteMapConfig

__all__ = ["observation_space", "action_space", "OBSERVATION_KEYS", "ACTION_STEER", "ACTION_ACCEL"]

#: the observation's keys
OBSERVATION_KEYS: tuple[str, ...] = ("camera", "route", "speed", "command", "command_distance_m")
#: positions in the action vector
ACTION_STEER, ACTION_ACCEL = 0, 1
_COMMANDS = 7  # RoadOption values 1-6, and 0 for VOID


def observation_space(camera_shape: tuple[int, int, int, int], route_map: RouteMapConfig) -> spaces.Dict:
    """The observation space for cameras of ``camera_shape`` (n_cams, H, W, 3)."""
    return spaces.Dict(
        {
            "camera": spaces.Box(0, 255, camera_shape, np.uint8),
            "route": spaces.Box(0, 255, route_map.shape, np.uint8),
            "speed": spaces.Box(0.0, SPEED_MAX_MPS, (1,), np.float32),
            "command": spaces.Discrete(_COMMANDS),
            "command_distance_m": spaces.Box(0.0, COMMAND_DISTANCE_MAX_M, (1,), np.float32),
        }
    )


def action_space() -> spaces.Box:
    """``[steer, accel]`` in [-1, 1]."""
    return spaces.Box(-1.0, 1.0, (2,), np.float32)
