"""Exact Hamming radius search over packed 256-bit codes: the NumPy reference every fast backend must equal.

Codes are (n, 32) uint8 rows. A search returns, for every query, every row within `radius` bits, as a
CSR-style `RangeHits`: query i's hits are `rows[offsets[i]:offsets[i + 1]]`, in ascending row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODE_BYTES = 32
CODE_BITS = 256


@dataclass(frozen=True, eq=False)
class RangeHits:
    offsets: np.ndarray  # (n_queries + 1,) int64
    rows: np.ndarray  # (total,) int64, row numbers in the searched code array
    distances: np.ndarray  # (total,) int16

    @property
    def n_queries(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def for_query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.rows[start:end], self.distances[start:end]

    def sorted_by_row(self) -> RangeHits:
        """The same hits with each query's rows ascending (the reference order), for comparisons."""
        rows = self.rows.copy()
        distances = self.distances.copy()
        for i in range(self.n_queries):
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            order = np.argsort(rows[start:end], kind="stable")
            rows[start:end] = rows[start:end][order]
            distances[start:end] = distances[start:end][order]
        return RangeHits(self.offsets, rows, distances)


def as_codes(codes: np.ndarray) -> np.ndarray:
    """Validate and return a C-contiguous (n, 32) uint8 view."""
    array = np.ascontiguousarray(codes, dtype=np.uint8)
    if array.ndim != 2 or array.shape[1] != CODE_BYTES:
        raise ValueError(f"codes must be (n, {CODE_BYTES}) uint8, got shape {array.shape}")
    return array


def hamming_distances(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(n,) distances from one (32,) code to every row of (n, 32) codes."""
    words = codes.view(np.uint64)
    distances: np.ndarray = np.bitwise_count(words ^ query.view(np.uint64)).sum(axis=1, dtype=np.int16)
    return distances


def range_search_bruteforce(queries: np.ndarray, codes: np.ndarray, radius: int) -> RangeHits:
    """Every row within `radius` of each query, by computing all distances."""
    queries, codes = as_codes(queries), as_codes(codes)
    offsets = np.zeros(queries.shape[0] + 1, dtype=np.int64)
    rows: list[np.ndarray] = []
    distances: list[np.ndarray] = []
    for i, query in enumerate(queries):
        d = hamming_distances(query, codes) if codes.shape[0] else np.zeros(0, dtype=np.int16)
        hit = np.flatnonzero(d <= radius)
        rows.append(hit)
        distances.append(d[hit])
        offsets[i + 1] = offsets[i] + hit.shape[0]
    return RangeHits(
        offsets,
        np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64),
        np.concatenate(distances).astype(np.int16) if distances else np.zeros(0, np.int16),
    )


@dataclass(frozen=True, eq=False)
class NearestHits:
    """The k nearest rows of each query: row i of `rows` and `distances` belongs to query i, ordered by
    (distance, row); k is at most the number of rows searched."""

    rows: np.ndarray  # (n_queries, k) int64
    distances: np.ndarray  # (n_queries, k) int16

    @property
    def k(self) -> int:
        return int(self.rows.shape[1])


def check_k(k: int) -> int:
    if k < 1:
        raise ValueError(f"k (the nearest entries wanted) must be at least 1, got {k}")
    return int(k)


def empty_nearest(n_queries: int) -> NearestHits:
    return NearestHits(np.zeros((n_queries, 0), np.int64), np.zeros((n_queries, 0), np.int16))


def nearest_bruteforce(queries: np.ndarray, codes: np.ndarray, k: int) -> NearestHits:
    """The k rows with the smallest (distance, row) for each query: ties at the k-th distance go to the lower
    rows, so the answer is one set, whatever computed it."""
    queries, codes = as_codes(queries), as_codes(codes)
    kept = min(check_k(k), int(codes.shape[0]))
    if kept == 0:
        return empty_nearest(int(queries.shape[0]))
    rows = np.empty((queries.shape[0], kept), np.int64)
    distances = np.empty((queries.shape[0], kept), np.int16)
    for i, query in enumerate(queries):
        d = hamming_distances(query, codes)
        order = np.argsort(d, kind="stable")[:kept]  # stable: equal distances stay in row order
        rows[i], distances[i] = order, d[order]
    return NearestHits(rows, distances)


def nearest_of_candidates(
    n_queries: int, owners: np.ndarray, rows: np.ndarray, distances: np.ndarray, k: int
) -> NearestHits:
    """The k smallest (distance, row) of each query among candidate hits (query, row, distance) that hold at
    least k per query: how a fast path that over-collects ties finishes as the reference does."""
    order = np.lexsort((rows, distances, owners))
    owners, rows, distances = owners[order], rows[order], distances[order]
    starts = np.searchsorted(owners, np.arange(n_queries))
    take = (starts[:, None] + np.arange(k)[None, :]).ravel()
    return NearestHits(
        rows[take].reshape(n_queries, k).astype(np.int64), distances[take].reshape(n_queries, k).astype(np.int16)
    )
