"""The episode store: file layout and header, lossless frames, the catalog, corrupt files,
and a recording killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from envs.catalog import Catalog
from envs.store import (
    METADATA_KEY,
    STEP_SCHEMA,
    StoreError,
    decode_image,
    encode_image,
    env_config_from_dict,
    env_config_to_dict,
    read_header,
)
from envs.world import SharedAssets
from scripts.cli import main as cli
from sim.scenario import scenario_from_dict
from tests.recording import record

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assets() -> SharedAssets:
    return SharedAssets()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, assets):
    """Two short autopilot episodes, the second cut after 50 steps, and what the env showed."""
    store = tmp_path_factory.mktemp("store")
    paths, seen = record(store, assets, seeds=(3,))
    cut_paths, cut_seen = record(store, assets, seeds=(4,), max_steps=50)
    return store, paths + cut_paths, seen + cut_seen


def test_images_round_trip_losslessly():
    rng = np.random.default_rng(0)
    for shape in [(16, 32, 3), (64, 64, 2), (8, 8, 1), (5, 7, 4)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(decode_image(encode_image(image), shape), image)
    with pytest.raises(ValueError, match="uint8"):
        encode_image(np.zeros((4, 4, 3), np.float32))


def test_env_config_round_trips(assets):
    from envs.config import DrivingEnvConfig
    from sim.scenario import Scenario

    config = DrivingEnvConfig(
        camera_width_px=48, route_length_m=(100.0, 120.0), scenario=Scenario("generated:2")
    )
    assert env_config_from_dict(json.loads(json.dumps(env_config_to_dict(config)))) == config


def test_episode_file_holds_every_step_and_the_header(recorded):
    store, paths, seen = recorded
    assert len(paths) == 2 and all(p.parent == store and p.suffix == ".parquet" for p in paths)
    for path, episode in zip(paths, seen, strict=True):
        head = read_header(path)
        table = pq.read_table(path)
        assert table.schema.remove_metadata().equals(STEP_SCHEMA)
        assert head["frames"] == len(episode) == table.num_rows
        assert head["steps"] == len(episode) - 1
        assert head["backend"] == "embedded" and head["policy_id"] == "autopilot" and head["version"]
        assert len(head["map_hash"]) == 64
        assert scenario_from_dict(head["scenario"]).map == "generated:0"
        assert table.column("step").to_pylist() == list(range(len(episode)))
        # every frame decodes to exactly what the env showed
        for k in (0, len(episode) // 2, len(episode) - 1):
            cams = table.column("camera_png")[k].as_py()
            stored = np.stack([decode_image(b, tuple(head["camera_shape"][1:])) for b in cams])
            assert np.array_equal(stored, episode[k]["camera"])
            route = decode_image(table.column("route_png")[k].as_py(), tuple(head["route_shape"]))
            assert np.array_equal(route, episode[k]["route"])
            assert table.column("speed_mps")[k].as_py() == pytest.approx(float(episode[k]["speed"][0]), abs=0)
        # the last row is the final observation: nothing was done in it
        assert table.column("executed_action")[len(episode) - 1].as_py() is None
        assert table.column("driver").to_pylist()[:-1] == ["policy"] * (len(episode) - 1)
        assert table.column("autopilot_action")[0].as_py() is not None
    first, second = (read_header(p)["result"] for p in paths)
    assert first["complete"] and first["termination_reason"] == "route_completed"
    assert not second["complete"] and second["termination_reason"] == "none" and second["steps"] == 50


def test_catalog_queries_and_frames(recorded):
    store, paths, seen = recorded
    catalog = Catalog.scan(store)
    assert len(catalog) == 2 and not catalog.problems
    assert catalog.n_frames == sum(len(e) for e in seen)
    assert len(catalog.episodes(policy="autopilot")) == 2
    assert catalog.episodes(policy="random") == []
    assert len(catalog.episodes(scenario="generated:0", result="route_completed")) >= 1
    table = catalog.episodes_table()
    assert table.num_rows == 2 and set(table.column("policy_id").to_pylist()) == {"autopilot"}
    by_path = {e.path: e for e in catalog.entries}
    for path, episode in zip(paths, seen, strict=True):
        entry = by_path[path]
        for step in (0, 31, 32, len(episode) - 1):
            frame = catalog.frame((entry.episode_id, step))
            assert frame["step"] == step
            assert np.array_equal(frame["camera"], episode[step]["camera"])
            assert np.array_equal(frame["route"], episode[step]["route"])
    # a global index reaches the same rows
    entry, step = catalog.locate(catalog.n_frames - 1)
    assert step == entry.frames - 1
    with pytest.raises(IndexError):
        catalog.frame(catalog.n_frames)


def test_corrupt_files_are_reported_and_skipped(recorded, tmp_path, capsys):
    store, paths, _ = recorded
    for p in paths:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    data = paths[0].read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(data[: len(data) // 2])
    pq.write_table(pq.read_table(paths[0]), tmp_path / "foreign.parquet")  # no loopdrive header
    catalog = Catalog.scan(tmp_path)
    assert len(catalog) == 2
    bad = {p.name: reason for p, reason in catalog.problems}
    assert set(bad) == {"garbage.parquet", "truncated.parquet", "foreign.parquet"}
    assert "not a readable Parquet file" in bad["garbage.parquet"]
    assert "header" in bad["foreign.parquet"]
    assert cli(["store", "summary", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["episodes"] == 2 and len(summary["skipped"]) == 3
    assert "skipped" in out.err and "garbage.parquet" in out.err
    with pytest.raises(StoreError, match="garbage.parquet"):
        read_header(tmp_path / "garbage.parquet")


def test_store_summary_of_a_missing_folder_is_one_line(tmp_path, capsys):
    assert cli(["store", "summary", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopdrive: error:") and "no such store folder" in err


_RECORDER = textwrap.dedent(
    """
    import itertools, sys
    import numba
    numba.set_num_threads(1)
    from tests.recording import record
    from envs.world import SharedAssets
    assets = SharedAssets()
    for seed in itertools.count():
        record(sys.argv[1], assets, seeds=(seed,), route_length_m=(60.0, 80.0))
    """
)


@pytest.mark.slow
def test_sigkill_mid_episode_leaves_complete_episodes_readable(tmp_path):
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"}
    proc = subprocess.Popen([sys.executable, "-c", _RECORDER, str(store)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = list(store.glob("*.parquet")) if store.is_dir() else []
            partial = list(store.glob(".*.partial")) if store.is_dir() else []
            if done and partial and partial[0].stat().st_size > 0:
                break
            assert proc.poll() is None, "the recording process died on its own"
            time.sleep(0.05)
        else:
            pytest.fail("no complete episode and one in progress within 240 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    catalog = Catalog.scan(store)
    complete = sorted(store.glob("*.parquet"))
    assert len(catalog) == len(complete) >= 1 and not catalog.problems
    assert len(catalog.partials) == 1  # the episode in progress, not listed as an episode
    for entry in catalog.entries:
        assert not entry.path.name.startswith(".")
        assert pq.read_table(entry.path).num_rows == entry.frames
        assert catalog.frame((entry.episode_id, entry.frames - 1))["camera"].shape[0] == 1
    assert METADATA_KEY not in (pq.read_schema(complete[0]).metadata or {})
