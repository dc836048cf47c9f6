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

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def reduce_rows(flat: Any, starts: Any, weights: Any, partial: Any) -> None:
    """partial[i, :] += sum_k weights[i, k] * flat[starts[i] + k, :]; zero weights are band padding."""
    width = flat.shape[1]
    for i in range(starts.shape[0]):
        acc = partial[i]
        for k in range(weights.shape[1]):
            w = weights[i, k]
            if w == 0.0:
                continue
            line = flat[starts[i] + k]
            for x in range(width):
                acc[x] += w * line[x]


@_jit
def reduce_cols_to_luma(partial: Any, starts: Any, weights: Any, coeffs: Any, out: Any) -> None:
    """out[i, j] = sum_k weights[j, k] * sum_c coeffs[c] * partial[i, (starts[j] + k) * channels + c]."""
    channels = coeffs.shape[0]
    for i in range(partial.shape[0]):
        line = partial[i]
        for j in range(starts.shape[0]):
            total = 0.0
            base = starts[j]
            for k in range(weights.shape[1]):
                p = (base + k) * channels
                luma = 0.0
                for c in range(channels):
                    luma += coeffs[c] * line[p + c]
                total += weights[j, k] * luma
            out[i, j] = total
