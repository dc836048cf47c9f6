"""The k nearest list entries of a query, whatever the threshold (`--nearest K`: near misses for reviewers).

Nearest-neighbour lookups are exhaustive scans: FAISS `IndexBinaryFlat` on the CPU where faiss is installed,
the NumPy reference otherwise; on a GPU, FAISS's `GpuIndexBinaryFlat` where faiss-gpu sees a device (it takes
k <= 2048), hashmatch's own kernel otherwise (kernels.gpu_nearest). The NumPy reference, our kernel and the
answers given here are ordered by (distance, row). FAISS chooses among rows tied at the k-th distance by its
own rule; the distances are always the reference's, and the rows closer than the k-th distance are too.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from kernels.hamming import CODE_BITS, NearestHits, as_codes, check_k, empty_nearest, nearest_bruteforce
from kernels.optional import optional_module

FAISS_GPU_MAX_K = 2048  # GpuIndexBinaryFlat's limit on k


def faiss_nearest(index: Any, queries: np.ndarray, k: int, rows: int) -> NearestHits:
    """k nearest from a FAISS binary index holding `rows` codes, reordered by (distance, row)."""
    kept = min(check_k(k), rows)
    if kept == 0 or queries.shape[0] == 0:
        return empty_nearest(int(queries.shape[0]))
    distances, labels = index.search(as_codes(queries), kept)
    order = np.lexsort((labels, distances), axis=1)
    return NearestHits(
        np.take_along_axis(labels, order, axis=1).astype(np.int64),
        np.take_along_axis(distances, order, axis=1).astype(np.int16),
    )


class CpuNearestScan:
    """FAISS IndexBinaryFlat over the codes when faiss is installed (built on first use), else the reference."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = as_codes(codes)
        self._faiss_index: Any = None
        self._build_lock = threading.Lock()  # the service's threads may ask at once: build one copy

    @property
    def backend(self) -> str:
        return "faiss-flat" if optional_module("faiss") is not None else "numpy-bruteforce"

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        faiss = optional_module("faiss")
        if faiss is None:
            return nearest_bruteforce(queries, self.codes, k)
        with self._build_lock:
            if self._faiss_index is None:
                index = faiss.IndexBinaryFlat(CODE_BITS)
                if self.codes.shape[0]:
                    index.add(self.codes)
                self._faiss_index = index
        return faiss_nearest(self._faiss_index, queries, k, int(self.codes.shape[0]))


def faiss_gpu_available(k: int) -> bool:
    """faiss-gpu installed, a device it can see, and a k it takes. The device check comes first: constructing
    a FAISS GPU class without one aborts the whole process."""
    faiss = optional_module("faiss")
    if faiss is None or k > FAISS_GPU_MAX_K:
        return False
    count = getattr(faiss, "get_num_gpus", None)  # absent from faiss-cpu builds
    return count is not None and int(count()) > 0


def faiss_gpu_index(codes: np.ndarray) -> Any:
    """A GpuIndexBinaryFlat over the codes; only after faiss_gpu_available said yes."""
    faiss = optional_module("faiss")
    assert faiss is not None
    index = faiss.GpuIndexBinaryFlat(faiss.StandardGpuResources(), CODE_BITS)
    if codes.shape[0]:
        index.add(as_codes(codes))
    return index
