"""Random frame access in a large episode store: ``python -m scripts.bench_store``.

Builds a store of ``--frames`` frames out of the episode files of ``--from DIR`` (hard
links under new names: no disk space, the same bytes, so the page cache is warm and
the figure is the CPU cost of the access), scans it with the catalog and times
``Catalog.frame(index)`` for random global indices: locate the file, open its footer
(the catalog keeps 64 open), read one row group and decode that row's images. Prints
JSON. Numbers taken on a shared machine are "measured under load".
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from envs.catalog import Catalog


def build(source: Path, target: Path, frames: int) -> int:
    files = sorted(source.glob("*.parquet"))
    if not files:
        raise SystemExit(f"{source}: no episode files")
    target.mkdir(parents=True, exist_ok=True)
    sizes = [e.frames for e in Catalog.scan(source).entries]
    total, k = 0, 0
    while total < frames:
        src = files[k % len(files)]
        dst = target / f"ep{k:07d}.parquet"
        if not dst.exists():
            os.link(src, dst)
        total += sizes[k % len(files)]
        k += 1
    return k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a store with some episodes")
    parser.add_argument("--dir", type=Path, required=True, help="where to build the large store")
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    files = build(args.source, args.dir, args.frames)
    t0 = time.perf_counter()
    catalog = Catalog.scan(args.dir)
    scan_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    times = []
    for index in rng.integers(0, catalog.n_frames, args.reads):
        t = time.perf_counter()
        frame = catalog.frame(int(index))
        times.append(time.perf_counter() - t)
        assert frame["camera"].dtype == np.uint8
    ms = np.array(times) * 1e3
    print(
        json.dumps(
            {
                "files": files,
                "frames": catalog.n_frames,
                "scan_s": round(scan_s, 2),
                "random_frame_ms": {
                    "median": round(float(np.median(ms)), 2),
                    "p90": round(float(np.percentile(ms, 90)), 2),
                    "p99": round(float(np.percentile(ms, 99)), 2),
                },
                "reads": args.reads,
                "camera_shape": list(frame["camera"].shape),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
