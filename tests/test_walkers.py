"""Walkers: on the OpenDRIVE sidewalks, crossing only when the cars' light is red."""

from __future__ import annotations

import numpy as np
import pytest

from sim.embedded import EmbeddedBackend
from sim.maps.odr import read_opendrive, sample_lanes
from sim.scenario import RouteRequest, Scenario, TrafficConfig
from sim.state import LightState
from sim.walkers import WalkerNetwork
from tests.conftest import MAPS, needs_shared, shared_map

TOWN01 = "carla/Town01.xodr"


@needs_shared
def test_network_follows_the_sidewalk_lanes():
    road_map = shared_map(TOWN01)
    net = WalkerNetwork.from_road_map(road_map)
    strips = [s for s in sample_lanes(read_opendrive(road_map.xodr_text), 1.0) if s.lane_type == "sidewalk"]
    total = sum(float(np.hypot(*np.diff(s.centre_xy_m, axis=0).T).sum()) for s in strips)
    assert net.sidewalk_km * 1000 == pytest.approx(total, rel=0.05)
    sidewalk_edges = np.flatnonzero(net.kind == 0)
    crossings = np.flatnonzero(net.kind == 1)
    assert len(crossings) >= 12  # Town01 has 12 junctions with corners to cross between
    for e in crossings:  # a crossing runs over driving lanes
        lo, hi = net.e_off[e], net.e_off[e + 1]
        mid = net.xy[(lo + hi - 1) // 2]
        assert road_map.lane_at(*mid) is not None
    for e in sidewalk_edges[:50]:  # sidewalk edges never do
        lo, hi = net.e_off[e], net.e_off[e + 1]
        mid = net.xy[(lo + hi - 1) // 2]
        assert road_map.lane_at(*mid) is None


@needs_shared
def test_walkers_walk_and_cross_signalled_roads_only_on_red():
    backend = EmbeddedBackend()
    scenario = Scenario(
        map=str(MAPS / TOWN01),
        route=RouteRequest(random_length_m=500),
        traffic=TrafficConfig(vehicle_count=10, walker_count=40),
    )
    backend.reset(scenario, 9)
    w, sig = backend.walkers, backend.signals
    assert len(w) == 40
    start = w.xy.copy()
    on_crossing = np.zeros(len(w), bool)
    started_crossings = 0
    for _ in range(3000):
        backend.tick()
        now = w.net.kind[w.edge] == 1
        states = sig.states(backend.state().time_s)
        for i in np.flatnonzero(now & ~on_crossing & ~w.waiting):
            started_crossings += 1
            lo, hi = w.net.e_off[w.edge[i]], w.net.e_off[w.edge[i] + 1]
            mid = w.net.xy[(lo + hi - 1) // 2]
            near = np.hypot(*(sig.stop_xy_m - mid).T) < 0.5 * w.net.length[w.edge[i]] + 8.0
            assert np.all(states[near] == LightState.RED)
        on_crossing = now & ~w.waiting
    moved = np.hypot(*(w.xy - start).T)
    assert np.median(moved) > 20.0
    assert started_crossings > 5
