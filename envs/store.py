"""The episode store: one Apache Parquet file per episode, written crash-safe.

An episode file holds one row per observation and the episode's header in the file's
key/value metadata, so pyarrow, pandas or DuckDB read a store folder without loopdrive.

Rows (row ``k`` = the observation ``o_k`` the driver saw, and what was done there):

=====================  ======================  ===============================================
column                 type                    meaning
=====================  ======================  ===============================================
``step``               int32                   k (0 = the reset's observation)
``time_s``             float64                 simulated time of ``o_k``
``camera_png``         list<binary>            the rig's images of ``o_k``, one PNG each (RGB)
``route_png``          binary                  the low-definition route map of ``o_k`` (PNG)
``speed_mps``          float32                 the ``speed`` observation
``command``            int8                    the ``command`` observation (next maneuver)
``command_distance_m`` float32                 the ``command_distance_m`` observation
``ego_x_m`` ...        float64                 the true ego pose (``ego_x_m``, ``ego_y_m``,
                                               ``ego_yaw_rad``; privileged, for analysis)
``policy_action``      fixed_size_list<f32>[2] what the policy wanted in ``o_k``
``executed_action``    fixed_size_list<f32>[2] what was applied (replay re-applies it)
``autopilot_action``   fixed_size_list<f32>[2] the privileged autopilot's action for ``o_k``
``driver``             string                  who drove from ``o_k``: policy, autopilot, human
``intervention``       string                  the trigger, on the step a takeover starts
``reward``             float64                 reward of the step that led to ``o_k``
``terminated``         bool                    ...and its flags (row 0: 0 and False)
``truncated``          bool
``events``             list<string>            world events of the tick that led to ``o_k``
=====================  ======================  ===============================================

The last row is the final observation: its action columns and ``driver`` are null.
Images are PNG (lossless: a stored frame decodes to the exact array), encoded with
their channels as they are for 1, 3 or 4 channels and otherwise as one grey image of
the channels side by side, (H, C*W) (the 2-channel route map).

Header (the footer's key/value metadata ``loopdrive``, JSON, as
``pq.read_metadata(path).metadata`` reads it): ``format``, ``episode_id``, the full
``scenario`` (:func:`sim.scenario.scenario_to_dict`), ``seed`` (the episode seed),
``backend``, ``map_hash`` (the map's content hash, as the raster cache keys it),
``version`` (loopdrive's), ``policy_id``, ``env_config`` (what replay needs to build the
same env), ``camera_shape``, ``route_shape``, ``row_group_rows``, and when the file is
complete: ``frames``, ``steps``, ``result`` (termination reason, route completion,
infraction penalty, driving score, ...) and ``events`` (interventions, hand-backs,
shadow-mode disagreements: a small table of dicts).

Crash safety: rows stream into ``.<name>.partial`` (a hidden name: pyarrow datasets,
DuckDB globs and :mod:`envs.catalog` skip it) in row groups of ``row_group_rows``;
:meth:`EpisodeWriter.close` writes the footer, fsyncs and renames the file to
``<name>.parquet`` (atomic), then fsyncs the folder. A killed process loses at most
the episode in progress.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from envs.config import DrivingEnvConfig
from sim.errors import LoopdriveError
from sim.scenario import Scenario, scenario_from_dict, scenario_to_dict

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "EPISODE_SUFFIX",
    "PARTIAL_SUFFIX",
    "STEP_SCHEMA",
    "StoreError",
    "EpisodeHeader",
    "EpisodeWriter",
    "encode_image",
    "decode_image",
    "read_header",
    "env_config_to_dict",
    "env_config_from_dict",
    "loopdrive_version",
]

#: version of the file layout (bumped when a reader must tell files apart)
FORMAT_VERSION = 1
#: the key of the episode header in the Parquet file's key/value metadata
METADATA_KEY = b"loopdrive"
EPISODE_SUFFIX = ".parquet"
PARTIAL_SUFFIX = ".partial"
#: rows per row group: small enough that reading one frame reads little
DEFAULT_ROW_GROUP_ROWS = 32

_ACTION = pa.list_(pa.float32(), 2)
STEP_SCHEMA = pa.schema(
    [
        ("step", pa.int32()),
        ("time_s", pa.float64()),
        ("camera_png", pa.list_(pa.binary())),
        ("route_png", pa.binary()),
        ("speed_mps", pa.float32()),
        ("command", pa.int8()),
        ("command_distance_m", pa.float32()),
        ("ego_x_m", pa.float64()),
        ("ego_y_m", pa.float64()),
        ("ego_yaw_rad", pa.float64()),
        ("policy_action", _ACTION),
        ("executed_action", _ACTION),
        ("autopilot_action", _ACTION),
        ("driver", pa.string()),
        ("intervention", pa.string()),
        ("reward", pa.float64()),
        ("terminated", pa.bool_()),
        ("truncated", pa.bool_()),
        ("events", pa.list_(pa.string())),
    ]
)

_IMAGE_COLUMNS = ("camera_png", "route_png")
_SCALAR_COLUMNS = [name for name in STEP_SCHEMA.names if name not in _IMAGE_COLUMNS]


class StoreError(LoopdriveError):
    """An episode file that cannot be read or written (the path and the reason)."""


def loopdrive_version() -> str:
    try:
        return metadata.version("loopdrive")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# -- images ------------------------------------------------------------------------------


def encode_image(image: np.ndarray) -> bytes:
    """Lossless PNG of a ``uint8`` (H, W, C) image (C 1, 3 or 4 as is; else grey H x C*W)."""
    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8 or a.ndim != 3:
        raise ValueError(f"an image is uint8 (H, W, C), got {a.dtype} {a.shape}")
    if a.shape[2] not in (1, 3, 4):  # the channels side by side as one grey image
        a = np.ascontiguousarray(a.transpose(0, 2, 1)).reshape(a.shape[0], -1)
    ok, buf = cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def decode_image(data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`encode_image` for an image of ``shape`` (H, W, C)."""
    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ValueError("not a PNG image")
    h, w, c = shape
    if c not in (1, 3, 4):
        return np.ascontiguousarray(a.reshape(h, c, w).transpose(0, 2, 1))
    return a.reshape(shape)


