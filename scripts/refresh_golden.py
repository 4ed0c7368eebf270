"""Re-record the golden rollouts kept with the tests (``tests/golden/``).

``python -m scripts.refresh_golden`` records each episode of :data:`GOLDEN` (small,
seeded, a few seconds each), writes it as ``tests/golden/NAME.parquet`` and the hash of
every observation as ``tests/golden/reference.json``. ``tests/test_replay.py`` replays
the files and compares. Refresh only when a change of the simulator or the renderer
is meant to change what the env shows, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["GOLDEN", "GOLDEN_DIR", "observation_hash", "refresh"]

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "tests" / "golden"
#: name -> (policy, takeover gate, episode seed, steps, env config overrides)
GOLDEN: dict[str, tuple[str, str | None, int, int, dict]] = {
    "autopilot_noon": ("autopilot", None, 11, 40, {"weather": "noon"}),
    "gated_random_rain": ("random-forward", "autopilot", 12, 60, {"weather": "rain"}),
}


def observation_hash(obs: dict) -> str:
    """SHA-256 (first 16 hex digits) of an observation's cameras, route map and speed."""
    h = hashlib.sha256()
    for key in ("camera", "route", "speed", "command_distance_m"):
        h.update(np.ascontiguousarray(obs[key]).tobytes())
    h.update(int(obs["command"]).to_bytes(2, "little"))
    return h.hexdigest()[:16]


def refresh(out: Path = GOLDEN_DIR) -> dict:
    from envs.world import SharedAssets
    from tests.recording import record

    out.mkdir(parents=True, exist_ok=True)
    reference, assets = {}, SharedAssets()
    for name, (policy, gate, seed, steps, overrides) in GOLDEN.items():
        with tempfile.TemporaryDirectory() as tmp:
            paths, seen = record(
                Path(tmp), assets, seeds=(seed,), policy=policy, gate=gate, max_steps=steps, **overrides
            )
            shutil.copyfile(paths[0], out / f"{name}.parquet")
        reference[name] = [observation_hash(obs) for obs in seen[0]]
    (out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    return reference


if __name__ == "__main__":
    ref = refresh()
    for name, hashes in ref.items():
        print(f"{name}: {len(hashes)} frames -> {GOLDEN_DIR / (name + '.parquet')}", file=sys.stderr)
