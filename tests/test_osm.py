"""OpenStreetMap import through carla.Osm2Odr with a projection centred on the extract."""

from __future__ import annotations

import pytest

from sim.errors import MapError
from sim.maps import load_map
from sim.maps.osm import osm_centre, road_extent_m
from tests.conftest import MAPS, needs_shared

MONTLAKE = MAPS / "osm" / "montlake_roundabout.osm"


@needs_shared
def test_centred_projection_keeps_real_distances():
    text = MONTLAKE.read_text()
    ew, ns = road_extent_m(text)
    road_map = load_map(MONTLAKE)
    x0, y0, x1, y1 = road_map.bounds
    # The default +proj=tmerc (centred on longitude 0) gives ~792 x 499 m here; the
    # lat/lon extent of the road nodes is ~519 x 758 m.
    assert (x1 - x0) == pytest.approx(ew, rel=0.02)
    assert (y1 - y0) == pytest.approx(ns, rel=0.02)
    assert road_map.name == "montlake_roundabout"
    assert len(road_map.lanes) > 10 and len(road_map.junctions) >= 5


@needs_shared
def test_centre_is_in_seattle():
    lat, lon = osm_centre(MONTLAKE.read_text())
    assert 47.6 < lat < 47.7 and -122.4 < lon < -122.2


def test_bad_osm_files_give_one_line(tmp_path):
    bad = tmp_path / "broken.osm"
    bad.write_text("<osm><node id='1' lat='1' lon='2'>")
    with pytest.raises(MapError, match="broken.osm: not a valid OpenStreetMap XML"):
        load_map(bad)
    other = tmp_path / "other.osm"
    other.write_text("<gpx></gpx>")
    with pytest.raises(MapError, match="not an OpenStreetMap file"):
        load_map(other)
    empty = tmp_path / "empty.osm"
    empty.write_text("<osm version='0.6'><node id='1' lat='47.6' lon='-122.3'/></osm>")
    with pytest.raises(MapError, match="no roads"):
        load_map(empty)
