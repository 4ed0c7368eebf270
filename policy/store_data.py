"""Training frames from the episode store (:mod:`envs.store`): every recorded
observation with the privileged autopilot's action for it as the label.

:func:`samples_from_store` reads each complete episode of a store folder (the
:class:`envs.catalog.Catalog` skips partial files) into :class:`~policy.data.Samples`:
the observation columns decoded losslessly, ``autopilot_action`` as the label,
future waypoints from the recorded ego pose (valid where the executed action was the
autopilot's), and rows where a takeover started (``intervention``) weighted
``takeover_weight``. The final row of an episode (no action) is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from policy.data import DataError, Samples, future_waypoints

__all__ = ["samples_from_store"]

_COLUMNS = [
    "camera_png",
    "route_png",
    "speed_mps",
    "command",
    "command_distance_m",
    "ego_x_m",
    "ego_y_m",
    "ego_yaw_rad",
    "executed_action",
    "autopilot_action",
    "intervention",
]


def _episode(path: Path, header: dict, every: int, takeover_weight: float) -> Samples | None:
    import pyarrow.parquet as pq

    from envs.store import decode_image

    t = pq.read_table(path, columns=_COLUMNS).to_pydict()
    rows = [
        k
        for k, a in enumerate(t["autopilot_action"])
        if a is not None and t["executed_action"][k] is not None
    ]
    if not rows:
        return None
    cam_shape = tuple(header["camera_shape"])  # (n, H, W, 3)
    route_shape = tuple(header["route_shape"])
    executed = np.array([t["executed_action"][k] for k in rows], np.float32)
    label = np.array([t["autopilot_action"][k] for k in rows], np.float32)
    pose = np.array([[t["ego_x_m"][k], t["ego_y_m"][k], t["ego_yaw_rad"][k]] for k in rows], np.float64)
    dt_s = float(header.get("env_config", {}).get("world", {}).get("dt_s", 0.05))
    wp, valid = future_waypoints(pose, np.all(executed == label, axis=1), dt_s)
    keep = np.arange(0, len(rows), every)
    pick = [rows[i] for i in keep]
    camera = np.stack(
        [np.stack([decode_image(png, cam_shape[1:]) for png in t["camera_png"][k]]) for k in pick]
    )
    return Samples(
        camera=camera,
        route=np.stack([decode_image(t["route_png"][k], route_shape) for k in pick]),
        speed=np.array([[t["speed_mps"][k]] for k in pick], np.float32),
        command=np.array([t["command"][k] for k in pick], np.int64),
        command_distance_m=np.array([[t["command_distance_m"][k]] for k in pick], np.float32),
        action=label[keep],
        waypoints=wp[keep],
        waypoints_valid=valid[keep],
        weight=np.array([takeover_weight if t["intervention"][k] else 1.0 for k in pick], np.float32),
    )


def samples_from_store(store: str | os.PathLike, *, every: int = 1, takeover_weight: float = 3.0) -> Samples:
    """Every ``every``-th labelled frame of every complete episode in ``store``."""
    from envs.catalog import Catalog

    folder = Path(store)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such episode store")
    catalog = Catalog.scan(folder)
    parts = [_episode(e.path, e.header, every, takeover_weight) for e in catalog.episodes()]
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        raise DataError(f"{folder}: no usable frames (no complete episode with autopilot labels)")
    return Samples.concat(parts)
