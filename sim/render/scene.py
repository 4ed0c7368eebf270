"""The static world a camera sees: the textured ground and the roadside structures.

:meth:`StaticScene.build` runs once per map (and signal layout):

* **ground**: the map raster (:func:`sim.maps.raster.build_raster`, 0.1 m/px class
  labels). :meth:`StaticScene.ground` turns it into a mip pyramid for one palette:
  level 0 keeps the labels (coloured through the palette at lookup, so lane marks
  stay crisp near the car); level ``k`` >= 1 holds the mean colour of the level-0
  pixels in each ``2**k`` block (``0.1 * 2**k`` m/px), so far ground averages instead
  of shimmering. Pyramids are cached per palette in the scene.
* **structures** (seeded by ``seed``, deterministic): buildings (boxes with windows)
  on off-road land set back ``building_setback_m`` from every painted lane (roads,
  shoulders, sidewalks, ...), trees (trunk and an octagonal canopy) and street
  lamps along the roadsides. Their footprints lie only where the raster is
  ``OFF_ROAD``, with at least the configured clearance from every painted pixel
  (checked on a 0.5 m grid made conservative by a cell diagonal); lamp arms reach
  over the kerb, above head height.
* **signals**: for every row of ``signals`` (a :class:`sim.signals.TrafficSignals`
  or the :class:`sim.state.SignalStates` of a state) at the middle of the row's stop
  line: a traffic light - a pole at the right edge of the road (right of the
  rightmost lane going the same way), an arm over the entering lane and a head above
  it with red, yellow and green lamps facing the approaching traffic, plus a far-side
  head across the junction at the end of the straight-on connection - or, for a stop
  row, a pole with a red octagon-ish plate (three overlapping plates). Lamps take the
  row's colour each frame (:data:`sim.render.layout.MAT_SIGNAL_LAMP`).

Boxes live in one (S, ``BOX_FIELDS``) float64 array (:mod:`sim.render.layout`) and a
grid of ``grid_cell_m`` cells indexes them so a frame visits only nearby cells.
Heights: a structure stands at the height of the nearest driving-lane point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import cv2
import numba
import numpy as np
from scipy.spatial import cKDTree

from sim.errors import ConfigError
from sim.maps.raster import MapRaster, RasterClass, build_raster
from sim.maps.roadmap import RoadMap
from sim.render import layout as L
from sim.state import LightState

__all__ = ["SceneConfig", "StaticScene", "StaticKind", "GroundTexture"]

_CELL_M = 0.5  # placement grid
#: the second (turned) canopy box of a tree is drawn while the tree spans this many pixels
CANOPY_LOD_PX = 12.0


class StaticKind(IntEnum):
    """What a static box is part of (stable numbers)."""

    BUILDING = 0
    TREE = 1
    LAMP_POST = 2  #: the upright pole of a street lamp
    LAMP_ARM = 3  #: the arm and the lamp head (may reach over the kerb)
    SIGNAL = 4  #: traffic-light pole, arm, head and lamps
    STOP_SIGN = 5


#: boxes whose footprint stands on the ground off the road (the clearance rule applies)
GROUNDED_KINDS = (StaticKind.BUILDING, StaticKind.TREE, StaticKind.LAMP_POST)


@dataclass(frozen=True)
class SceneConfig:
    """How densely and how far from the lanes structures are placed (metres)."""

    building_setback_m: float = 3.0
    building_depth_band_m: float = 22.0  #: buildings stand within this of the setback line
    tree_clearance_m: float = 1.0
    tree_spacing_m: float = 9.0
    lamp_clearance_m: float = 0.5
    lamp_spacing_m: float = 30.0
    max_building_attempts: int = 6000
    mip_levels: int = 8
    grid_cell_m: float = 32.0

    def __post_init__(self) -> None:
        for name in (
            "building_setback_m",
            "building_depth_band_m",
            "tree_clearance_m",
            "tree_spacing_m",
            "lamp_clearance_m",
            "lamp_spacing_m",
            "grid_cell_m",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1000.0):
                raise ConfigError(f"SceneConfig.{name} must lie in [0, 1000] m, got {value!r}")
        if self.grid_cell_m < 4.0:
            raise ConfigError(f"SceneConfig.grid_cell_m must be >= 4 m, got {self.grid_cell_m}")
        if not 1 <= self.mip_levels <= 12:
            raise ConfigError(f"SceneConfig.mip_levels must lie in [1, 12], got {self.mip_levels}")
        if self.max_building_attempts < 0:
            raise ConfigError("SceneConfig.max_building_attempts must be >= 0")


@dataclass(frozen=True, eq=False)
class GroundTexture:
    """The ground's mip pyramid for one palette (see the module docstring).

    ``labels0`` (H, W) uint8 level-0 labels; ``palette`` (classes, 3) float64;
    ``coarse`` (N, 3) uint8, level ``k``'s (h_k, w_k) image flattened at
    ``offset[k]`` (level 0 has none: ``offset[0]`` is unused); ``origin_xy_m`` the
    world (x, y) of level 0's top-left corner; ``m_per_px`` level 0's scale.
    """

    labels0: np.ndarray
    palette: np.ndarray
    coarse: np.ndarray
    offset: np.ndarray  # (levels,) int64
    height: np.ndarray  # (levels,) int64
    width: np.ndarray  # (levels,) int64
    origin_xy_m: tuple[float, float]
    m_per_px: float

    @property
    def levels(self) -> int:
        return len(self.offset)


@numba.njit(cache=True)
def _halve_labels(labels, palette, out):
    """Level 1: mean palette colour of each 2x2 block of labels (outside: OFF_ROAD)."""
    h, w = labels.shape
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            acc0 = acc1 = acc2 = 0.0
            for di in range(2):
                for dj in range(2):
                    r, c = 2 * i + di, 2 * j + dj
                    lab = labels[r, c] if r < h and c < w else 0
                    acc0 += palette[lab, 0]
                    acc1 += palette[lab, 1]
                    acc2 += palette[lab, 2]
            out[i, j, 0] = np.uint8(min(255.0, acc0 * 0.25 + 0.5))
            out[i, j, 1] = np.uint8(min(255.0, acc1 * 0.25 + 0.5))
            out[i, j, 2] = np.uint8(min(255.0, acc2 * 0.25 + 0.5))


def _halve_rgb(img: np.ndarray, fill: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    padded = np.empty((h + h % 2, w + w % 2, 3), np.float64)
    padded[:] = fill
    padded[:h, :w] = img
    mean = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    return np.floor(mean + 0.5).astype(np.uint8)


def build_ground(raster: MapRaster, palette: np.ndarray, levels: int) -> GroundTexture:
    """The mip pyramid of ``raster`` coloured by ``palette`` (see :class:`GroundTexture`)."""
    palette = np.ascontiguousarray(palette, dtype=np.float64)
    labels = np.asarray(raster.labels)
    fill = np.floor(palette[RasterClass.OFF_ROAD] + 0.5)
    parts, offsets, heights, widths = [], [0], [labels.shape[0]], [labels.shape[1]]
    total = 0
    img = None
    for _ in range(1, levels):
        if img is None:
            img = np.empty(((labels.shape[0] + 1) // 2, (labels.shape[1] + 1) // 2, 3), np.uint8)
            _halve_labels(labels, palette, img)
        else:
            img = _halve_rgb(img, fill)
        offsets.append(total)
        heights.append(img.shape[0])
        widths.append(img.shape[1])
        parts.append(img.reshape(-1, 3))
        total += len(parts[-1])
    coarse = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint8)
    return GroundTexture(
        labels0=labels,
        palette=palette,
        coarse=coarse,
        offset=np.array(offsets, np.int64),
        height=np.array(heights, np.int64),
        width=np.array(widths, np.int64),
        origin_xy_m=raster.origin_xy_m,
        m_per_px=raster.m_per_px,
    )


# -- placement ---------------------------------------------------------------------------


@dataclass
class _Clearance:
    """Guaranteed distance (m) from every point of each 0.5 m cell to the nearest painted pixel."""

    clear: np.ndarray  # (h, w) float64
    grad_xy: np.ndarray  # (h, w, 2) unit direction away from the paint
    origin: np.ndarray  # (2,) world xy of cell (0, 0)'s corner

    @classmethod
    def from_raster(cls, raster: MapRaster) -> _Clearance:
        labels = np.asarray(raster.labels)
        k = max(1, int(round(_CELL_M / raster.m_per_px)))
        cell = k * raster.m_per_px
        h, w = labels.shape
        hp, wp = -(-h // k) * k, -(-w // k) * k
        paved = np.zeros((hp, wp), bool)
        paved[:h, :w] = labels != RasterClass.OFF_ROAD
        paved = paved.reshape(hp // k, k, wp // k, k).any(axis=(1, 3))
        free = (~paved).astype(np.uint8)
        dist = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64) * cell
        clear = np.where(paved, -1.0, dist - cell * math.sqrt(2.0))
        smooth = cv2.GaussianBlur(dist, (0, 0), 2.0)
        gy, gx = np.gradient(smooth)
        norm = np.hypot(gx, gy)
        norm[norm < 1e-9] = 1.0
        grad = np.stack([gx / norm, gy / norm], axis=-1)
        return cls(clear, grad, np.array(raster.origin_xy_m, dtype=np.float64))

    @property
    def cell_m(self) -> float:
        return _CELL_M

    def cell_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ij = np.floor((np.asarray(xy) - self.origin) / _CELL_M).astype(np.int64)
        return ij[..., 1], ij[..., 0]  # row (y), col (x)

    def clear_at(self, xy: np.ndarray) -> np.ndarray:
        r, c = self.cell_of(xy)
        h, w = self.clear.shape
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        out = np.full(r.shape, -1.0)
        out[inside] = self.clear[r[inside], c[inside]]
        return out

    def centre(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.origin + (np.stack([c, r], axis=-1) + 0.5) * _CELL_M


def _rect_points(cx: float, cy: float, yaw: float, hx: float, hy: float, step: float) -> np.ndarray:
    nx, ny = int(math.ceil(2 * hx / step)) + 1, int(math.ceil(2 * hy / step)) + 1
    u, v = np.meshgrid(np.linspace(-hx, hx, nx), np.linspace(-hy, hy, ny))
    c, s = math.cos(yaw), math.sin(yaw)
    return np.stack([cx + c * u - s * v, cy + s * u + c * v], axis=-1).reshape(-1, 2)


_FACADES = np.array(
    [
        (196, 186, 166),
        (170, 160, 150),
        (150, 92, 72),
        (210, 206, 196),
        (120, 128, 140),
        (182, 150, 112),
        (140, 140, 136),
        (226, 216, 190),
        (110, 80, 66),
        (160, 172, 180),
    ],
    dtype=np.float64,
)
_LEAVES = np.array([(58, 96, 44), (72, 110, 52), (50, 84, 48), (88, 116, 56)], dtype=np.float64)


class _Builder:
    """Collects boxes and their kinds; free space is tracked on the clearance grid."""

    def __init__(self, clearance: _Clearance, lane_tree: cKDTree, lane_z: np.ndarray, rng):
        self.cl = clearance
        self.lane_tree, self.lane_z = lane_tree, lane_z
        self.rng = rng
        self.taken = np.zeros(clearance.clear.shape, bool)
        self.rows: list[np.ndarray] = []
        self.kinds: list[int] = []

    def ground_z(self, xy) -> float:
        _, i = self.lane_tree.query(np.asarray(xy, dtype=float))
        return float(self.lane_z[i])

    def add(
        self, kind, x, y, z, yaw, hx, hy, hz, rgb, mat=L.MAT_PLAIN, aux=0.0, aux2=0.0, lod_px=0.0
    ) -> None:
        row = np.zeros(L.BOX_FIELDS)
        row[[L.X, L.Y, L.Z, L.YAW, L.HX, L.HY, L.HZ]] = x, y, z, yaw, hx, hy, hz
        row[[L.R, L.G, L.B]] = rgb
        row[[L.MAT, L.AUX, L.AUX2]] = mat, aux, aux2
        row[L.RADIUS] = math.sqrt(hx * hx + hy * hy + hz * hz)
        row[L.LOD_PX] = lod_px
        self.rows.append(row)
        self.kinds.append(int(kind))

    def _take(self, pts: np.ndarray) -> bool:
        r, c = self.cl.cell_of(pts)
        h, w = self.taken.shape
        if r.min() < 0 or c.min() < 0 or r.max() >= h or c.max() >= w or self.taken[r, c].any():
            return False
        self.taken[r, c] = True
        return True

    def buildings(self, cfg: SceneConfig) -> None:
        cl, rng = self.cl, self.rng
        lo, hi = cfg.building_setback_m + 4.0, cfg.building_setback_m + cfg.building_depth_band_m
        r, c = np.nonzero((cl.clear >= lo) & (cl.clear <= hi))
        keep = (r % 4 == 0) & (c % 4 == 0)  # candidates every 2 m
        r, c = r[keep], c[keep]
        order = rng.permutation(len(r))[: cfg.max_building_attempts]
        for n, k in enumerate(order):
            x, y = cl.centre(r[k], c[k])
            gx, gy = cl.grad_xy[r[k], c[k]]
            yaw = math.atan2(gy, gx) + (math.pi / 2 if n % 7 == 0 else 0.0)
            hx, hy = rng.uniform(4.0, 9.0), rng.uniform(4.0, 12.0)
            pts = _rect_points(x, y, yaw, hx, hy, 0.5)
            if cl.clear_at(pts).min() < cfg.building_setback_m + 0.36 or not self._take(pts):
                continue
            height = float(
                rng.choice([6.0, 9.0, 12.0, 15.0, 21.0, 30.0], p=[0.2, 0.25, 0.2, 0.15, 0.12, 0.08])
            )
            height += rng.uniform(-0.5, 1.5)
            rgb = _FACADES[rng.integers(len(_FACADES))] * rng.uniform(0.9, 1.08)
            z = self.ground_z((x, y)) - 1.0  # a metre into the ground: no gap on a slope
            self.add(
                StaticKind.BUILDING,
                x,
                y,
                z,
                yaw,
                hx,
                hy,
                0.5 * height + 0.5,
                np.clip(rgb, 0, 255),
                L.MAT_BUILDING,
                float(len(self.rows)),
            )

    def _spaced(self, lo: float, hi: float, spacing: float):
        """Candidate cells in the clearance band, one per ``spacing`` square, seeded order."""
        cl = self.cl
        r, c = np.nonzero((cl.clear >= lo) & (cl.clear <= hi))
        if len(r) == 0:
            return
        order = self.rng.permutation(len(r))
        step = max(1, int(round(spacing / _CELL_M)))
        used: set[tuple[int, int]] = set()
        for k in order:
            key = (int(r[k]) // step, int(c[k]) // step)
            if key in used or self.taken[r[k], c[k]]:
                continue
            used.add(key)
            yield int(r[k]), int(c[k])

    def trees(self, cfg: SceneConfig) -> None:
        rng = self.rng
        lo = cfg.tree_clearance_m + 2.0 * math.sqrt(2.0)
        for r, c in self._spaced(lo, lo + 5.0, cfg.tree_spacing_m):
            x, y = self.cl.centre(r, c)
            canopy = rng.uniform(1.3, 2.0)  # half side; the octagon's circumradius is canopy * sqrt(2)
            if self.cl.clear[r, c] < canopy * math.sqrt(2.0) + cfg.tree_clearance_m:
                continue
            if not self._take(_rect_points(x, y, 0.0, canopy, canopy, 0.5)):
                continue
            z = self.ground_z((x, y))
            trunk = rng.uniform(1.8, 3.0)
            yaw = rng.uniform(0, math.pi / 2)
            leaves = np.clip(_LEAVES[rng.integers(len(_LEAVES))] * rng.uniform(0.85, 1.1), 0, 255)
            self.add(StaticKind.TREE, x, y, z - 0.5, yaw, 0.16, 0.16, 0.5 * trunk + 0.25, (92, 70, 50))
            top = rng.uniform(2.5, 4.5)
            for turn, lod in ((0.0, 0.0), (math.pi / 4, CANOPY_LOD_PX)):  # the octagon only where it shows
                self.add(
                    StaticKind.TREE,
                    x,
                    y,
                    z + trunk - 0.3,
                    yaw + turn,
                    canopy,
                    canopy,
                    0.5 * top,
                    leaves,
                    lod_px=lod,
                )

    def lamps(self, cfg: SceneConfig) -> None:
        lo = cfg.lamp_clearance_m + 0.1 * math.sqrt(2.0)
        for r, c in self._spaced(lo, lo + 1.0, cfg.lamp_spacing_m):
            x, y = self.cl.centre(r, c)
            if not self._take(np.array([[x, y]])):
                continue
            gx, gy = self.cl.grad_xy[r, c]
            yaw = math.atan2(-gy, -gx)  # toward the road
            z = self.ground_z((x, y))
            self.add(StaticKind.LAMP_POST, x, y, z - 0.5, yaw, 0.09, 0.09, 4.0, (110, 112, 116))
            reach = 1.6
            cx, cy = x + math.cos(yaw) * reach * 0.5, y + math.sin(yaw) * reach * 0.5
            self.add(
                StaticKind.LAMP_ARM, cx, cy, z + 7.2, yaw, 0.5 * reach + 0.1, 0.06, 0.06, (110, 112, 116)
            )
            hx, hy = x + math.cos(yaw) * reach, y + math.sin(yaw) * reach
            self.add(
                StaticKind.LAMP_ARM, hx, hy, z + 6.95, yaw, 0.35, 0.18, 0.1, (255, 226, 170), L.MAT_NIGHT_LAMP
            )


# -- signals -----------------------------------------------------------------------------


def _lane_point(lane, xy) -> int:
    d = np.hypot(lane.xyz_m[:, 0] - xy[0], lane.xyz_m[:, 1] - xy[1])
    return int(np.argmin(d))


def _right_edge_offset(road_map: RoadMap, key, xy) -> float:
    """Lateral distance (m) from the lane's centre to the right edge of the rightmost lane its way."""
    lane = road_map.lanes[key]
    off = 0.5 * float(lane.width_m[_lane_point(lane, xy)])
    seen = {key}
    nxt = lane.right
    while nxt is not None and nxt in road_map.lanes and nxt not in seen:
        seen.add(nxt)
        other = road_map.lanes[nxt]
        off += float(other.width_m[_lane_point(other, xy)])
        nxt = other.right
    return off


