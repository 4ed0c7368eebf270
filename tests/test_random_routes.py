"""Random routes (``sim.routes.random_route``): short ones on a big town plan too."""

from __future__ import annotations

import numpy as np
import pytest

from sim.maps import load_map
from sim.maps.planner import RoutePlanner
from sim.routes import random_route


@pytest.fixture(scope="module")
def town():
    road_map = load_map("generated:100")
    return road_map, RoutePlanner(road_map)


@pytest.mark.parametrize("length_m", [30.0, 50.0, 80.0])
def test_short_routes_plan_for_every_seed(town, length_m):
    """Start and goal drawn anywhere in the town are rarely this close; the fallback
    draws goals near the start (before it, seeds 0 and 1 failed at 30 m, and seed 2
    gave a 503 m route)."""
    road_map, planner = town
    lengths = [
        random_route(planner, road_map, np.random.default_rng(s), length_m).length_m for s in range(12)
    ]
    assert all(abs(length - length_m) <= 0.5 * length_m for length in lengths), lengths


def test_a_seed_gives_one_route(town):
    road_map, planner = town
    a = random_route(planner, road_map, np.random.default_rng(3), 30.0)
    b = random_route(planner, road_map, np.random.default_rng(3), 30.0)
    np.testing.assert_array_equal(a.xyz_m, b.xyz_m)
