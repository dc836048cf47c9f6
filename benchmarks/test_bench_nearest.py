"""`--nearest K` lookups on the CPU: FAISS IndexBinaryFlat (what hashmatch uses where faiss is installed)
beside the NumPy reference (the fallback without it), K = 10, one 8-code query batch (an upload's dihedral
variants) over a random list of HASHMATCH_BENCH_NEAREST_ROWS codes (default 1e5 for CI's smoke run; the
README's figure uses 1e6). Each round's answer is checked against the reference's distances.

    HASHMATCH_BENCH_NEAREST_ROWS=1e6 .venv/bin/python -m pytest benchmarks/test_bench_nearest.py --benchmark-enable
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine.index.brute_force import BruteForceIndex
from engine.index.faiss_flat import FaissFlatIndex
from kernels.hamming import NearestHits, nearest_bruteforce

pytest.importorskip("faiss", reason="FAISS is one of the two paths measured")

ROWS = int(float(os.environ.get("HASHMATCH_BENCH_NEAREST_ROWS", "1e5")))
K = 10
BACKENDS: dict[str, Callable[[np.ndarray], Any]] = {"faiss-flat": FaissFlatIndex, "numpy-reference": BruteForceIndex}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, NearestHits]:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (ROWS, 32), dtype=np.uint8)
    queries = codes[rng.integers(0, ROWS, 8)] ^ rng.integers(0, 2, (8, 32), dtype=np.uint8)
    return codes, queries, nearest_bruteforce(queries, codes, K)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_batch(benchmark: Any, data: tuple[np.ndarray, np.ndarray, NearestHits], backend: str) -> None:
    codes, queries, expected = data
    index = BACKENDS[backend](codes)
    answers: list[NearestHits] = []

    def lookup() -> None:
        answers.append(index.nearest(queries, K))

    benchmark.pedantic(lookup, rounds=5, warmup_rounds=1)
    assert answers and all(np.array_equal(a.distances, expected.distances) for a in answers)
    benchmark.extra_info.update({"rows": ROWS, "k": K, "queries": len(queries), "backend": backend})
