"""The drive window's picture: the cameras large, the route map inset, and the HUD.

:func:`drive_frame` builds on :func:`envs.display.compose_frame` (the same tiling and
route-map inset as the env's ``render()``, scaled up to the window's width) and draws
the drive's HUD on top, with OpenCV, so a screenshot of the window is this array:

* top left: speed, the next maneuver and its distance, the score so far (the lines of
  :class:`envs.display.Hud`), then who drives (coloured), the mode, the intervention
  count and, in shadow mode, the disagreements;
* top right: infractions as they happen (red, for a few seconds of driving);
* bottom left: messages (joystick plugged in or out, controls file problems);
* centre: PAUSED, or how the episode ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from envs.display import compose_frame, hud_of
from sim.routemap import RouteMapConfig

__all__ = ["DriveHud", "drive_frame", "camera_views", "DRIVER_RGB"]

#: the colour of each driver's name on the HUD
DRIVER_RGB: dict[str, tuple[int, int, int]] = {
    "human": (255, 170, 40),
    "policy": (90, 230, 90),
    "autopilot": (80, 200, 255),
}
_WHITE = (255, 255, 255)
_RED = (255, 80, 80)
_YELLOW = (255, 230, 90)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class DriveHud:
    """What the HUD shows besides the env's own numbers."""

    mode: str
    driver: str
    policy_name: str
    interventions: int = 0
    disagreements: int = 0
    infractions: Sequence[str] = ()
    messages: Sequence[str] = ()
    paused: bool = False
    banner: str = ""  # shown in the centre (an ended episode)
    view_name: str = "all cameras"
    extra: list[str] = field(default_factory=list)

    def lines(self) -> list[tuple[str, tuple[int, int, int]]]:
        driver = self.driver if self.driver != "policy" else f"policy ({self.policy_name})"
        out = [(f"driver: {driver.upper()}", DRIVER_RGB.get(self.driver, _WHITE))]
        counts = f"mode {self.mode}   interventions {self.interventions}"
        if self.mode == "shadow":
            counts += f"   disagreements {self.disagreements}"
        out.append((counts, _WHITE))
        out.append((f"view: {self.view_name}", _WHITE))
        out += [(line, _WHITE) for line in self.extra]
        return out


def camera_views(names: Sequence[str]) -> list[str]:
    """The views the camera key cycles through: every camera tiled, then each alone
    (a one-camera rig has the one view)."""
    return ["all cameras"] if len(names) <= 1 else ["all cameras", *names]


def _block(
    frame: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]], x: int, y: int, scale: float
) -> None:
    """Lines of text with a darkened box behind them; ``x`` < 0 aligns the box's right
    edge ``-x`` pixels from the frame's right edge."""
    if not lines:
        return
    sizes = [cv2.getTextSize(text, _FONT, scale, 1)[0] for text, _ in lines]
    step = int(26 * scale / 0.6)
    width = max(w for w, _ in sizes) + 12
    height = step * len(lines) + 8
    fh, fw = frame.shape[:2]
    left = x if x >= 0 else fw + x - width
    left, top = max(left, 0), max(y, 0)
    right, bottom = min(left + width, fw), min(top + height, fh)
    frame[top:bottom, left:right] //= 2
    for k, (text, colour) in enumerate(lines):
        cv2.putText(frame, text, (left + 6, top + step * (k + 1) - 4), _FONT, scale, colour, 1, cv2.LINE_AA)


def _banner(frame: np.ndarray, text: str) -> None:
    scale = max(1.0, frame.shape[1] / 900)
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, 2)
    fh, fw = frame.shape[:2]
    x, y = (fw - w) // 2, (fh + h) // 2
    frame[max(y - h - 12, 0) : min(y + 12, fh), max(x - 12, 0) : min(x + w + 12, fw)] //= 3
    cv2.putText(frame, text, (x, y), _FONT, scale, _WHITE, 2, cv2.LINE_AA)


def drive_frame(
    obs: dict,
    info: dict,
    route_map: RouteMapConfig,
    hud: DriveHud,
    *,
    view: int = 0,
    show_hud: bool = True,
    min_width_px: int = 1280,
) -> np.ndarray:
    """The window's ``uint8`` RGB picture for one step. ``view`` 0 tiles every camera;
    ``k`` > 0 shows camera ``k - 1`` alone."""
    cameras = np.asarray(obs["camera"])
    if 0 < view <= cameras.shape[0]:
        cameras = cameras[view - 1 : view]
    frame = compose_frame(
        cameras,
        obs["route"],
        None,
        channels=route_map.channels,
        ego_row_px=route_map.ego_row_px,
        min_width_px=min_width_px,
    )
    scale = 0.6 if frame.shape[1] >= 960 else 0.45
    if show_hud:
        env_hud = hud_of(obs, info)
        _block(frame, [(line, _WHITE) for line in env_hud.lines()] + hud.lines(), 8, 8, scale)
        _block(frame, [(line, _RED) for line in hud.infractions], -8, 8, scale)
    messages = [(line, _YELLOW) for line in hud.messages]
    _block(frame, messages, 8, frame.shape[0] - 8 - int(26 * scale / 0.6) * len(messages) - 8, scale)
    if hud.paused:
        _banner(frame, "PAUSED")
    elif hud.banner:
        _banner(frame, hud.banner)
    return frame
