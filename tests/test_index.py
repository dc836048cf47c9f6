"""Every index backend returns exactly what the NumPy brute-force reference returns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.index.brute_force import BruteForceIndex
from engine.index.factory import IndexBackend, build_index, resolve_backend
from engine.index.multi_index import MultiIndexHashIndex, SubstringLayout, choose_layout, probe_masks
from kernels.optional import optional_module
from kernels.runtime import emulated_runtime
from tests.code_lists import assert_same, clustered_list, queries_for, random_list

# FAISS is optional (the GPU machine has none): without it, the other backends are still held to the reference.
HAVE_FAISS = optional_module("faiss") is not None
BACKENDS = [IndexBackend.MULTI_INDEX, IndexBackend.BRUTE_FORCE] + ([IndexBackend.FAISS_FLAT] if HAVE_FAISS else [])
# The GPU backend through the emulated kernels: the same host code and kernel source a GPU runs.
EMULATED_GPU = emulated_runtime()


@settings(max_examples=60, deadline=None)
@given(
    n=st.one_of(st.sampled_from([0, 1, 2, 3]), st.integers(4, 3000)),
    clustered=st.booleans(),
    radius=st.integers(0, 64),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_backend_equals_the_bruteforce_reference(n: int, clustered: bool, radius: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = clustered_list(rng, n) if clustered else random_list(rng, n)
    queries = queries_for(codes, rng, 20)
    expected = BruteForceIndex(codes).search(queries, radius)
    for backend in BACKENDS:
        assert_same(build_index(codes, radius, backend).search(queries, radius), expected)
    assert_same(build_index(codes, radius, IndexBackend.GPU, EMULATED_GPU).search(queries, radius), expected)


@pytest.mark.parametrize("radius", [0, 1, 15, 16, 31, 32, 47, 48, 64, 128, 256])
def test_multi_index_at_every_probe_depth_with_small_layouts(radius: int) -> None:
    rng = np.random.default_rng(radius)
    codes = clustered_list(rng, 4000)
    queries = queries_for(codes, rng, 50)
    expected = BruteForceIndex(codes).search(queries, radius)
    for m in (11, 12, 13, 16):
        assert_same(MultiIndexHashIndex(codes, layout=SubstringLayout.even(m)).search(queries, radius), expected)


def test_duplicate_hashes_keep_every_owner_and_many_hits_overflow_the_first_pass() -> None:
    codes = np.repeat(random_list(np.random.default_rng(1), 1), 100, axis=0)
    hits = MultiIndexHashIndex(codes).search(codes[:3], 0)
    for i in range(3):
        rows, distances = hits.for_query(i)
        assert sorted(rows.tolist()) == list(range(100)) and not distances.any()


def test_scan_fallback_on_skewed_buckets_stays_exact() -> None:
    rng = np.random.default_rng(2)
    codes = random_list(rng, 5000)
    codes[:, :4] = 0  # one bucket of the first substrings holds every row
    index = MultiIndexHashIndex(codes, layout=SubstringLayout.even(16))
    queries = queries_for(codes, rng, 30)
    assert_same(index.search(queries, 31), BruteForceIndex(codes).search(queries, 31))


def test_layouts_with_buckets_too_large_are_refused() -> None:
    with pytest.raises(ValueError):
        MultiIndexHashIndex(random_list(np.random.default_rng(0), 10), layout=SubstringLayout.even(8))


def test_layouts_and_masks() -> None:
    for n in (0, 10, 10**5, 10**6, 10**7):
        layout = choose_layout(n)
        assert int(layout.lengths.sum()) == 256 and layout.starts[0] == 0
    assert choose_layout(10**7).m == 12
    assert len(probe_masks(16, 1)) == 17 and len(probe_masks(22, 2)) == 1 + 22 + 231
    assert choose_layout(10**5).m == 16


@pytest.mark.skipif(not HAVE_FAISS, reason="faiss-cpu not installed")
def test_automatic_backend_choice() -> None:
    assert resolve_backend("auto", 100, 31) is IndexBackend.FAISS_FLAT
    assert resolve_backend("auto", 10**6, 31) is IndexBackend.MULTI_INDEX
    assert resolve_backend("auto", 10**6, 64) is IndexBackend.FAISS_FLAT
    assert resolve_backend("bruteforce", 10**6, 31) is IndexBackend.BRUTE_FORCE
    # a verified GPU takes the large lists, at any radius; never without one
    assert resolve_backend("auto", 10**6, 64, EMULATED_GPU) is IndexBackend.GPU
    assert resolve_backend("auto", 100, 31, EMULATED_GPU) is IndexBackend.FAISS_FLAT
    with pytest.raises(ValueError, match="self-test"):
        resolve_backend("gpu", 10**6, 31)


def test_invalid_radius_and_codes_are_rejected() -> None:
    index = BruteForceIndex(random_list(np.random.default_rng(0), 3))
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), np.uint8), -1)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 31), np.uint8), 3)
