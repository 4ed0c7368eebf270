"""Python's and numpy's float results, reproduced bit for bit in compiled (numba) code.

Per-tick code that moves from Python into numba kernels must keep every state bit for bit
(replays, hashes). Two results differ from the plain formula:

* ``math.hypot`` (CPython 3.11) is not the C library's ``hypot`` (which numba's and numpy's
  call): it splits the squares exactly and adds them compensated. :func:`py_hypot` is
  that algorithm.
* numpy's dot product of two 2-vectors (``a @ b``, ``np.vecdot``) goes through BLAS,
  which on FMA machines rounds it as ``fma(a1, b1, a0 * b0)`` (OpenBLAS), elsewhere as
  ``a0 * b0 + a1 * b1``. :func:`dot2` computes either; :func:`numpy_dot2_fused` says,
  from probes, which one this numpy uses (``None``: neither; then do not use :func:`dot2`).

Callers check :func:`hypot_is_pythons` and :func:`numpy_dot2_fused` once and keep a
Python path for machines where these do not hold.
"""

from __future__ import annotations

import math
from functools import cache

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["py_hypot", "hypot_is_pythons", "dot2", "numpy_dot2_fused"]

_VELTKAMP = 134217729.0  # 2**27 + 1: splits a double into two halves of 26 bits


@numba.njit(cache=True)
def py_hypot(x, y):
    """``math.hypot(x, y)`` of CPython 3.11 bit for bit: the squares of the scaled values,
    exactly split, summed with compensation, then one Newton correction of the root."""
    ax, ay = abs(x), abs(y)
    mx = 0.0
    for v in (ax, ay):
        if v > mx:
            mx = v
    if math.isinf(mx):
        return mx
    if math.isnan(ax) or math.isnan(ay):
        return math.nan
    if mx == 0.0:
        return mx
    csum, frac1, frac2, frac3 = 1.0, 0.0, 0.0, 0.0
    _, max_e = math.frexp(mx)
    if max_e < -1023:  # ldexp(1.0, -max_e) would overflow: divide by the largest instead
        for v in (ax / mx, ay / mx):
            sq = v * v
            old = csum
            csum += sq
            frac1 += (old - csum) + sq
        return mx * math.sqrt(csum - 1.0 + frac1)
    scale = math.ldexp(1.0, -max_e)
    for v in (ax * scale, ay * scale):
        t = v * _VELTKAMP
        hi = t - (t - v)
        lo = v - hi
        sq = hi * hi
        old = csum
        csum += sq
        frac1 += (old - csum) + sq
        sq = 2.0 * hi * lo
        old = csum
        csum += sq
        frac2 += (old - csum) + sq
        frac3 += lo * lo
    h = math.sqrt(csum - 1.0 + (frac1 + frac2 + frac3))
    t = h * _VELTKAMP
    hi = t - (t - h)
    lo = h - hi
    sq = -hi * hi
    old = csum
    csum += sq
    frac1 += (old - csum) + sq
    sq = -2.0 * hi * lo
    old = csum
    csum += sq
    frac2 += (old - csum) + sq
    sq = -lo * lo
    old = csum
    csum += sq
    frac3 += (old - csum) + sq
    return (h + (csum - 1.0 + (frac1 + frac2 + frac3)) / (2.0 * h)) / scale


@intrinsic
def _fma(typingctx, x, y, z):
    """x * y + z with one rounding (LLVM's fma)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen


@numba.njit(cache=True)
def dot2(a0, a1, b0, b1, fused):
    """numpy's ``np.array([a0, a1]) @ np.array([b0, b1])``: the BLAS sum (``fused``: as an
    FMA machine rounds it), added to 0.0 as numpy adds its BLAS chunks (a -0.0 becomes 0.0)."""
    if fused:
        return 0.0 + _fma(a1, b1, a0 * b0)
    return 0.0 + (a0 * b0 + a1 * b1)


@numba.njit(cache=True)
def _dot2_rows(a, b, fused):
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        out[i] = dot2(a[i, 0], a[i, 1], b[i, 0], b[i, 1], fused)
    return out


@cache
def numpy_dot2_fused() -> bool | None:
    """Whether numpy's 2-vector dot product rounds as an FMA (True) or as two products and a
    sum (False) here, from probes where the two differ; None when it rounds as neither."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 100.0, (2, 4000, 2))
    a[:8], b[:8] = [[0.0, -0.0], [-0.0, -0.0]] * 4, [[-1.0, 1.0], [1.0, 1.0]] * 4  # signed zeros
    ref = np.vecdot(a, b)
    if not all(float(a[i] @ b[i]) == ref[i] for i in range(64)):  # vecdot rounds as ``@``
        return None
    for fused in (True, False):
        got = _dot2_rows(a, b, fused)
        if np.array_equal(got, ref) and np.array_equal(np.signbit(got), np.signbit(ref)):
            return fused
    return None


@cache
def hypot_is_pythons() -> bool:
    """Whether :func:`py_hypot` gives this Python's ``math.hypot`` (another CPython version
    may round differently; callers then keep to Python)."""
    rng = np.random.default_rng(0)
    pairs = [
        (2.4, 5.76),
        (3.0, 4.0),
        (1e-310, 3e-311),
        (0.0, -0.0),
        *rng.normal(0.0, 100.0, (400, 2)).tolist(),
    ]
    return all(py_hypot(a, b) == math.hypot(a, b) for a, b in pairs)
