"""Shared test fixtures: the real maps and routes in ../shared, loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOOPDRIVE_SHARED", ROOT.parent / "shared"))
MAPS = SHARED / "maps"
ROUTES = SHARED / "routes" / "carla_leaderboard"

needs_shared = pytest.mark.skipif(
    not MAPS.is_dir(), reason=f"../shared test data is absent (looked in {SHARED}; set LOOPDRIVE_SHARED)"
)

_MAP_CACHE: dict[str, object] = {}


def shared_map(relpath: str):
    """A :class:`sim.maps.RoadMap` of ``../shared/maps/<relpath>``, parsed once per session."""
    from sim.maps import load_map

    if not (MAPS / relpath).exists():
        pytest.skip(f"../shared/maps/{relpath} is absent")
    if relpath not in _MAP_CACHE:
        _MAP_CACHE[relpath] = load_map(MAPS / relpath)
    return _MAP_CACHE[relpath]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Caches (rasters, ...) go to one temporary folder per test session, not ~/.cache."""
    monkeypatch.setenv("LOOPDRIVE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
