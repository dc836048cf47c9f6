"""Pick the index backend for a list: automatic by size and radius, overridable by name."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from engine.index.base import HashIndex
from engine.index.brute_force import BruteForceIndex
from engine.index.faiss_flat import FaissFlatIndex
from engine.index.gpu_index import GpuIndex
from engine.index.multi_index import MultiIndexHashIndex
from kernels.optional import optional_module
from kernels.runtime import KernelRuntime

# Below this many rows a scan answers a query in well under a millisecond; the multi-index's bucket tables
# (at least 16 x 65,537 offsets) would cost more memory than the codes themselves.
SMALL_LIST_ROWS = 20_000
# From radius 48 on, each of 16 substrings would be probed within 3 bits: more probes than a scan reads.
MAX_MULTI_INDEX_RADIUS = 47


class IndexBackend(StrEnum):
    AUTO = "auto"
    BRUTE_FORCE = "bruteforce"
    FAISS_FLAT = "faiss-flat"
    MULTI_INDEX = "mih"
    GPU = "gpu"


def resolve_backend(
    requested: IndexBackend | str, rows: int, radius: int, gpu: KernelRuntime | None = None
) -> IndexBackend:
    """`auto`: with a verified GPU (its runtime given), large lists go to the device; else the multi-index
    for large lists at radii it can prune, FAISS flat or brute force for the rest."""
    choice = IndexBackend(requested)
    if choice is IndexBackend.GPU and gpu is None:
        raise ValueError("the gpu index needs a GPU that passed the self-test (--device gpu)")
    if choice is not IndexBackend.AUTO:
        return choice
    if gpu is not None and rows >= SMALL_LIST_ROWS:
        return IndexBackend.GPU
    large = rows >= SMALL_LIST_ROWS and radius <= MAX_MULTI_INDEX_RADIUS
    if large and optional_module("numba") is not None:
        return IndexBackend.MULTI_INDEX
    return IndexBackend.FAISS_FLAT if optional_module("faiss") is not None else IndexBackend.BRUTE_FORCE


def build_index(
    codes: np.ndarray, radius: int, backend: IndexBackend | str = IndexBackend.AUTO, gpu: KernelRuntime | None = None
) -> HashIndex:
    """An index over `codes` (row i = code i) suited to searches at `radius`."""
    choice = resolve_backend(backend, int(codes.shape[0]), radius, gpu)
    if choice is IndexBackend.GPU:
        assert gpu is not None  # resolve_backend
        return GpuIndex(codes, gpu)
    if choice is IndexBackend.MULTI_INDEX:
        return MultiIndexHashIndex(codes)
    if choice is IndexBackend.FAISS_FLAT:
        return FaissFlatIndex(codes)
    return BruteForceIndex(codes)
