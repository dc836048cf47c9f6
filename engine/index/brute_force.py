"""The NumPy brute-force index: the reference that property tests hold every other backend to."""

from __future__ import annotations

import numpy as np

from engine.index.base import check_radius
from kernels.hamming import NearestHits, RangeHits, as_codes, nearest_bruteforce, range_search_bruteforce


class BruteForceIndex:
    name = "numpy-bruteforce"

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = as_codes(codes).copy()

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        return range_search_bruteforce(queries, self.codes, check_radius(radius))

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        return nearest_bruteforce(queries, self.codes, k)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes)
