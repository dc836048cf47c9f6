"""Runs the kernels through their host code under a sanitizer (started by tests/test_cuda_sanitizers.py with
the sanitizer's runtime preloaded). `python -m tests.emulation_sanitizer_run SANITIZER [real|race|overflow]`:
"real" runs hashmatch's kernels and checks their answers; "race" and "overflow" run kernels broken on purpose
(a missing __syncthreads, a shared array too small), which the sanitizer must report."""

from __future__ import annotations

import sys

import numpy as np

from hashing.pdq_batch import BatchPdqHasher
from hashing.pdq_hasher import DihedralMode, PdqHasher
from kernels.emulation.emulator import EmulatedModule
from kernels.gpu_nearest import DeviceNearestSearch
from kernels.gpu_search import DeviceRangeSearch
from kernels.hamming import nearest_bruteforce, range_search_bruteforce
from kernels.runtime import emulated_runtime
from tests.images import structured_image

RACE = """
extern "C" __global__ void sum(const double* x, double* out) {
    __shared__ double part[256];
    part[threadIdx.x] = x[threadIdx.x];
    if (threadIdx.x == 0) { double t = 0; for (int i = 0; i < 256; ++i) t += part[i]; out[0] = t; }
}
"""
OVERFLOW = """
extern "C" __global__ void sum(const double* x, double* out) {
    __shared__ double part[128];
    part[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    if (threadIdx.x == 0) { double t = 0; for (int i = 0; i < 256; ++i) t += part[i]; out[0] = t; }
}
"""


def real(sanitizer: str) -> int:
    runtime = emulated_runtime(sanitizer)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (600, 32), dtype=np.uint8)
    queries = codes[:40]
    hits = DeviceRangeSearch(codes, runtime, capacity=8).search(queries, 100).sorted_by_row()
    expected = range_search_bruteforce(queries, codes, 100)
    if not np.array_equal(hits.rows, expected.rows):
        return 1
    search = DeviceRangeSearch(codes, runtime)
    nearest = DeviceNearestSearch(search.words, runtime, chunk_codes=256).nearest(queries, 7)
    if not np.array_equal(nearest.rows, nearest_bruteforce(queries, codes, 7).rows):
        return 1
    images = [structured_image(64, 80, 1), structured_image(100, 100, 2), structured_image(100, 100, 3)]
    got = BatchPdqHasher(runtime).hash_batch(images, dihedral=DihedralMode.DCT)
    cpu = PdqHasher(backend="numpy")
    return (
        0
        if all(
            g.dihedral == cpu.hash_image(i, dihedral=DihedralMode.DCT).dihedral
            for g, i in zip(got, images, strict=True)
        )
        else 1
    )


def broken(sanitizer: str, text: str) -> int:
    kernel = EmulatedModule("broken", sanitizer, text).get_function("sum")
    kernel((1,), (256,), (np.ones(256), np.zeros(1)))
    return 0


if __name__ == "__main__":
    which, what = sys.argv[1], sys.argv[2]
    sys.exit(real(which) if what == "real" else broken(which, RACE if what == "race" else OVERFLOW))
