"""``loopdrive map show``: a top-down picture of a map, with a planned route if asked.

``loopdrive map show MAP --out FILE.png [--routes ROUTES.xml [--route-id N]] [--max-size PX]``
paints the map raster (:mod:`sim.maps.raster`, cached) in its default palette,
shrinks it with area averaging so that its longest side is at most ``--max-size``
pixels, and, with ``--routes``, draws the Leaderboard route planned on the map: a
polyline with direction arrows, its key points as circles, the first green and the
last red. It prints the picture's path and size.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from scripts.common import add_map_argument
from scripts.config_args import add_config_arguments, config_from_args
from sim.errors import ConfigError, LoopdriveError, RouteError

__all__ = ["ShowConfig", "register", "run", "render_picture", "draw_route"]

ROUTE_RGB = (0, 190, 255)
START_RGB = (40, 220, 60)
GOAL_RGB = (235, 30, 30)
KEYPOINT_RGB = (255, 255, 255)
OUTLINE_RGB = (20, 20, 20)


@dataclass(frozen=True)
class ShowConfig:
    """How the picture is drawn."""

    max_size: int = field(
        default=4000, metadata={"help": "longest side of the picture in pixels (shrunk with area averaging)"}
    )
    m_per_px: float = field(default=0.1, metadata={"help": "resolution of the map raster, metres per pixel"})

    def __post_init__(self) -> None:
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int) or self.max_size < 64:
            raise ConfigError(f"--max-size must be a whole number of pixels >= 64, got {self.max_size!r}")
        if not (isinstance(self.m_per_px, int | float) and 0.01 <= self.m_per_px <= 100):
            raise ConfigError(f"--m-per-px must be between 0.01 and 100, got {self.m_per_px!r}")


def register(parser: argparse.ArgumentParser) -> None:
    add_map_argument(parser)
    parser.add_argument("--out", required=True, metavar="FILE.png", help="the PNG picture to write")
    parser.add_argument("--routes", metavar="ROUTES.xml", help="a CARLA Leaderboard route file (v1 or v2)")
    parser.add_argument(
        "--route-id", metavar="N", help="the route of --routes to draw (needed if the map's town has several)"
    )
    add_config_arguments(parser, ShowConfig)
    parser.set_defaults(func=run)


# -- drawing -------------------------------------------------------------------------------


class _PictureFrame:
    """World (x, y) to picture pixels (col, row) for a raster shrunk by ``scale``."""

    def __init__(self, origin_xy_m: tuple[float, float], m_per_px: float, scale: float):
        self.origin = np.asarray(origin_xy_m, dtype=float)
        self.px_per_m = scale / m_per_px

    def fixed(self, xy_m: np.ndarray, shift: int) -> np.ndarray:
        """cv2 fixed-point (col, row), pixel centres at integers."""
        px = (np.asarray(xy_m)[..., :2] - self.origin) * self.px_per_m - 0.5
        return np.rint(px * (1 << shift)).astype(np.int32)


def _arrow_positions(route_xy: np.ndarray, spacing_m: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tail, head) world points of direction arrows every ``spacing_m`` along the route."""
    seg = np.hypot(*np.diff(route_xy, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return []
    arrow_m = 0.35 * spacing_m
    out = []
    for at in np.arange(0.5 * spacing_m, s[-1] - arrow_m, spacing_m):
        tail = np.array([np.interp(at, s, route_xy[:, k]) for k in range(2)])
        head = np.array([np.interp(at + arrow_m, s, route_xy[:, k]) for k in range(2)])
        out.append((tail, head))
    return out


def draw_route(
    picture_rgb: np.ndarray,
    origin_xy_m: tuple[float, float],
    m_per_px: float,
    scale: float,
    route_xy_m: np.ndarray,
    keypoints_xy_m: np.ndarray,
) -> None:
    """Draw a route (N, 2) and its key points (K, 2), world metres, onto the picture in place.

    The picture is a raster of ``m_per_px`` with its top-left corner at ``origin_xy_m``,
    shrunk by ``scale``. The route is a polyline with arrows pointing the way every
    ~60 picture pixels; key points are white circles, the first green, the last red.
    """
    h, w = picture_rgb.shape[:2]
    frame = _PictureFrame(origin_xy_m, m_per_px, scale)
    thick = max(2, round(max(h, w) / 900))
    shift = 4
    route = np.asarray(route_xy_m, dtype=float)[:, :2]
    if len(route) >= 2:
        cv2.polylines(picture_rgb, [frame.fixed(route, shift)], False, ROUTE_RGB, thick, cv2.LINE_AA, shift)
        spacing_m = max(60.0, 20.0 * thick) / frame.px_per_m
        for tail, head in _arrow_positions(route, spacing_m):
            a, b = frame.fixed(tail, shift), frame.fixed(head, shift)
            tail_px, head_px = tuple(map(int, a)), tuple(map(int, b))
            cv2.arrowedLine(picture_rgb, tail_px, head_px, ROUTE_RGB, thick, cv2.LINE_AA, shift, 0.6)
    keys = np.asarray(keypoints_xy_m, dtype=float).reshape(-1, 2)
    radius = (3 * thick + 3) << shift
    for i, point in enumerate(keys):
        colour = START_RGB if i == 0 else GOAL_RGB if i == len(keys) - 1 else KEYPOINT_RGB
        centre = tuple(map(int, frame.fixed(point, shift)))
        cv2.circle(picture_rgb, centre, radius, colour, -1, cv2.LINE_AA, shift)
        cv2.circle(picture_rgb, centre, radius, OUTLINE_RGB, max(1, thick // 2), cv2.LINE_AA, shift)


def render_picture(raster, max_size: int, route=None) -> np.ndarray:
    """The raster as RGB, shrunk to at most ``max_size`` on its longest side, with a route drawn.

    ``route`` is ``None`` or a ``(route_xy_m (N, 2), keypoints_xy_m (K, 2))`` pair.
    """
    rgb = raster.to_rgb()
    h, w = rgb.shape[:2]
    scale = min(1.0, max_size / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        scale = size[0] / w
    else:
        rgb = np.ascontiguousarray(rgb)
    if route is not None:
        draw_route(rgb, raster.origin_xy_m, raster.m_per_px, scale, route[0], route[1])
    return rgb


# -- the command -----------------------------------------------------------------------------


def _checked_out_path(text: str) -> Path:
    out = Path(text)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"{out}: the picture is written as PNG; give a file name ending in .png")
    if not out.parent.is_dir():
        raise LoopdriveError(f"{out}: the folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise LoopdriveError(f"{out}: is a folder; give a .png file name")
    return out


def _planned_route(road_map, routes_path: str, route_id: str | None):
    """(route_xy_m, keypoints_xy_m) of the chosen Leaderboard route planned on the map."""
    from sim.maps.leaderboard import read_route_file, select_route
    from sim.maps.planner import RoutePlanner

    routes = read_route_file(routes_path)
    if route_id is not None:
        route = select_route(routes, route_id)
    else:
        mine = [r for r in routes if r.town == road_map.name]
        if len(mine) != 1:
            ids = ", ".join(r.route_id for r in mine[:20]) or "none"
            raise RouteError(
                f"{routes_path}: {len(mine)} routes are in {road_map.name} (ids: {ids}); "
                "choose one with --route-id"
            )
        route = mine[0]
    if route.town != road_map.name:
        raise RouteError(
            f"{route.describe()} is in {route.town}, but the map {road_map.source} is {road_map.name}"
        )
    try:
        planned = RoutePlanner(road_map).plan_keypoints(
            route.keypoints_xyz_m, keypoint_yaw_rad=route.keypoint_yaw_rad
        )
    except RouteError as exc:
        raise RouteError(f"{route.describe()}: {exc}") from None
    return planned.route.xyz_m[:, :2], route.keypoints_xyz_m[:, :2]


def run(args: argparse.Namespace) -> int:
    from sim.maps import load_map
    from sim.maps.raster import build_raster

    config = config_from_args(ShowConfig, args)
    out = _checked_out_path(args.out)
    if args.route_id is not None and args.routes is None:
        raise ConfigError("--route-id needs --routes ROUTES.xml")
    road_map = load_map(args.map)
    route = _planned_route(road_map, args.routes, args.route_id) if args.routes else None
    raster = build_raster(road_map, m_per_px=config.m_per_px)
    picture = render_picture(raster, config.max_size, route)
    try:
        ok = cv2.imwrite(str(out), np.ascontiguousarray(picture[..., ::-1]))
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise LoopdriveError(f"{out}: cannot write the picture ({reason})") from None
    if not ok:
        raise LoopdriveError(f"{out}: cannot write the picture (is the folder writable?)")
    h, w = picture.shape[:2]
    m_per_picture_px = raster.m_per_px * raster.shape[1] / w
    print(f"wrote {out} ({w} x {h} px, {m_per_picture_px:.3g} m per pixel)")
    return 0