def _far_side(road_map: RoadMap, key, yaw: float):
    """End point and yaw of the straightest junction connection leaving the lane, or None."""
    lane = road_map.lanes[key]
    best, best_turn = None, math.radians(30.0)
    for succ in lane.successors:
        conn = road_map.lanes.get(succ)
        if conn is None or not conn.in_junction:
            continue
        turn = abs(math.remainder(float(conn.yaw_rad[-1]) - yaw, 2 * math.pi))
        if turn < best_turn:
            best, best_turn = conn, turn
    if best is None:
        return None
    return best.xyz_m[-1], float(best.yaw_rad[-1]), best.key


_HEAD_RGB = (34, 36, 38)
_POLE_RGB = (70, 72, 76)
_LAMP_RGB = {
    LightState.RED: (255, 40, 30),
    LightState.YELLOW: (255, 190, 20),
    LightState.GREEN: (40, 255, 110),
}


def _signal_head(b: _Builder, row: int, x: float, y: float, z_low: float, yaw: float) -> None:
    """A head whose lamps face traffic travelling along ``yaw`` toward it; bottom at ``z_low``."""
    fx, fy = math.cos(yaw), math.sin(yaw)
    b.add(StaticKind.SIGNAL, x, y, z_low, yaw, 0.2, 0.26, 0.62, _HEAD_RGB)
    lx, ly = x - fx * 0.24, y - fy * 0.24
    for k, state in enumerate((LightState.RED, LightState.YELLOW, LightState.GREEN)):
        zc = z_low + 1.24 - 0.2 - 0.4 * k
        b.add(
            StaticKind.SIGNAL,
            lx,
            ly,
            zc - 0.17,
            yaw,
            0.05,
            0.17,
            0.17,
            _LAMP_RGB[state],
            L.MAT_SIGNAL_LAMP,
            float(row),
            float(state),
        )


