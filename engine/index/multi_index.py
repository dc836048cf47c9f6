"""Exact multi-index hashing (MIH) in NumPy + Numba: no FAISS needed, so it runs on the GPU machine too.

The code is cut into m substrings of about log2(n) bits, each indexed by a CSR bucket table (row ids sorted
by substring value + bucket offsets). The number of substrings is chosen per list size to minimise the
expected bucket probes plus candidate rows for the design radius (31), within a memory cap. Memory per row:
32 bytes of code + 4m bytes of ids (m = 12 at 10M rows: 80 B) plus the offset tables (4 bytes per bucket).
See `kernels.multi_index_jit` for the search and why it is exact.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np

from engine.index.base import check_radius
from engine.index.nearest_scan import CpuNearestScan
from kernels.hamming import CODE_BITS, NearestHits, RangeHits, as_codes
from kernels.optional import require_module

DESIGN_RADIUS = 31
MIN_SUBSTRINGS, MAX_SUBSTRINGS = 11, 16
MAX_SUBSTRING_BITS = 24
MAX_PROBES_PER_QUERY = 20_000  # beyond this, probing costs more than the scan it tries to avoid
FIRST_CAP = 16  # hits kept per query in the first pass; queries with more are rerun with room for all
# Batches of fewer queries run on the calling thread, larger ones on Numba's thread pool. A parallel batch
# waits for its slowest thread, and with another process on a core that thread can wait for a time slice.
# Measured on the 2-core VM at 1e7 rows with one core kept busy (benchmarks/results/latency-cpu-2026-12-02.md):
# single queries had a p99 of 9.0 ms through the pool and 1.4 ms on one thread. In the batch-size sweep there
# the pool was faster idle from 2 queries on, but with the other core busy slower below 8 queries and, up to
# 64, no faster than one thread within the noise between runs. 32 lies between: single queries, one image's
# 8 dihedral variants and small batches stay on one thread; larger batches keep the pool's idle speed-up.
SERIAL_BELOW_QUERIES = 32
# "1" when an index is built: all its batches in parallel, as before SERIAL_BELOW_QUERIES (benchmarks compare).
FORCE_PARALLEL_ENV = "HASHMATCH_MIH_FORCE_PARALLEL"


@dataclass(frozen=True)
class SubstringLayout:
    starts: np.ndarray  # (m,) int64, first bit of each substring
    lengths: np.ndarray  # (m,) int64, bits of each substring

    @classmethod
    def even(cls, m: int) -> SubstringLayout:
        """m contiguous substrings covering 256 bits, lengths differing by at most one."""
        short, extra = divmod(CODE_BITS, m)
        lengths = np.array([short + 1] * extra + [short] * (m - extra), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(starts, lengths)

    @property
    def m(self) -> int:
        return int(self.starts.shape[0])

    def probes(self, radius: int) -> int:
        t = radius // self.m
        return sum(sum(math.comb(int(length), k) for k in range(t + 1)) for length in self.lengths)

    def expected_work(self, n_rows: int, radius: int) -> float:
        """Bucket probes plus expected candidate rows per query, for uniformly random codes."""
        t = radius // self.m
        work = 0.0
        for length in self.lengths:
            probes = sum(math.comb(int(length), k) for k in range(t + 1))
            work += probes * (1.0 + n_rows / 2.0 ** int(length))
        return work

    def offset_entries(self) -> int:
        return int(sum((1 << int(length)) + 1 for length in self.lengths))


def choose_layout(n_rows: int, radius: int = DESIGN_RADIUS, max_offset_bytes_per_row: float = 16.0) -> SubstringLayout:
    """The layout with the least expected work whose offset tables stay within the memory cap."""
    budget = max(max_offset_bytes_per_row * n_rows, 4.0 * 16 * (2**16 + 1))
    candidates = [SubstringLayout.even(m) for m in range(MIN_SUBSTRINGS, MAX_SUBSTRINGS + 1)]
    fitting = [layout for layout in candidates if 4.0 * layout.offset_entries() <= budget]
    return min(fitting, key=lambda layout: layout.expected_work(n_rows, radius))


@lru_cache(maxsize=64)
def probe_masks(length: int, bits: int) -> np.ndarray:
    """All `length`-bit masks with at most `bits` bits set, fewest bits first."""
    masks = [0]
    for k in range(1, bits + 1):
        masks.extend(sum(1 << i for i in combo) for combo in itertools.combinations(range(length), k))
    return np.array(masks, dtype=np.int64)


class MultiIndexHashIndex:
    name = "hashmatch-mih"

    def __init__(self, codes: np.ndarray, layout: SubstringLayout | None = None, scan_fraction: float = 0.125) -> None:
        self._jit = _kernels()
        # No copy: at 10M rows the codes are 320 MB. The index keeps this array; do not modify it after.
        self.codes = as_codes(codes)
        self._scan = CpuNearestScan(self.codes)  # its FAISS copy is built on the first nearest lookup
        rows = self.codes.shape[0]
        if rows >= 2**32:
            raise ValueError("the multi-index holds at most 2^32 - 1 rows")
        self.words = self.codes.view(np.uint64)
        self.layout = layout or choose_layout(rows)
        if int(self.layout.lengths.max()) > MAX_SUBSTRING_BITS:
            raise ValueError(f"substrings of more than {MAX_SUBSTRING_BITS} bits need too large bucket tables")
        sizes = (1 << self.layout.lengths) + 1
        self.bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.offsets = np.empty(int(sizes.sum()), dtype=np.uint32)
        self.ids = np.empty((self.layout.m, rows), dtype=np.uint32)
        for s in range(self.layout.m):
            n_keys = 1 << int(self.layout.lengths[s])
            keys = substring_keys(self.words, int(self.layout.starts[s]), int(self.layout.lengths[s]))
            bucket_offsets = self.offsets[int(self.bases[s]) : int(self.bases[s]) + n_keys + 1]
            self._jit.build_buckets(keys, n_keys, self.ids[s], bucket_offsets)
        self.scan_threshold = max(1, int(rows * scan_fraction))
        self.serial_below_queries = 0 if os.environ.get(FORCE_PARALLEL_ENV) == "1" else SERIAL_BELOW_QUERIES

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.ids.nbytes + self.offsets.nbytes)

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        """A scan (the multi-index prunes by radius, and k nearest has none): FAISS flat or the reference."""
        return self._scan.nearest(queries, k)

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        radius = check_radius(radius)
        queries = as_codes(queries)
        t = radius // self.layout.m
        masks, n_masks = self._masks(t) if self.layout.probes(radius) <= MAX_PROBES_PER_QUERY else _NO_MASKS
        rows, dists, counts = self._run(queries, masks, n_masks, t, radius, FIRST_CAP)
        overflow = np.flatnonzero(counts > FIRST_CAP)
        if overflow.size == 0:
            return _collect(rows, dists, counts, overflow, rows[:0], dists[:0])
        cap = int(counts[overflow].max())
        more_rows, more_dists, _ = self._run(queries[overflow], masks, n_masks, t, radius, cap)
        return _collect(rows, dists, counts, overflow, more_rows, more_dists)

    def _masks(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        per_substring = [probe_masks(int(length), t) for length in self.layout.lengths]
        n_masks = np.array([len(m) for m in per_substring], dtype=np.int64)
        masks = np.zeros((self.layout.m, int(n_masks.max())), dtype=np.int64)
        for s, values in enumerate(per_substring):
            masks[s, : len(values)] = values
        return masks, n_masks

    def _run(
        self, queries: np.ndarray, masks: np.ndarray, n_masks: np.ndarray, t: int, radius: int, cap: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = queries.shape[0]
        rows = np.empty((n, cap), dtype=np.int64)
        dists = np.empty((n, cap), dtype=np.int16)
        counts = np.zeros(n, dtype=np.int64)
        kernel = self._jit.search_serial if n < self.serial_below_queries else self._jit.search_parallel
        kernel(
            queries.view(np.uint64),
            self.words,
            self.layout.starts,
            self.layout.lengths,
            self.ids,
            self.offsets,
            self.bases,
            masks,
            n_masks,
            t,
            radius,
            self.scan_threshold,
            rows,
            dists,
            counts,
        )
        return rows, dists, counts


_NO_MASKS = (np.zeros((1, 1), dtype=np.int64), np.zeros(0, dtype=np.int64))


def substring_keys(words: np.ndarray, start: int, length: int, chunk: int = 1 << 20) -> np.ndarray:
    """(n,) uint32 values of bits [start, start + length) of each (4,) uint64 code (as the kernel's
    `substring`), computed a million rows at a time so the temporaries stay a few MB."""
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << length) - 1)
    keys = np.empty(words.shape[0], dtype=np.uint32)
    for first in range(0, words.shape[0], chunk):
        block = words[first : first + chunk]
        values = block[:, word] >> np.uint64(offset)
        if offset + length > 64:
            values |= block[:, word + 1] << np.uint64(64 - offset)
        values &= mask
        keys[first : first + chunk] = values
    return keys


def _collect(
    rows: np.ndarray,
    dists: np.ndarray,
    counts: np.ndarray,
    overflow: np.ndarray,
    more_rows: np.ndarray,
    more_dists: np.ndarray,
) -> RangeHits:
    """Flatten the per-query buffers to CSR, taking overflowing queries from the rerun's buffers."""
    cap = rows.shape[1]
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    kept = np.minimum(counts, cap)
    kept[overflow] = 0
    valid = np.arange(cap)[None, :] < kept[:, None]
    out_rows = np.empty(int(offsets[-1]), dtype=np.int64)
    out_dists = np.empty(int(offsets[-1]), dtype=np.int16)
    target = np.repeat(offsets[:-1], kept) + _ranks(kept)
    out_rows[target] = rows[valid]
    out_dists[target] = dists[valid]
    for j, q in enumerate(overflow):
        start, count = int(offsets[q]), int(counts[q])
        out_rows[start : start + count] = more_rows[j, :count]
        out_dists[start : start + count] = more_dists[j, :count]
    return RangeHits(offsets, out_rows, out_dists)


def _ranks(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] for the given counts."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    ranks: np.ndarray = np.arange(total, dtype=np.int64) - starts
    return ranks


def _kernels() -> ModuleType:
    require_module("numba", "the multi-index hash search")
    from kernels import multi_index_jit

    return multi_index_jit
