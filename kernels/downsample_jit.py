"""Numba kernels behind `kernels.downsample.downsample_fused`. Import only when numba is installed.

Defined at module level so that Numba can cache the compiled code on disk (`cache=True`): the first call in a
fresh environment compiles for about a second, later processes load the cache. `nogil=True` lets server
threads hash several images at once.

The row stage works on the interleaved bytes of each image row as one flat line (W * channels values), so
its inner loop is a contiguous multiply-add that LLVM vectorises; the channels are combined into luma only in
the column stage, on the 64 already-reduced rows.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def downsample(
    flat: Any, row_starts: Any, row_weights: Any, col_starts: Any, col_weights: Any, coeffs: Any, out: Any
) -> None:
    """out[s, i, j] = sum_k col_weights[s, j, k] * luma(sum_m row_weights[i, m] * flat[row_starts[i] + m, .]),
    for each of the k column operators s: col_starts (k, 64), col_weights (k, 64, band), out (k, 64, 64).

    `flat` is H x (W * channels) uint8; luma combines the channels of one column with `coeffs`. Each output
    row is accumulated in one scratch line that stays in cache, turned into luma, then reduced along the
    columns at once, by every column operator: the row stage, nearly all of the work, runs once for all k,
    and each output is computed with the same operations in the same order whatever k is.
    """
    channels = coeffs.shape[0]
    width = flat.shape[1] // channels
    line = np.empty(flat.shape[1], dtype=np.float64)
    luma = np.empty(width, dtype=np.float64)
    for i in range(row_starts.shape[0]):
        _accumulate_rows(flat, row_starts[i], row_weights[i], line)
        if channels == 3:
            cr, cg, cb = coeffs[0], coeffs[1], coeffs[2]
            for x in range(width):
                luma[x] = cr * line[3 * x] + cg * line[3 * x + 1] + cb * line[3 * x + 2]
        else:
            luma[:] = line
        for s in range(col_starts.shape[0]):
            for j in range(col_starts.shape[1]):
                total = 0.0
                base = col_starts[s, j]
                for k in range(col_weights.shape[2]):
                    total += col_weights[s, j, k] * luma[base + k]
                out[s, i, j] = total


@_jit
def _accumulate_rows(flat: Any, start: int, weights: Any, line: Any) -> None:
    """line = sum_m weights[m] * flat[start + m]. Four rows per pass over `line` halve its memory traffic;
    zero weights (band padding) only cost a multiply."""
    width = flat.shape[1]
    band = weights.shape[0]
    line[:] = 0.0
    m = 0
    while m + 4 <= band:
        w0, w1, w2, w3 = weights[m], weights[m + 1], weights[m + 2], weights[m + 3]
        p0, p1, p2, p3 = flat[start + m], flat[start + m + 1], flat[start + m + 2], flat[start + m + 3]
        for x in range(width):
            line[x] += (w0 * p0[x] + w1 * p1[x]) + (w2 * p2[x] + w3 * p3[x])
        m += 4
    while m < band:
        w, p = weights[m], flat[start + m]
        for x in range(width):
            line[x] += w * p[x]
        m += 1
