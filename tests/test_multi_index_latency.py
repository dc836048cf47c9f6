"""Small batches take the serial multi-index kernel and large ones the parallel kernel, with identical answers.

Timing is measured in benchmarks/test_bench_latency.py; these tests check what each batch size runs and that
both kernels give the same hits, around the threshold between them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine.index.brute_force import BruteForceIndex
from engine.index.multi_index import FORCE_PARALLEL_ENV, SERIAL_BELOW_QUERIES, MultiIndexHashIndex, SubstringLayout
from kernels import multi_index_jit
from kernels.hamming import RangeHits
from tests.code_lists import assert_same, clustered_list, queries_for, random_list

THRESHOLD = SERIAL_BELOW_QUERIES
BATCH_SIZES = sorted({1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 4 * THRESHOLD + 3} - {0})
RADIUS = 31
LISTS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "random": random_list,
    "clustered": clustered_list,
}


def searched_with(index: MultiIndexHashIndex, queries: np.ndarray, serial_below: int) -> RangeHits:
    index.serial_below_queries = serial_below
    return index.search(queries, RADIUS)


@pytest.mark.parametrize("size", BATCH_SIZES)
@pytest.mark.parametrize("data", list(LISTS))
def test_serial_and_parallel_kernels_give_identical_hits(data: str, size: int) -> None:
    rng = np.random.default_rng(size)
    codes = LISTS[data](rng, 3000)
    # Near-duplicates of listed codes and unrelated ones, mixed; clustered lists also overflow the first pass.
    queries = rng.permutation(queries_for(codes, rng, size))[:size]
    index = MultiIndexHashIndex(codes, layout=SubstringLayout.even(16))
    serial = searched_with(index, queries, serial_below=size + 1)
    parallel = searched_with(index, queries, serial_below=0)
    for field in ("offsets", "rows", "distances"):
        np.testing.assert_array_equal(getattr(serial, field), getattr(parallel, field))
    assert_same(serial, BruteForceIndex(codes).search(queries, RADIUS))


def test_the_kernels_fill_identical_buffers() -> None:
    """The two entry points, called directly with the same arguments, write the same outputs."""
    rng = np.random.default_rng(7)
    codes = clustered_list(rng, 2000)
    queries = queries_for(codes, rng, THRESHOLD + 1)
    index = MultiIndexHashIndex(codes, layout=SubstringLayout.even(16))
    outputs = []
    for kernel in (multi_index_jit.search_serial, multi_index_jit.search_parallel):
        rows = np.full((len(queries), 8), -1, dtype=np.int64)
        dists = np.full((len(queries), 8), -1, dtype=np.int16)
        counts = np.full(len(queries), -1, dtype=np.int64)
        masks, n_masks = index._masks(RADIUS // index.layout.m)
        kernel(
            queries.view(np.uint64), index.words, index.layout.starts, index.layout.lengths, index.ids,
            index.offsets, index.bases, masks, n_masks, RADIUS // index.layout.m, RADIUS, index.scan_threshold,
            rows, dists, counts,
        )  # fmt: skip
        outputs.append((rows, dists, counts))
    assert (outputs[0][2] >= 0).all()
    for serial, parallel in zip(outputs[0], outputs[1], strict=True):
        np.testing.assert_array_equal(serial, parallel)


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(kernel, queries) of every kernel call the index makes, the real kernels still answering."""
    calls: list[tuple[str, int]] = []

    def spy_on(name: str) -> None:
        real = getattr(multi_index_jit, name)

        def spy(queries: np.ndarray, *args: Any) -> None:
            calls.append((name, len(queries)))
            real(queries, *args)

        monkeypatch.setattr(multi_index_jit, name, spy)

    spy_on("search_serial")
    spy_on("search_parallel")
    return calls


def small_index() -> tuple[MultiIndexHashIndex, np.ndarray]:
    codes = random_list(np.random.default_rng(3), 1000)
    return MultiIndexHashIndex(codes), codes


@pytest.mark.parametrize(
    ("size", "kernel"),
    [(1, "search_serial"), (THRESHOLD - 1, "search_serial"), (THRESHOLD, "search_parallel"), (1000, "search_parallel")],
)
def test_batch_size_picks_the_kernel(kernel_calls: list[tuple[str, int]], size: int, kernel: str) -> None:
    index, codes = small_index()
    hits = index.search(codes[:size], RADIUS)
    assert kernel_calls == [(kernel, size)]
    assert all(int(i) in hits.for_query(i)[0] for i in range(size))  # each listed code finds itself


def test_a_rerun_of_a_few_overflowing_queries_is_serial(kernel_calls: list[tuple[str, int]]) -> None:
    """A large batch runs in parallel; the few queries with more hits than the first pass keeps rerun serially."""
    rng = np.random.default_rng(4)
    codes = np.concatenate([random_list(rng, 1000), np.repeat(random_list(rng, 1), 40, axis=0)])
    queries = np.concatenate([codes[:THRESHOLD], codes[-1:]])
    MultiIndexHashIndex(codes).search(queries, RADIUS)
    assert kernel_calls == [("search_parallel", THRESHOLD + 1), ("search_serial", 1)]


def test_forcing_parallel_restores_the_old_behaviour(
    kernel_calls: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FORCE_PARALLEL_ENV, "1")
    index, codes = small_index()
    index.search(codes[:1], RADIUS)
    assert kernel_calls == [("search_parallel", 1)]


def test_the_threshold_leaves_both_kernels_in_use() -> None:
    assert 1 < SERIAL_BELOW_QUERIES <= 1000
