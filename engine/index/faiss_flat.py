"""FAISS `IndexBinaryFlat` as a backend (exhaustive, SIMD popcount), when faiss-cpu is installed."""

from __future__ import annotations

import numpy as np

from engine.index.base import check_radius
from engine.index.nearest_scan import faiss_nearest
from kernels.hamming import CODE_BITS, NearestHits, RangeHits, as_codes
from kernels.optional import require_module


class FaissFlatIndex:
    name = "faiss-flat"

    def __init__(self, codes: np.ndarray) -> None:
        faiss = require_module("faiss", "the FAISS index backend")
        self.codes = as_codes(codes)
        self._index = faiss.IndexBinaryFlat(CODE_BITS)
        if self.codes.shape[0]:
            self._index.add(self.codes)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes)

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        radius = check_radius(radius)
        queries = as_codes(queries)
        if len(self) == 0 or queries.shape[0] == 0:
            return RangeHits(np.zeros(queries.shape[0] + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16))
        # FAISS's binary range search keeps distances strictly below its radius argument.
        limits, distances, labels = self._index.range_search(queries, radius + 1)
        hits = RangeHits(limits.astype(np.int64), labels.astype(np.int64), distances.astype(np.int16))
        return hits.sorted_by_row()

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        return faiss_nearest(self._index, queries, k, len(self))
