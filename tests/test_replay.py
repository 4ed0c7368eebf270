"""Deterministic replay: bit-exact verification of recorded episodes, a tampered action
found at its step, continuing from a step with another policy, video, golden rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envs.drivers import AutopilotPolicy
from envs.replay import drive_from, load_episode, replay_to, verify_episode, write_video
from envs.store import METADATA_KEY, StoreError
from envs.world import SharedAssets
from scripts.cli import main as cli
from scripts.refresh_golden import GOLDEN, GOLDEN_DIR, observation_hash
from sim.errors import LoopdriveError
from tests.recording import record


@pytest.fixture(scope="module")
def assets() -> SharedAssets:
    return SharedAssets()


@pytest.fixture(scope="module")
def episodes(tmp_path_factory, assets):
    """Varied short episodes: a gated random policy at night, the autopilot in the rain."""
    store = tmp_path_factory.mktemp("replay")
    gated, _ = record(
        store, assets, seeds=(1,), policy="random-forward", gate="autopilot", max_steps=300, weather="night"
    )
    plain, _ = record(store, assets, seeds=(6,), policy="autopilot", max_steps=150, weather="rain")
    return gated + plain


def _rewrite(src: Path, dst: Path, change) -> None:
    """Copy an episode file with ``change(columns)`` applied and its header kept."""
    table = pq.read_table(src)
    columns = table.to_pydict()
    change(columns)
    meta = pq.read_metadata(src).metadata
    out = pa.Table.from_pydict(columns, schema=table.schema)
    with pq.ParquetWriter(dst, table.schema) as writer:
        writer.write_table(out, row_group_size=32)
        writer.add_key_value_metadata({METADATA_KEY: meta[METADATA_KEY]})


def test_recorded_episodes_replay_bit_exact(episodes, assets):
    drivers = set()
    for path in episodes:
        result = verify_episode(path, assets=assets)
        assert result.ok, result.message()
        assert result.frames == load_episode(path).steps + 1
        drivers |= set(load_episode(path).driver)
    assert "autopilot" in drivers  # the gated episode has a takeover in it


def test_a_changed_action_fails_verify_at_its_step(episodes, assets, tmp_path, capsys):
    src = episodes[1]
    ep = load_episode(src)
    k = int(np.flatnonzero(ep.speed_mps[: ep.steps] > 2.0)[5])

    def brake_instead(columns):
        steer, accel = columns["executed_action"][k]
        columns["executed_action"][k] = [steer, -1.0 if accel > -0.5 else 1.0]

    bad = tmp_path / "tampered.parquet"
    _rewrite(src, bad, brake_instead)
    result = verify_episode(bad, assets=assets)
    assert not result.ok and result.first_bad_step == k and result.first_bad_frame == k + 1
    assert cli(["replay", str(bad), "--verify"]) == 1
    assert f"step {k} differs" in capsys.readouterr().out
    # the untouched copy still passes through the command
    assert cli(["replay", str(src), "--verify"]) == 0


def test_replay_reaches_the_recorded_state_and_another_policy_drives_on(episodes, assets):
    ep = load_episode(episodes[0])
    k = ep.steps // 2
    env, obs, info = replay_to(ep, k, assets=assets)
    frame = next(ep.frames(start=k))
    assert (
        frame[0] == k and np.array_equal(obs["camera"], frame[1]) and np.array_equal(obs["route"], frame[2])
    )
    end = drive_from(env, obs, info, AutopilotPolicy(), max_steps=5000)
    assert end["termination_reason"].value == "route_completed"
    env.close()
    with pytest.raises(LoopdriveError, match="from-step"):
        replay_to(ep, ep.steps + 1, assets=assets)


def test_video_of_a_replay(episodes, assets, tmp_path):
    import imageio.v2 as imageio

    out = tmp_path / "replay.mp4"
    n = write_video(out, load_episode(episodes[0]), assets=assets, until=12)
    assert n == 13 and out.stat().st_size > 0
    reader = imageio.get_reader(out)
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == 13 and frames[0].shape[1] >= 640


def test_changed_map_and_bad_files_are_refused(episodes, tmp_path, capsys):
    src = episodes[1]
    meta = pq.read_metadata(src).metadata
    head = json.loads(meta[METADATA_KEY])
    head["map_hash"] = "0" * 64
    moved = tmp_path / "moved.parquet"
    table = pq.read_table(src)
    with pq.ParquetWriter(moved, table.schema) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata({METADATA_KEY: json.dumps(head).encode()})
    with pytest.raises(StoreError, match="changed since the recording"):
        verify_episode(moved)
    assert cli(["replay", str(tmp_path / "missing.parquet"), "--verify"]) == 2
    assert "no such episode file" in capsys.readouterr().err
    assert cli(["replay", str(src)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert cli(["replay", str(src), "--from-step", "3"]) == 2


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_rollouts_replay_to_the_reference(name, assets):
    """Golden rollouts (tests/golden, refreshed by ``python -m scripts.refresh_golden``):
    every re-simulated observation hashes to the reference, and matches the stored frame."""
    path = GOLDEN_DIR / f"{name}.parquet"
    reference = json.loads((GOLDEN_DIR / "reference.json").read_text())[name]
    ep = load_episode(path)
    assert ep.steps + 1 == len(reference)
    hashes = []
    replay_to(
        ep, ep.steps, assets=assets, on_step=lambda env, obs, info, k: hashes.append(observation_hash(obs))
    )
    bad = [i for i, (a, b) in enumerate(zip(hashes, reference, strict=True)) if a != b]
    assert not bad, f"frames {bad[:5]} differ from the reference"
    assert verify_episode(path, assets=assets).ok
