"""The exact k nearest rows with the `hamming_nearest` kernels, over codes already where the runtime keeps
arrays (the GPU index's device copy: the list is not uploaded twice). NumPy twin:
`kernels.hamming.nearest_bruteforce`, which this equals row for row, ties included.

Two passes: a per-query histogram of distances gives each query's cut-off distance and exactly how many rows
lie within it; the second pass writes those rows into per-query slices of exactly that size, and the host
keeps the k with the smallest (distance, row). Nothing is guessed, so nothing overflows; a slice that does
not fill exactly means the passes disagree, and is an error rather than a wrong answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels.gpu_search import CHUNK_CODES, MAX_GRID_Y, QUERY_TILE, THREADS, row_blocks
from kernels.hamming import NearestHits, check_k, empty_nearest, nearest_of_candidates
from kernels.runtime import KernelRuntime

# The hamming_nearest kernels tile like hamming_range (QUERY_TILE 32, grid-strided rows): its grid constants.
DISTANCES = 257
# Rows kept within the cut-offs of one group of queries: ties at a cut-off can hold many rows (a list full of
# one code), so queries are collected in groups whose candidates fit this, one query at the least (whose ties
# alone may exceed it: every row tied at its cut-off is collected before the lowest ones are kept).
CANDIDATE_BUDGET = 1 << 24


class DeviceNearestSearch:
    def __init__(self, words: Any, runtime: KernelRuntime, chunk_codes: int = CHUNK_CODES) -> None:
        """`words`: the list as (rows, 4) uint64 where the runtime keeps arrays."""
        self.words = words
        self.rows = int(words.shape[0])
        self.runtime = runtime
        self.chunk_codes = chunk_codes
        self._histogram = runtime.kernel("hamming_nearest", "hamming_histogram")
        self._within = runtime.kernel("hamming_nearest", "hamming_within")

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        n_queries = int(queries.shape[0])
        kept = min(check_k(k), self.rows)
        if n_queries == 0 or kept == 0:
            return empty_nearest(n_queries)
        parts = []
        for first in range(0, n_queries, MAX_GRID_Y * QUERY_TILE):
            group = np.ascontiguousarray(queries[first : first + MAX_GRID_Y * QUERY_TILE])
            parts.append(self._nearest_group(group, kept))
        return NearestHits(np.concatenate([p.rows for p in parts]), np.concatenate([p.distances for p in parts]))

    def _nearest_group(self, queries: np.ndarray, k: int) -> NearestHits:
        xp = self.runtime.xp
        n_queries = int(queries.shape[0])
        words = xp.asarray(queries.view(np.uint64).reshape(n_queries, 4))
        histogram = xp.zeros((n_queries, DISTANCES), dtype=xp.uint32)
        for chunk, _ in self._chunks():
            self._histogram(
                self._grid(chunk, n_queries),
                (THREADS,),
                (chunk, np.int64(chunk.shape[0]), words, np.int32(n_queries), histogram),
            )
        within = np.cumsum(self.runtime.to_host(histogram).astype(np.int64), axis=1)
        cutoff = np.argmax(within >= k, axis=1)  # the first distance with k rows within it
        sizes = within[np.arange(n_queries), cutoff]
        # Each group is reduced to its k best as it arrives: the host holds one group's candidates at a time.
        parts = []
        for first, last in _groups(sizes):
            found_rows, found_distances = self._collect(words[first:last], cutoff[first:last], sizes[first:last])
            owners = np.repeat(np.arange(last - first), sizes[first:last])
            parts.append(nearest_of_candidates(last - first, owners, found_rows, found_distances, k))
        return NearestHits(np.concatenate([p.rows for p in parts]), np.concatenate([p.distances for p in parts]))

    def _collect(self, words: Any, cutoff: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every row within each query's cut-off, query by query (slice i holds query i's sizes[i] rows)."""
        xp = self.runtime.xp
        n_queries = int(words.shape[0])
        ends = np.cumsum(sizes).astype(np.uint64)
        starts = ends - sizes.astype(np.uint64)
        total = int(ends[-1])
        cursor = xp.asarray(starts)
        end = xp.asarray(ends)
        limits = xp.asarray(cutoff.astype(np.int32))
        hit_row = xp.empty(total, dtype=xp.int64)
        hit_distance = xp.empty(total, dtype=xp.int16)
        for chunk, first_row in self._chunks():
            self._within(
                self._grid(chunk, n_queries),
                (THREADS,),
                (chunk, np.int64(chunk.shape[0]), np.int64(first_row), words, np.int32(n_queries), limits, cursor,
                 end, hit_row, hit_distance),
            )  # fmt: skip
        if not np.array_equal(self.runtime.to_host(cursor), ends):
            raise RuntimeError("hamming_within found a different number of rows than hamming_histogram counted")
        return self.runtime.to_host(hit_row), self.runtime.to_host(hit_distance)

    def _chunks(self) -> list[tuple[Any, int]]:
        return [
            (self.words[first : first + self.chunk_codes], first) for first in range(0, self.rows, self.chunk_codes)
        ]

    @staticmethod
    def _grid(chunk: Any, n_queries: int) -> tuple[int, int]:
        return row_blocks(int(chunk.shape[0])), -(-n_queries // QUERY_TILE)


def _groups(sizes: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive query ranges whose candidates stay within CANDIDATE_BUDGET (one query at the least)."""
    groups = []
    first, held = 0, 0
    for i, size in enumerate(sizes.tolist()):
        if i > first and held + size > CANDIDATE_BUDGET:
            groups.append((first, i))
            first, held = i, 0
        held += size
    groups.append((first, len(sizes)))
    return groups