# -- env config as plain data ----------------------------------------------------------------


def env_config_to_dict(config: DrivingEnvConfig) -> dict:
    """The env config as JSON-ready data (the scenario through ``scenario_to_dict``)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "scenario":
            out[f.name] = None if value is None else scenario_to_dict(value)
        else:
            out[f.name] = _plain(value)
    return out


def env_config_from_dict(data: dict) -> DrivingEnvConfig:
    """Inverse of :func:`env_config_to_dict`; bad values raise ``ConfigError`` (validated)."""
    values = dict(data)
    scenario = values.pop("scenario", None)
    config = _build(DrivingEnvConfig, values, "env_config")
    if scenario is not None:
        config = config.replace(scenario=scenario_from_dict(scenario))
    return config


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise StoreError(f"{where}: unknown field(s) {', '.join(unknown)} (written by a newer loopdrive?)")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple:
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)


# -- writing ---------------------------------------------------------------------------------


@dataclass
class EpisodeHeader:
    """What an episode file says about itself (see the module docstring)."""

    scenario: Scenario
    seed: int
    env_config: DrivingEnvConfig
    camera_shape: tuple[int, int, int, int]
    route_shape: tuple[int, int, int]
    map_hash: str
    policy_id: str = "unknown"
    backend: str = "embedded"
    episode_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    version: str = field(default_factory=loopdrive_version)

    def to_dict(self) -> dict:
        env = env_config_to_dict(self.env_config.replace(scenario=None))
        return {
            "format": FORMAT_VERSION,
            "episode_id": self.episode_id,
            "scenario": scenario_to_dict(self.scenario),
            "seed": int(self.seed),
            "backend": self.backend,
            "map_hash": self.map_hash,
            "version": self.version,
            "policy_id": self.policy_id,
            "env_config": env,
            "camera_shape": list(self.camera_shape),
            "route_shape": list(self.route_shape),
        }


class EpisodeWriter:
    """Streams one episode's rows into ``store_dir`` (see the module docstring).

    ``add(row)`` takes a dict with the :data:`STEP_SCHEMA` columns, images as arrays
    (``camera``: (n, H, W, 3) and ``route``: (S, S, C)) in place of the PNG columns;
    ``add_event(event)`` adds a dict to the header's ``events``; ``close(result)``
    finishes the file and returns its path; ``abort()`` removes the partial file.
    """

    def __init__(self, store_dir: str | Path, header: EpisodeHeader, *, row_group_rows: int = 0):
        self.store_dir = Path(store_dir)
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.store_dir}: cannot create the store folder ({exc.strerror})") from None
        self.header = header
        self.row_group_rows = row_group_rows or DEFAULT_ROW_GROUP_ROWS
        self.path = self.store_dir / f"{header.episode_id}{EPISODE_SUFFIX}"
        self.partial_path = self.store_dir / f".{header.episode_id}{EPISODE_SUFFIX}{PARTIAL_SUFFIX}"
        self.events: list[dict] = []
        self.frames = 0
        self._rows: list[dict] = []
        self._head = header.to_dict()
        self._head["row_group_rows"] = self.row_group_rows
        # the header goes into the footer's key/value metadata at close: a file without
        # it is unfinished (the schema's own metadata would keep a stale copy)
        self._writer = pq.ParquetWriter(
            self.partial_path,
            STEP_SCHEMA,
            compression="zstd",
            # no min/max statistics or dictionaries of image bytes: they would copy the PNGs
            write_statistics=_SCALAR_COLUMNS,
            use_dictionary=["driver", "intervention", "events"],
        )

    def add(self, row: dict) -> None:
        if self._writer is None:
            raise RuntimeError("the episode is closed")
        values = {k: v for k, v in row.items() if k not in ("camera", "route")}
        values["camera_png"] = [encode_image(img) for img in row["camera"]]
        values["route_png"] = encode_image(row["route"])
        self._rows.append(values)
        self.frames += 1
        if len(self._rows) >= self.row_group_rows:
            self._flush()

    def add_event(self, event: dict) -> None:
        self.events.append(dict(event))

    def _flush(self) -> None:
        if self._rows:
            table = pa.Table.from_pylist(self._rows, schema=STEP_SCHEMA)
            self._writer.write_table(table, row_group_size=self.row_group_rows)
            self._rows = []

    def close(self, result: dict) -> Path:
        """Finish the file: the last rows, the header with ``result`` and the events,
        fsync, and the atomic rename to its final name."""
        if self._writer is None:
            raise RuntimeError("the episode is closed")
        self._flush()
        final = {**self._head, "frames": self.frames, "steps": max(0, self.frames - 1)}
        final["result"] = result
        final["events"] = self.events
        self._writer.add_key_value_metadata({METADATA_KEY: json.dumps(final).encode()})
        self._writer.close()
        self._writer = None
        with open(self.partial_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.partial_path, self.path)
        _fsync_dir(self.store_dir)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.partial_path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename is still atomic
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------


def read_header(path: str | Path) -> dict:
    """The header of an episode file (its last key/value metadata). A file that is not
    a readable, complete loopdrive episode raises :class:`StoreError` naming it."""
    path = Path(path)
    try:
        meta = pq.read_metadata(path).metadata or {}
    except FileNotFoundError:
        raise StoreError(f"{path}: no such episode file") from None
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path}: not a readable Parquet file ({_short(exc)})") from None
    raw = meta.get(METADATA_KEY)
    if raw is None:
        raise StoreError(f"{path}: a Parquet file without a loopdrive episode header")
    try:
        head = json.loads(raw)
    except ValueError:
        raise StoreError(f"{path}: the episode header is not valid JSON") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT_VERSION:
        raise StoreError(
            f"{path}: unknown episode format {head.get('format') if isinstance(head, dict) else '?'}"
        )
    if "result" not in head:
        raise StoreError(f"{path}: the episode header has no result (an unfinished file)")
    return head


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
