"""Exact Hamming radius search with the `hamming_range` kernel: the packed list stays where the runtime keeps
arrays (device memory on a GPU), and a batch of queries (each image's 8 dihedral variants included) is one
set of launches. NumPy twin: `kernels.hamming.range_search_bruteforce`; the hits are the same, sorted the
same way.

Hits are appended through an atomic counter into buffers sized for a guess; the counter keeps counting past
them, and when it ends above their size the search is rerun with room for every hit, so a result is never
truncated. Lists are searched in chunks of at most `chunk_codes` rows per launch (lists over 100M codes),
and batches in groups of queries that fit a grid's y dimension.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels.hamming import RangeHits, as_codes
from kernels.runtime import KernelRuntime

THREADS = 256
QUERY_TILE = 32  # hamming_range.cu's QUERY_TILE
MAX_ROW_BLOCKS = 2048  # enough blocks to fill any current GPU; rows beyond them are grid-strided
MAX_GRID_Y = 65_535
CHUNK_CODES = 1 << 26  # 64M codes (2 GiB) per launch
MIN_CAPACITY = 4096


def row_blocks(n_rows: int) -> int:
    """The grid's x dimension for `n_rows` codes (shared by the hamming_nearest kernels' launches)."""
    return min(MAX_ROW_BLOCKS, -(-n_rows // THREADS))


def _empty(n_queries: int) -> RangeHits:
    return RangeHits(np.zeros(n_queries + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16))


class DeviceRangeSearch:
    def __init__(
        self,
        codes: np.ndarray,
        runtime: KernelRuntime,
        chunk_codes: int = CHUNK_CODES,
        capacity: int = 0,
        query_group: int = MAX_GRID_Y * QUERY_TILE,
    ) -> None:
        packed = as_codes(codes)
        self.runtime = runtime
        self.rows = int(packed.shape[0])
        self.words = runtime.xp.asarray(np.ascontiguousarray(packed).view(np.uint64).reshape(self.rows, 4))
        self.chunk_codes = chunk_codes
        self.capacity = capacity  # 0: a guess from the batch size
        self.query_group = query_group  # queries per launch: the grid's y dimension holds this many tiles
        self.reruns = 0  # searches that overflowed their first buffers (tests look)
        self._kernel = runtime.kernel("hamming_range", "hamming_range")

    def __len__(self) -> int:
        return self.rows

    @property
    def nbytes(self) -> int:
        return self.rows * 32

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        queries = as_codes(queries)
        n_queries = int(queries.shape[0])
        if n_queries == 0 or self.rows == 0:
            return _empty(n_queries)
        xp = self.runtime.xp
        words = xp.asarray(np.ascontiguousarray(queries).view(np.uint64).reshape(n_queries, 4))
        capacity = self.capacity or max(MIN_CAPACITY, 16 * n_queries)
        found, buffer = self._launch_all(words, radius, capacity)
        if found > capacity:
            self.reruns += 1
            capacity = found
            found, buffer = self._launch_all(words, radius, capacity)
        # Two copies back, only of what was found: rows, then query and distance packed together.
        rows = self.runtime.to_host(buffer[1 : 1 + found])
        meta = self.runtime.to_host(buffer[1 + capacity : 1 + capacity + found])
        return _as_csr(n_queries, (meta >> 16).astype(np.int64), rows, (meta & 0xFFFF).astype(np.int16))

    def _launch_all(self, words: Any, radius: int, capacity: int) -> tuple[int, Any]:
        """Every chunk of rows against every group of queries, into one buffer (the count, then `capacity`
        rows, then `capacity` packed query-and-distance values); returns the hits counted and the buffer."""
        xp = self.runtime.xp
        buffer = xp.empty(1 + 2 * capacity, dtype=xp.int64)
        buffer[:1] = 0
        count, hit_row, hit_meta = buffer[:1].view(xp.uint64), buffer[1 : 1 + capacity], buffer[1 + capacity :]
        group = self.query_group
        for first_row in range(0, self.rows, self.chunk_codes):
            chunk = self.words[first_row : first_row + self.chunk_codes]
            n_chunk = int(chunk.shape[0])
            blocks_x = row_blocks(n_chunk)
            for first_query in range(0, int(words.shape[0]), group):
                batch = words[first_query : first_query + group]
                blocks_y = -(-int(batch.shape[0]) // QUERY_TILE)
                self._kernel(
                    (blocks_x, blocks_y),
                    (THREADS,),
                    (
                        chunk,
                        np.int64(n_chunk),
                        np.int64(first_row),
                        batch,
                        np.int32(batch.shape[0]),
                        np.int32(first_query),
                        np.int32(radius),
                        count,
                        hit_row,
                        hit_meta,
                        np.uint64(capacity),
                    ),
                )
        return int(self.runtime.to_host(count)[0]), buffer


def _as_csr(n_queries: int, hit_query: np.ndarray, hit_row: np.ndarray, hit_distance: np.ndarray) -> RangeHits:
    order = np.lexsort((hit_row, hit_query))
    offsets = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(np.bincount(hit_query, minlength=n_queries), out=offsets[1:])
    return RangeHits(offsets, hit_row[order].astype(np.int64), hit_distance[order].astype(np.int16))
