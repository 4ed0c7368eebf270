"""OpenStreetMap extracts to OpenDRIVE, through ``carla.Osm2Odr``.

The converter's default projection (``+proj=tmerc``) is centred on longitude 0 and
distorts places far from Greenwich by up to ~65 %; here the transverse Mercator
projection is centred on the extract's road network instead, which keeps distances
within about 1 %.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from sim.errors import MapError
from sim.maps.native import quiet_native_output
from sim.maps.roadmap import RoadMap, read_map_text

__all__ = ["osm_centre", "osm_to_xodr", "load_osm", "road_extent_m"]

#: OSM ``highway`` values that carry cars (the way types ``carla.Osm2Odr`` converts by default).
ROAD_TYPES = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
    }
)
_EARTH_RADIUS_M = 6_371_008.8


def _road_nodes(root: ET.Element) -> list[tuple[float, float]]:
    """(lat, lon) of the nodes on car-carrying ways; all nodes when there are none."""
    nodes = {}
    for node in root.iter("node"):
        try:
            nodes[node.get("id")] = (float(node.get("lat", "")), float(node.get("lon", "")))
        except ValueError:
            continue
    used = set()
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("highway") in ROAD_TYPES:
            used.update(nd.get("ref") for nd in way.iter("nd"))
    picked = [nodes[i] for i in used if i in nodes]
    return picked or list(nodes.values())


def _parse(osm_text: str, source: str) -> ET.Element:
    try:
        root = ET.fromstring(osm_text)
    except ET.ParseError as exc:
        raise MapError(f"{source}: not a valid OpenStreetMap XML file ({exc})") from None
    if root.tag != "osm":
        raise MapError(f"{source}: not an OpenStreetMap file (root element <{root.tag}>, expected <osm>)")
    return root


def osm_centre(osm_text: str, *, source: str = "<osm>") -> tuple[float, float]:
    """(lat, lon) in degrees of the middle of the extract's road network bounding box."""
    points = _road_nodes(_parse(osm_text, source))
    if not points:
        raise MapError(f"{source}: the OpenStreetMap file has no nodes")
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    return (min(lats) + max(lats)) / 2.0, (min(lons) + max(lons)) / 2.0


def road_extent_m(osm_text: str, *, source: str = "<osm>") -> tuple[float, float]:
    """East-west and north-south extent (m) of the road nodes, from their lat/lon."""
    points = _road_nodes(_parse(osm_text, source))
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    lat0 = math.radians((min(lats) + max(lats)) / 2.0)
    ew = math.radians(max(lons) - min(lons)) * _EARTH_RADIUS_M * math.cos(lat0)
    ns = math.radians(max(lats) - min(lats)) * _EARTH_RADIUS_M
    return ew, ns


def osm_to_xodr(osm_text: str, *, source: str = "<osm>", traffic_lights: bool = True) -> str:
    """Convert an OpenStreetMap extract to OpenDRIVE text, projected around its centre."""
    import carla

    root = _parse(osm_text, source)
    if not any(t.get("k") == "highway" and t.get("v") in ROAD_TYPES for t in root.iter("tag")):
        raise MapError(f"{source}: the OpenStreetMap extract has no roads that carla.Osm2Odr converts")
    lat, lon = osm_centre(osm_text, source=source)
    settings = carla.Osm2OdrSettings()
    settings.proj_string = (
        f"+proj=tmerc +lat_0={lat:.7f} +lon_0={lon:.7f} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
    )
    settings.generate_traffic_lights = traffic_lights
    try:
        with quiet_native_output():
            xodr = carla.Osm2Odr.convert(osm_text, settings)
    except RuntimeError as exc:
        raise MapError(f"{source}: carla.Osm2Odr could not convert the extract ({exc})") from None
    if "<road " not in xodr:
        raise MapError(f"{source}: the OpenStreetMap extract has no roads that carla.Osm2Odr converts")
    return xodr


def load_osm(path: str | Path, *, resolution_m: float = 1.0) -> RoadMap:
    """Load an ``.osm`` extract as a :class:`RoadMap` (named after the file)."""
    path = Path(path)
    text = read_map_text(path, "OpenStreetMap")
    xodr = osm_to_xodr(text, source=str(path))
    return RoadMap.from_xodr(path.stem, xodr, source=str(path), resolution_m=resolution_m)
