"""The catalog of a store folder: episodes, interventions and fast access to any frame.

:meth:`Catalog.scan` reads the footer of every ``*.parquet`` file in the folder (not the
rows: a few hundred microseconds a file) and keeps what the episode headers say
(:mod:`envs.store`). Hidden ``.*.partial`` files (episodes being written, or left by a
killed process) are not episodes; a file that cannot be read or is not a complete
loopdrive episode is reported in :attr:`Catalog.problems` (path and reason) and
skipped, never fatal.

* :meth:`Catalog.episodes` filters by scenario, policy and result;
  :meth:`Catalog.interventions` lists every intervention (optionally of one trigger),
  :meth:`Catalog.intervention_counts` counts them by trigger;
  :meth:`Catalog.episodes_table` / :meth:`Catalog.interventions_table` give the same as
  pyarrow tables (for pandas or DuckDB).
* :meth:`Catalog.frame` reads one frame, by global index or by (episode, step): one
  row group of the episode file (``row_group_rows`` rows, 32 by default) and the
  images of that row decoded; the file's footer is kept open in a small cache.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from envs.store import EPISODE_SUFFIX, PARTIAL_SUFFIX, StoreError, decode_image, read_header

__all__ = ["EpisodeEntry", "Catalog"]

_OPEN_FILES = 64


@dataclass(frozen=True)
class EpisodeEntry:
    """One complete episode file of the store and its header."""

    path: Path
    header: dict

    @property
    def episode_id(self) -> str:
        return self.header["episode_id"]

    @property
    def scenario_name(self) -> str:
        sc = self.header["scenario"]
        return sc.get("name") or sc.get("map", "")

    @property
    def policy_id(self) -> str:
        return self.header.get("policy_id", "")

    @property
    def result(self) -> str:
        return self.header["result"].get("termination_reason", "")

    @property
    def frames(self) -> int:
        return int(self.header["frames"])

    @property
    def interventions(self) -> list[dict]:
        return [e for e in self.header.get("events", []) if e.get("kind") == "intervention"]


class Catalog:
    """What a store folder holds (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        entries: list[EpisodeEntry],
        problems: list[tuple[Path, str]],
        partials: list[Path] | None = None,
    ):
        self.root = root
        self.partials = partials or []
        self.entries = entries
        self.problems = problems
        self._starts = np.cumsum([0] + [e.frames for e in entries]).tolist()
        self._by_id = {e.episode_id: e for e in entries}
        self._files: OrderedDict[Path, pq.ParquetFile] = OrderedDict()

    @classmethod
    def scan(cls, root: str | Path) -> Catalog:
        root = Path(root)
        if not root.is_dir():
            raise StoreError(f"{root}: no such store folder")
        entries, problems = [], []
        for path in sorted(root.glob(f"*{EPISODE_SUFFIX}")):
            try:
                header = read_header(path)
                if not isinstance(header.get("frames"), int) or header["frames"] < 1:
                    raise StoreError(f"{path}: the header gives no frame count")
            except StoreError as exc:
                problems.append((path, str(exc)))
                continue
            entries.append(EpisodeEntry(path, header))
        partials = sorted(root.glob(f".*{PARTIAL_SUFFIX}"))
        return cls(root, entries, problems, partials)

    # -- queries --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def n_frames(self) -> int:
        return self._starts[-1]

    def episode(self, episode_id: str) -> EpisodeEntry:
        try:
            return self._by_id[episode_id]
        except KeyError:
            raise StoreError(f"{self.root}: no episode {episode_id!r}") from None

    def episodes(
        self, *, scenario: str | None = None, policy: str | None = None, result: str | None = None
    ) -> list[EpisodeEntry]:
        """Episodes whose scenario name (or map), policy id and termination reason match."""
        return [
            e
            for e in self.entries
            if (scenario is None or e.scenario_name == scenario)
            and (policy is None or e.policy_id == policy)
            and (result is None or e.result == result)
        ]

    def interventions(self, trigger: str | None = None) -> list[dict]:
        """Every intervention (optionally of one trigger), with its episode id and path."""
        return [
            {**event, "episode_id": e.episode_id, "path": str(e.path)}
            for e in self.entries
            for event in e.interventions
            if trigger is None or event.get("trigger") == trigger
        ]

    def intervention_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for event in self.interventions():
            counts[event["trigger"]] = counts.get(event["trigger"], 0) + 1
        return dict(sorted(counts.items()))

    def episodes_table(self) -> pa.Table:
        rows = []
        for e in self.entries:
            r = e.header["result"]
            rows.append(
                {
                    "episode_id": e.episode_id,
                    "path": str(e.path),
                    "scenario": e.scenario_name,
                    "map": e.header["scenario"].get("map", ""),
                    "policy_id": e.policy_id,
                    "seed": int(e.header["seed"]),
                    "frames": e.frames,
                    "result": e.result,
                    "complete": bool(r.get("complete", False)),
                    "route_completion": float(r.get("route_completion", 0.0)),
                    "driving_score": float(r.get("driving_score", 0.0)),
                    "interventions": len(e.interventions),
                }
            )
        return pa.Table.from_pylist(rows)

    def interventions_table(self) -> pa.Table:
        keys = ("episode_id", "trigger", "driver", "step", "time_s", "context_start_step", "end_step")
        return pa.Table.from_pylist([{k: ev.get(k) for k in keys} for ev in self.interventions()])

    # -- frames ---------------------------------------------------------------------------

    def locate(self, index: int) -> tuple[EpisodeEntry, int]:
        """(episode, step) of the global frame ``index`` (episodes in file-name order)."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside the store's {self.n_frames} frames")
        k = bisect.bisect_right(self._starts, index) - 1
        return self.entries[k], index - self._starts[k]

    def frame(self, index: int | tuple[str, int], columns: list[str] | None = None) -> dict[str, Any]:
        """One frame as a dict of its columns, ``camera`` (n, H, W, 3) and ``route``
        (S, S, C) decoded in place of the PNG columns."""
        if isinstance(index, tuple):
            entry, step = self.episode(index[0]), int(index[1])
            if not 0 <= step < entry.frames:
                raise IndexError(f"episode {entry.episode_id} has {entry.frames} frames, not step {step}")
        else:
            entry, step = self.locate(int(index))
        return read_frame(self._file(entry.path), entry.header, step, columns)

    def _file(self, path: Path) -> pq.ParquetFile:
        pf = self._files.get(path)
        if pf is None:
            pf = pq.ParquetFile(path)
            self._files[path] = pf
            if len(self._files) > _OPEN_FILES:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(path)
        return pf


def read_frame(pf: pq.ParquetFile, header: dict, step: int, columns: list[str] | None = None) -> dict:
    """Row ``step`` of an episode file: one row group read, its images decoded."""
    per = int(header.get("row_group_rows", 0)) or pf.metadata.row_group(0).num_rows
    group, offset = divmod(step, per)
    table = pf.read_row_group(group, columns=columns)
    row = {name: table.column(name)[offset].as_py() for name in table.column_names}
    if "camera_png" in row:
        shape = tuple(header["camera_shape"][1:])
        row["camera"] = np.stack([decode_image(b, shape) for b in row.pop("camera_png")])
    if "route_png" in row:
        row["route"] = decode_image(row.pop("route_png"), tuple(header["route_shape"]))
    return row
