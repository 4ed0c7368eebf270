"""Interactive driving in a pygame window: people demonstrate, take over, and watch.

* :mod:`envs.interactive.controls`: keyboard (smooth ramps), joysticks (axes and
  buttons from a small TOML/YAML file, hot-plug), commands.
* :mod:`envs.interactive.hud`: the window's picture (cameras large, route map inset, HUD).
* :mod:`envs.interactive.session`: the drive loop (modes manual, copilot, shadow; pause,
  restart, quit, camera view, HUD toggle; 20 Hz pacing).
* :mod:`envs.interactive.stack`: the env wrapped for the mode and the episode store.

pygame is imported when a session opens its window, never at import.
"""

from __future__ import annotations

from envs.interactive.controls import Command, ControlsConfig, InputDevices, load_controls
from envs.interactive.session import MODES, DriveConfig, DriveSession, DriveSummary
from envs.interactive.stack import DriveStack, build_drive_env

__all__ = [
    "Command",
    "ControlsConfig",
    "InputDevices",
    "load_controls",
    "MODES",
    "DriveConfig",
    "DriveSession",
    "DriveSummary",
    "DriveStack",
    "build_drive_env",
]
