"""The NPC tick kernel's indexes find what a scan of every vehicle finds."""

from __future__ import annotations

import numpy as np

from sim.traffic import _by_x, _near_ahead


def test_near_ahead_by_x_window_is_the_full_scan():
    """Vehicles sorted by x, looked at within the corridor's reach only: the same gap and
    speed as a scan of all (``x_sorted`` empty), ties (vehicles at one spot) and NaN included."""
    rng = np.random.default_rng(0)
    found = 0
    for trial in range(1500):
        n = int(rng.integers(1, 40))
        x, y = rng.uniform(0.0, 200.0, n), rng.uniform(0.0, 20.0, n)
        if trial % 3 == 0:  # pairs at one spot: equal gaps
            k = rng.integers(0, n, n // 2)
            x[: n // 2], y[: n // 2] = x[k], y[k]
        if trial % 7 == 0:
            x[rng.integers(n)] = np.nan
        z = rng.choice([0.0, 0.0, 5.0], n)
        yaw = rng.choice([0.0, 0.1, 3.0], n) + rng.normal(0.0, 0.05, n)
        speed = rng.uniform(0.0, 15.0, n)
        half_len, half_wid = rng.choice([0.9, 2.2, 3.5], n), rng.choice([0.4, 0.9, 1.1], n)
        ego = np.array(
            [-1.0, 0.0, 2.3, 5.0, rng.uniform(0, 200), rng.uniform(0, 20), 0.0, 1.0, 0.0, -1.0, 0.0]
        )
        by_x, x_sorted, max_half = _by_x(x, half_len, half_wid)
        for i in range(n):
            args = (i, x, y, z, yaw, speed, half_len, half_wid, ego, 2.5, by_x)
            window = _near_ahead(*args, x_sorted, max_half)
            scan = _near_ahead(*args, np.empty(0), max_half)
            assert window == scan or (np.isnan(window[0]) and np.isnan(scan[0])), (trial, i)
            found += window[0] < np.inf
    assert found > 1000  # the corridor holds someone often enough to test
