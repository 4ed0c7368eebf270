"""What ``render()`` shows: the cameras tiled, the route map inset and a small HUD.

:func:`compose_frame` draws the picture with OpenCV (``rgb_array``);
:class:`PygameWindow` shows it in a window (``human``; pygame is imported when the
window opens, and tests use SDL's dummy video driver).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from sim.maps.planner import RoadOption
from sim.routemap import RouteMapConfig

__all__ = ["Hud", "hud_of", "compose_frame", "frame_of", "PygameWindow", "MIN_FRAME_WIDTH_PX"]

#: the cameras are scaled up (whole multiples) until the frame is at least this wide
MIN_FRAME_WIDTH_PX = 640
_ROUTE_SCALE = 3
_ROAD_RGB = np.array([150, 150, 150], np.float32)
_ROUTE_RGB = np.array([64, 160, 255], np.float32)
_EGO_RGB = (255, 64, 64)
_TEXT_RGB = (255, 255, 255)
_COMMAND_NAMES = {int(o): o.name.lower().replace("changelane", "change lane ") for o in RoadOption}


@dataclass(frozen=True)
class Hud:
    """The HUD's numbers."""

    speed_mps: float
    command: int
    command_distance_m: float
    route_completion: float  # 0-100
    infraction_penalty: float  # factor
    driving_score: float  # 0-100
    reason: str = ""

    def lines(self) -> list[str]:
        name = _COMMAND_NAMES.get(int(self.command), "void")
        text = [
            f"{3.6 * self.speed_mps:5.1f} km/h",
            f"{name} in {self.command_distance_m:.0f} m",
            f"RC {self.route_completion:5.1f} IP {self.infraction_penalty:.2f} DS {self.driving_score:5.1f}",
        ]
        if self.reason:
            text.append(f"ended: {self.reason}")
        return text


def _tile(cameras: np.ndarray, min_width_px: int = MIN_FRAME_WIDTH_PX) -> np.ndarray:
    n, h, w, _ = cameras.shape
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = cameras[k]
    scale = max(1, math.ceil(min_width_px / grid.shape[1]))
    if scale > 1:
        grid = cv2.resize(
            grid, (grid.shape[1] * scale, grid.shape[0] * scale), interpolation=cv2.INTER_NEAREST
        )
    return grid


def _route_picture(route: np.ndarray, channels: Sequence[str], ego_row_px: int) -> np.ndarray:
    size = route.shape[0]
    rgb = np.zeros((size, size, 3), np.float32)
    for k, name in enumerate(channels):
        share = route[:, :, k].astype(np.float32)[:, :, None] / 255.0
        colour = _ROAD_RGB if name == "road" else _ROUTE_RGB
        rgb = rgb * (1.0 - share) + colour * share
    pic = cv2.resize(
        rgb.astype(np.uint8), (size * _ROUTE_SCALE, size * _ROUTE_SCALE), interpolation=cv2.INTER_NEAREST
    )
    cx, cy = (size // 2) * _ROUTE_SCALE + _ROUTE_SCALE // 2, ego_row_px * _ROUTE_SCALE + _ROUTE_SCALE // 2
    ego = np.array([[cx, cy - 6], [cx - 4, cy + 4], [cx + 4, cy + 4]], np.int32)
    cv2.fillPoly(pic, [ego], _EGO_RGB)
    cv2.rectangle(pic, (0, 0), (pic.shape[1] - 1, pic.shape[0] - 1), _TEXT_RGB, 1)
    return pic


def compose_frame(
    cameras: np.ndarray,
    route: np.ndarray,
    hud: Hud | None,
    *,
    channels: Sequence[str],
    ego_row_px: int,
    min_width_px: int = MIN_FRAME_WIDTH_PX,
) -> np.ndarray:
    """``uint8`` RGB frame: the cameras tiled (up to 4 per row, scaled up by whole
    multiples to at least ``min_width_px`` wide), the route map inset at the bottom
    right (3x), and the HUD's lines at the top left (none for ``hud=None``)."""
    frame = _tile(np.asarray(cameras), min_width_px)
    inset = _route_picture(np.asarray(route), channels, ego_row_px)
    fh, fw = frame.shape[:2]
    ih, iw = min(inset.shape[0], fh), min(inset.shape[1], fw)
    frame[fh - ih :, fw - iw :] = inset[-ih:, -iw:]
    if hud is None:
        return frame
    lines = hud.lines()
    strip_h = 8 + 18 * len(lines)
    frame[:strip_h, : min(fw, 330)] //= 2  # darken behind the text
    for k, line in enumerate(lines):
        cv2.putText(frame, line, (6, 18 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _TEXT_RGB, 1, cv2.LINE_AA)
    return frame


def hud_of(obs: dict, info: dict, reason: str = "") -> Hud:
    """The HUD lines of one world's observation and info (speed, maneuver, score so far)."""
    score = info["score"]
    return Hud(
        speed_mps=float(obs["speed"][0]),
        command=int(obs["command"]),
        command_distance_m=float(obs["command_distance_m"][0]),
        route_completion=score["route_completion"],
        infraction_penalty=score["infraction_penalty"],
        driving_score=score["driving_score"],
        reason=reason,
    )


def frame_of(obs: dict, info: dict, route_map: RouteMapConfig) -> np.ndarray:
    """The ``render()`` picture of one world's observation and info."""
    reason = info["termination_reason"].value
    hud = hud_of(obs, info, "" if reason == "none" else reason)
    return compose_frame(
        obs["camera"], obs["route"], hud, channels=route_map.channels, ego_row_px=route_map.ego_row_px
    )


class PygameWindow:
    """A pygame window that shows frames; opened on the first :meth:`show`."""

    def __init__(self, title: str = "loopdrive", fps: float = 20.0):
        self.title = title
        self.fps = fps
        self._screen = None
        self._clock = None
        self._pygame = None

    def show(self, frame: np.ndarray) -> None:
        """Show an (H, W, 3) ``uint8`` RGB frame, keep the window responsive, hold ``fps``."""
        if self._pygame is None:
            import pygame

            pygame.display.init()  # the display only: no audio device is needed
            pygame.display.set_caption(self.title)
            self._pygame = pygame
            self._clock = pygame.time.Clock()
        pygame = self._pygame
        h, w = frame.shape[:2]
        if self._screen is None or self._screen.get_size() != (w, h):
            self._screen = pygame.display.set_mode((w, h))
        # row-major RGB straight into a surface: no transposed copy (a 1280x640 frame: ~1 ms, not ~15)
        pixels = np.ascontiguousarray(frame, dtype=np.uint8)
        self._screen.blit(pygame.image.frombuffer(pixels.data, (w, h), "RGB"), (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.fps)

    def save(self, path) -> None:
        """Write what the window shows now to ``path`` (PNG by its suffix; pygame's
        ``image.save``)."""
        if self._screen is None:
            raise RuntimeError("the window shows nothing yet: show() a frame first")
        self._pygame.image.save(self._screen, str(path))

    def close(self) -> None:
        if self._pygame is not None:
            self._pygame.display.quit()
            self._pygame = self._screen = self._clock = None
