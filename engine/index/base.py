"""The index interface every backend implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from kernels.hamming import NearestHits, RangeHits


class HashIndex(Protocol):
    """Exact Hamming radius search over the rows it was built from (row i = i-th code given)."""

    name: str

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        """Every row within `radius` bits (inclusive) of each (32,) uint8 query row: 100% recall."""
        ...

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        """The k rows closest to each query whatever their distance, by (distance, row) (engine.index.nearest_scan
        says where ties at the k-th distance may differ)."""
        ...

    @property
    def nbytes(self) -> int:
        """Bytes the index holds in memory (codes included)."""
        ...


def check_radius(radius: int) -> int:
    if not 0 <= radius <= 256:
        raise ValueError(f"radius must be within 0..256 bits, got {radius}")
    return int(radius)