def _add_light(b: _Builder, road_map: RoadMap, row: int, xy, yaw: float, key) -> None:
    fx, fy, rx, ry = math.cos(yaw), math.sin(yaw), -math.sin(yaw), math.cos(yaw)
    edge = _right_edge_offset(road_map, key, xy) + 0.7 if key in road_map.lanes else 2.5
    z = b.ground_z(xy)
    px, py = xy[0] + rx * edge + fx * 0.6, xy[1] + ry * edge + fy * 0.6
    b.add(StaticKind.SIGNAL, px, py, z - 0.5, yaw, 0.13, 0.13, 3.15, _POLE_RGB)
    ax, ay = xy[0] + rx * 0.5 * edge + fx * 0.6, xy[1] + ry * 0.5 * edge + fy * 0.6
    b.add(StaticKind.SIGNAL, ax, ay, z + 5.55, yaw, 0.08, 0.5 * edge + 0.1, 0.08, _POLE_RGB)
    _signal_head(b, row, xy[0] + fx * 0.6, xy[1] + fy * 0.6, z + 4.3, yaw)
    far = _far_side(road_map, key, yaw) if key in road_map.lanes else None
    if far is not None:
        end, end_yaw, conn_key = far
        off = _right_edge_offset(road_map, conn_key, end[:2]) + 0.7
        frx, fry = -math.sin(end_yaw), math.cos(end_yaw)
        qx, qy = end[0] + frx * off + math.cos(end_yaw) * 1.0, end[1] + fry * off + math.sin(end_yaw) * 1.0
        b.add(StaticKind.SIGNAL, qx, qy, z - 0.5, yaw, 0.11, 0.11, 1.9, _POLE_RGB)
        _signal_head(b, row, qx - fx * 0.12, qy - fy * 0.12, z + 2.4, yaw)


