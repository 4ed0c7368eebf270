"""Maps: OpenDRIVE through the ``carla`` package's offline parser.

``load_map(spec)`` is the one way in: ``spec`` is a path to an ``.xodr`` file, a
path to an OpenStreetMap ``.osm`` extract (converted with ``carla.Osm2Odr``), or
``generated:SEED`` for a procedural town.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import MapError
from sim.maps.roadmap import Junction, Lane, LaneChange, LaneKey, LanePosition, Marking, RoadMap, Signal

__all__ = [
    "load_map",
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


def load_map(spec: str | Path, *, resolution_m: float = 1.0) -> RoadMap:
    """Load a map from a path (``.xodr`` or ``.osm``) or ``generated:SEED``.

    Raises :class:`sim.errors.MapError` with one line naming the map and the reason.
    """
    text = str(spec)
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
