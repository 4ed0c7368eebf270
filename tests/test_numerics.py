"""Compiled stand-ins for Python's and numpy's float results give the same bits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.numerics import _dot2_rows, hypot_is_pythons, numpy_dot2_fused, py_hypot


def test_py_hypot_is_math_hypot():
    assert hypot_is_pythons()
    rng = np.random.default_rng(1)
    for scale in (1e-310, 1e-3, 1.0, 1e3, 1e300):
        pairs = rng.normal(0.0, scale, (3000, 2)) * rng.choice([1.0, 1e-3], (3000, 2))
        for a, b in pairs.tolist():
            assert py_hypot(a, b) == math.hypot(a, b), (a, b)
    for a in (0.0, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308):
        for b in (0.0, 3.0, math.inf, math.nan):
            want, got = math.hypot(a, b), py_hypot(a, b)
            assert got == want or (math.isnan(got) and math.isnan(want)), (a, b)


def test_dot2_is_numpys_dot():
    fused = numpy_dot2_fused()
    if fused is None:
        pytest.skip("numpy's 2-vector dot rounds neither as an FMA nor as a plain sum here")
    rng = np.random.default_rng(2)
    for scale in (1e-3, 1.0, 1e3):
        a, b = rng.normal(0.0, scale, (2, 20000, 2))
        a[::7] = np.round(a[::7])  # exact products, cancellation, zeros of either sign
        b[::5, 0] = -0.0
        want = np.vecdot(a, b)
        got = _dot2_rows(a, b, fused)
        assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
    assert all(float(a[i] @ b[i]) == want[i] for i in range(200))  # np.vecdot rounds as ``@``