def _add_stop_sign(b: _Builder, road_map: RoadMap, xy, yaw: float, key) -> None:
    rx, ry = -math.sin(yaw), math.cos(yaw)
    edge = _right_edge_offset(road_map, key, xy) + 0.7 if key in road_map.lanes else 2.5
    x, y = xy[0] + rx * edge, xy[1] + ry * edge
    z = b.ground_z(xy)
    b.add(StaticKind.STOP_SIGN, x, y, z - 0.5, yaw, 0.05, 0.05, 1.5, (150, 150, 150))
    fx, fy = math.cos(yaw), math.sin(yaw)
    px, py = x - fx * 0.07, y - fy * 0.07
    # an octagon from three plates: wide, tall and a square that fills the corners between them
    for half_w, half_h in ((0.42, 0.26), (0.26, 0.42), (0.34, 0.34)):
        b.add(StaticKind.STOP_SIGN, px, py, z + 2.09 - half_h, yaw, 0.02, half_w, half_h, (200, 24, 28))


def _signal_rows(signals):
    """(xy (M, 2), yaw (M,), lanes, is_stop (M,)) of a TrafficSignals or SignalStates (or None)."""
    if signals is None:
        return np.zeros((0, 2)), np.zeros(0), (), np.zeros(0, bool)
    xy = np.asarray(signals.stop_xy_m, dtype=np.float64).reshape(-1, 2)
    yaw = np.asarray(signals.stop_yaw_rad, dtype=np.float64).reshape(-1)
    if hasattr(signals, "phase_of_row"):
        is_stop = np.asarray(signals.phase_of_row) < 0
    elif hasattr(signals, "state"):
        is_stop = np.asarray(signals.state) == LightState.STOP
    else:
        raise ConfigError(
            f"signals must be a TrafficSignals, a SignalStates or None, got {type(signals).__name__}"
        )
    lanes = tuple(signals.lanes)
    if not (len(xy) == len(yaw) == len(lanes) == len(is_stop)):
        raise ConfigError("signals: stop_xy_m, stop_yaw_rad, lanes and states must have one row each")
    return xy, yaw, lanes, is_stop


