"""Maps: OpenDRIVE through the ``carla`` package's offline parser.

``load_map(spec)`` is the one way in: ``spec`` is a path to an ``.xodr`` file, a
path to an OpenStreetMap ``.osm`` extract (converted with ``carla.Osm2Odr``),
``generated:SEED`` for a procedural town, or ``carla:TOWN`` for a CARLA town in the
shared data folder (:func:`shared_dir`: ``$LOOPDRIVE_SHARED``, else ``../shared``
beside the checkout), ``maps/carla/TOWN.xodr``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sim.errors import MapError
from sim.maps.roadmap import Junction, Lane, LaneChange, LaneKey, LanePosition, Marking, RoadMap, Signal

__all__ = [
    "load_map",
    "resolve_map",
    "shared_dir",
    "RoadMap",
    "Lane",
    "LaneKey",
    "LaneChange",
    "LanePosition",
    "Marking",
    "Signal",
    "Junction",
]

GENERATED_PREFIX = "generated:"
CARLA_PREFIX = "carla:"


def shared_dir() -> Path:
    """The shared data folder (maps, routes): ``$LOOPDRIVE_SHARED``, else ``../shared``
    beside the checkout. It may be absent."""
    env = os.environ.get("LOOPDRIVE_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


def resolve_map(spec: str | Path) -> str:
    """``carla:TOWN`` as the path of the town's OpenDRIVE file (MapError when it is
    absent, saying where it was looked for); any other spec unchanged."""
    text = str(spec)
    if not text.startswith(CARLA_PREFIX):
        return text
    town = text[len(CARLA_PREFIX) :]
    path = shared_dir() / "maps" / "carla" / f"{town}.xodr"
    if not path.is_file():
        raise MapError(
            f"{text}: the CARLA town is not available (looked for {path}; set LOOPDRIVE_SHARED "
            "to the folder holding maps/carla)"
        )
    return str(path)


def load_map(spec: str | Path, *, resolution_m: float = 1.0) -> RoadMap:
    """Load a map from a path (``.xodr`` or ``.osm``) or ``generated:SEED``.

    Raises :class:`sim.errors.MapError` with one line naming the map and the reason.
    """
    text = resolve_map(spec)
    if text.startswith(GENERATED_PREFIX):
        seed_text = text[len(GENERATED_PREFIX) :]
        try:
            seed = int(seed_text)
        except ValueError:
            raise MapError(f"{text}: the seed after 'generated:' must be an integer") from None
        from sim.maps.generator import TownConfig, generate_town

        xodr = generate_town(TownConfig(seed=seed))
        return RoadMap.from_xodr(f"generated_{seed}", xodr, source=text, resolution_m=resolution_m)
    path = Path(text)
    if not path.exists():
        raise MapError(f"{path}: no such map file (give an .xodr or .osm path, or generated:SEED)")
    if path.is_dir():
        raise MapError(f"{path}: is a folder, not a map file")
    suffix = path.suffix.lower()
    if suffix == ".osm":
        from sim.maps.osm import load_osm

        return load_osm(path, resolution_m=resolution_m)
    if suffix not in (".xodr", ".xml"):
        raise MapError(f"{path}: unknown map format '{suffix}' (expected .xodr or .osm)")
    return RoadMap.from_file(path, resolution_m=resolution_m)
