"""The GPU backend: the packed list in device memory and the `hamming_range` kernel (kernels.gpu_search),
held by the same property tests as every backend (through the emulated runtime on machines without a GPU)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from engine.index.base import check_radius
from engine.index.nearest_scan import faiss_gpu_available, faiss_gpu_index, faiss_nearest
from kernels.gpu_nearest import DeviceNearestSearch
from kernels.gpu_search import DeviceRangeSearch
from kernels.hamming import NearestHits, RangeHits, as_codes
from kernels.runtime import KernelRuntime


class GpuIndex:
    name = "gpu"

    def __init__(self, codes: np.ndarray, runtime: KernelRuntime) -> None:
        self._search = DeviceRangeSearch(codes, runtime)
        self._faiss_index: Any = None
        # FAISS's GPU indexes are not safe to search from two threads at once (one scratch region per
        # resources object), and the service searches from several: one lock for building and searching.
        self._faiss_lock = threading.Lock()
        self._nearest = DeviceNearestSearch(self._search.words, runtime)

    def __len__(self) -> int:
        return len(self._search)

    @property
    def nbytes(self) -> int:
        return self._search.nbytes

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        return self._search.search(queries, check_radius(radius))

    def nearest(self, queries: np.ndarray, k: int) -> NearestHits:
        """FAISS's GpuIndexBinaryFlat where faiss-gpu sees a device and takes k; our kernel otherwise."""
        if faiss_gpu_available(k):
            with self._faiss_lock:
                if self._faiss_index is None:
                    host = self._search.runtime.to_host(self._search.words).view(np.uint8).reshape(-1, 32)
                    self._faiss_index = faiss_gpu_index(host)
                return faiss_nearest(self._faiss_index, queries, k, len(self))
        return self._nearest.nearest(as_codes(queries), k)
