"""``loopdrive demo``, the README's first command: the town, the route picture, and a
recorded, filmed drive under the autopilot gate whose episode replays bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]


def _demo(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scripts.cli", "demo", "--out", str(tmp_path / "demo"), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_demo_writes_the_town_the_picture_and_a_replayable_filmed_drive(tmp_path):
    result = _demo(
        tmp_path, "--scenario", "random", "--drive-length", "80", "--policy", "random-forward", "--seed", "1"
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "demo"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strongly_connected"] and summary["route_length_m"] > 100
    picture = cv2.imread(str(out / "town_route.png"))
    assert picture is not None and picture.std() > 10  # a picture, not a blank
    assert "under the autopilot gate" in result.stdout and "interventions:" in result.stdout
    episodes = sorted((out / "store").glob("*.parquet"))
    assert len(episodes) == 1
    assert (out / "demo.mp4").stat().st_size > 10_000
    replay = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "replay", str(episodes[0]), "--verify"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "bit-exact" in replay.stdout


def test_demo_with_an_unknown_scenario_is_one_clear_error(tmp_path):
    result = _demo(tmp_path, "--scenario", "no_such_scenario")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("loopdrive: error:")]
    assert len(errors) == 1 and "no_such_scenario" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
