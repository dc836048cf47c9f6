"""The GPU backend: the packed list in device memory and the `hamming_range` kernel (kernels.gpu_search),
held by the same property tests as every backend (through the emulated runtime on machines without a GPU)."""

from __future__ import annotations

import numpy as np

from engine.index.base import check_radius
from kernels.gpu_search import DeviceRangeSearch
from kernels.hamming import RangeHits
from kernels.runtime import KernelRuntime


class GpuIndex:
    name = "gpu"

    def __init__(self, codes: np.ndarray, runtime: KernelRuntime) -> None:
        self._search = DeviceRangeSearch(codes, runtime)

    def __len__(self) -> int:
        return len(self._search)

    @property
    def nbytes(self) -> int:
        return self._search.nbytes

    def search(self, queries: np.ndarray, radius: int) -> RangeHits:
        return self._search.search(queries, check_radius(radius))