# -- the scene -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class StaticScene:
    """The ground raster and the static boxes of one map; build with :meth:`build`.

    ``boxes`` (S, BOX_FIELDS) float64 (read-only), ``kinds`` (S,) int8 :class:`StaticKind`;
    ``signal_rows`` is the number of signal rows the scene was built for (a state's
    ``signals`` must have as many; a map's :class:`sim.signals.TrafficSignals` has the
    same rows for every seed, so one scene serves every episode on the map; built
    with ``signals=None`` the scene has no lights and ignores the states' signals).
    ``grid_*`` index the boxes by ``grid_cell_m`` cells: boxes
    ``grid_order[grid_start[k]:grid_start[k + 1]]`` have their centre in cell
    ``k = row * grid_shape[1] + col``, whose corner (0, 0) is at ``grid_origin_xy_m``.
    """

    raster: MapRaster
    boxes: np.ndarray
    kinds: np.ndarray
    signal_rows: int
    seed: int
    config: SceneConfig
    grid_origin_xy_m: tuple[float, float]
    grid_shape: tuple[int, int]
    grid_start: np.ndarray
    grid_order: np.ndarray
    grid_radius_m: np.ndarray  # (cells,) bounding radius of the cell's boxes round (centre, grid_z_m)
    grid_z_m: np.ndarray  # (cells,) height of each cell's bounding-sphere centre
    _ground_cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        road_map: RoadMap,
        signals=None,
        seed: int = 0,
        *,
        config: SceneConfig | None = None,
        raster: MapRaster | None = None,
    ) -> StaticScene:
        """Place everything (deterministic in ``seed``); ``raster`` defaults to ``build_raster(road_map)``."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"StaticScene seed must be a non-negative integer, got {seed!r}")
        config = config or SceneConfig()
        raster = raster if raster is not None else build_raster(road_map)
        xy, yaw, lanes, is_stop = _signal_rows(signals)
        pts = (
            np.concatenate([lane.xyz_m for lane in road_map.lanes.values()])
            if road_map.lanes
            else np.zeros((1, 3))
        )
        builder = _Builder(
            _Clearance.from_raster(raster), cKDTree(pts[:, :2]), pts[:, 2], np.random.default_rng(int(seed))
        )
        builder.buildings(config)
        builder.trees(config)
        builder.lamps(config)
        for row in range(len(xy)):
            if is_stop[row]:
                _add_stop_sign(builder, road_map, xy[row], float(yaw[row]), lanes[row])
            else:
                _add_light(builder, road_map, row, xy[row], float(yaw[row]), lanes[row])
        boxes = np.array(builder.rows, dtype=np.float64).reshape(-1, L.BOX_FIELDS)
        kinds = np.array(builder.kinds, dtype=np.int8)
        grid = _grid(boxes, raster, config.grid_cell_m)
        order = np.asarray(
            grid[3]
        )  # store the boxes cell by cell: a frame reads each cell's boxes in one run
        boxes, kinds = np.ascontiguousarray(boxes[order]), np.ascontiguousarray(kinds[order])
        grid = (*grid[:3], np.arange(len(boxes), dtype=np.int64), *grid[4:])
        grid[3].flags.writeable = False
        boxes.flags.writeable = False
        kinds.flags.writeable = False
        return cls(raster, boxes, kinds, len(xy), int(seed), config, *grid)

    def count(self, kind: StaticKind) -> int:
        """How many boxes of a kind (a tree is three boxes, a street lamp three)."""
        return int(np.count_nonzero(self.kinds == kind))

    def ground(self, palette: np.ndarray) -> GroundTexture:
        """The ground mip pyramid coloured by ``palette`` (cached per palette)."""
        pal = np.ascontiguousarray(palette, dtype=np.float64)
        if pal.shape != (len(RasterClass), 3):
            raise ConfigError(f"palette must be ({len(RasterClass)}, 3), got {pal.shape}")
        key = pal.tobytes()
        if key not in self._ground_cache:
            self._ground_cache[key] = build_ground(self.raster, pal, self.config.mip_levels)
        return self._ground_cache[key]


def _grid(boxes: np.ndarray, raster: MapRaster, cell_m: float):
    x0, y0, x1, y1 = raster.extent_xy_m
    if len(boxes):
        x0, y0 = min(x0, boxes[:, L.X].min()), min(y0, boxes[:, L.Y].min())
        x1, y1 = max(x1, boxes[:, L.X].max()), max(y1, boxes[:, L.Y].max())
    cols = max(1, int(math.ceil((x1 - x0) / cell_m)) + 1)
    rows = max(1, int(math.ceil((y1 - y0) / cell_m)) + 1)
    c = np.clip(((boxes[:, L.X] - x0) / cell_m).astype(np.int64), 0, cols - 1)
    r = np.clip(((boxes[:, L.Y] - y0) / cell_m).astype(np.int64), 0, rows - 1)
    cell = r * cols + c
    order = np.argsort(cell, kind="stable").astype(np.int64)
    start = np.searchsorted(cell[order], np.arange(rows * cols + 1)).astype(np.int64)
    zlo = np.full(rows * cols, 1e9)
    zhi = np.full(rows * cols, -1e9)
    np.minimum.at(zlo, cell, boxes[:, L.Z])
    np.maximum.at(zhi, cell, boxes[:, L.Z] + 2.0 * boxes[:, L.HZ])
    zmid = np.where(zlo <= zhi, 0.5 * (zlo + zhi), 0.0)
    cx = x0 + (c + 0.5) * cell_m
    cy = y0 + (r + 0.5) * cell_m
    dz = boxes[:, L.Z] + boxes[:, L.HZ] - zmid[cell]
    reach = np.sqrt((boxes[:, L.X] - cx) ** 2 + (boxes[:, L.Y] - cy) ** 2 + dz**2) + boxes[:, L.RADIUS]
    radius = np.zeros(rows * cols)
    np.maximum.at(radius, cell, reach)
    for arr in (order, start, radius, zmid):
        arr.flags.writeable = False
    return (float(x0), float(y0)), (rows, cols), start, order, radius, zmid
