"""PDQ's downsampling (two Jarosz box-filter passes per axis, then point sampling) as banded operators.

The reference filters the full-resolution luma with a running box of `ceil(N/128)` samples along rows, then
columns, twice, dividing near the edges by the number of samples actually inside the image, and keeps the
pixel at `floor((i + 0.5) * N / 64)`. Every step is linear along one axis, so the whole reduction of an
axis of length N is one 64 x N matrix, built here once per length and cached. `reference_downsample` is the
same computation written the direct way, for tests.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from kernels.banded import BandedOperator

GRID = 64
FILTER_PASSES = 2


def jarosz_window(length: int) -> int:
    """Box width along an axis of `length` samples: ceil(length / 128), as the reference computes it."""
    return (length + 2 * GRID - 1) // (2 * GRID)


def box_bounds(length: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive [lo, hi] of each output's box, clipped to the axis. Even windows reach one further right."""
    half = (window + 2) // 2
    out = np.arange(length)
    lo = np.maximum(out - (window - half), 0)
    hi = np.minimum(out + half - 1, length - 1)
    return lo, hi


def sample_positions(length: int) -> np.ndarray:
    """floor((i + 0.5) * length / 64) for i in 0..63, in exact integer arithmetic."""
    return ((2 * np.arange(GRID) + 1) * length) // (2 * GRID)


def _composed_row(length: int, lo: np.ndarray, hi: np.ndarray, sample: int) -> tuple[int, np.ndarray]:
    """Weights of `sample` after FILTER_PASSES box passes: start index and the band of weights."""
    first, last = sample, sample
    weights = np.ones(1)
    for _ in range(FILTER_PASSES):
        new_first, new_last = int(lo[first]), int(hi[last])
        spread = np.zeros(new_last - new_first + 1)
        for offset, weight in enumerate(weights):
            t = first + offset
            count = hi[t] - lo[t] + 1
            spread[lo[t] - new_first : hi[t] - new_first + 1] += weight / count
        first, last, weights = new_first, new_last, spread
    return first, weights


def _composed_rows(lo: np.ndarray, hi: np.ndarray, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """`_composed_row` for every sample at once. Each pass adds the same terms in the same order (a masked
    term adds an exact 0.0), so the weights are bit for bit those of the row-at-a-time reference."""
    first, last = samples.copy(), samples.copy()
    weights = np.ones((len(samples), 1))
    lengths = np.ones(len(samples), dtype=np.int64)
    for _ in range(FILTER_PASSES):
        new_first, new_last = lo[first], hi[last]
        width = int((new_last - new_first).max()) + 1
        positions = np.arange(width)[None, :]
        spread = np.zeros((len(samples), width))
        for offset in range(weights.shape[1]):
            live = offset < lengths
            t = np.minimum(first + offset, len(lo) - 1)
            term = np.where(live, weights[:, offset] / (hi[t] - lo[t] + 1), 0.0)
            inside = (positions >= (lo[t] - new_first)[:, None]) & (positions <= (hi[t] - new_first)[:, None])
            spread += np.where(inside & live[:, None], term[:, None], 0.0)
        first, last, weights, lengths = new_first, new_last, spread, new_last - new_first + 1
    return [(int(f), weights[i, : int(n)]) for i, (f, n) in enumerate(zip(first, lengths, strict=True))]


@lru_cache(maxsize=1024)
def axis_operator(length: int) -> BandedOperator:
    """The 64 x length banded operator "box, box, point-sample" for one axis (length >= 1)."""
    lo, hi = box_bounds(length, jarosz_window(length))
    rows = _composed_rows(lo, hi, sample_positions(length))
    band = max(len(w) for _, w in rows)
    starts = np.empty(GRID, dtype=np.int64)
    weights = np.zeros((GRID, band), dtype=np.float64)
    for i, (first, row) in enumerate(rows):
        start = min(first, length - band)
        starts[i] = start
        weights[i, first - start : first - start + len(row)] = row
    starts.setflags(write=False)
    weights.setflags(write=False)
    return BandedOperator(length=length, starts=starts, weights=weights)


def _box_filter_axis(plane: np.ndarray, axis: int, window: int) -> np.ndarray:
    lo, hi = box_bounds(plane.shape[axis], window)
    moved = np.moveaxis(plane, axis, 0)
    prefix = np.concatenate([np.zeros((1, *moved.shape[1:])), np.cumsum(moved, axis=0)])
    counts = (hi - lo + 1).reshape((-1,) + (1,) * (moved.ndim - 1))
    return np.moveaxis((prefix[hi + 1] - prefix[lo]) / counts, 0, axis)


def reference_downsample(luma: np.ndarray) -> np.ndarray:
    """The reference's filter-then-decimate written directly (full-resolution passes), for tests."""
    height, width = luma.shape
    plane = luma.astype(np.float64)
    for _ in range(FILTER_PASSES):
        plane = _box_filter_axis(plane, 1, jarosz_window(width))
        plane = _box_filter_axis(plane, 0, jarosz_window(height))
    sampled: np.ndarray = plane[np.ix_(sample_positions(height), sample_positions(width))]
    return sampled
