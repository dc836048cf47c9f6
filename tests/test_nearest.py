"""`--nearest K` lookups: every backend held to the brute-force reference (FAISS within its stated freedom at
ties), and FAISS's GPU index only where faiss-gpu sees a device (constructing one without aborts a process)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engine.index import nearest_scan
from engine.index.brute_force import BruteForceIndex
from engine.index.faiss_flat import FaissFlatIndex
from engine.index.gpu_index import GpuIndex
from engine.index.multi_index import MultiIndexHashIndex
from engine.index.nearest_scan import CpuNearestScan, faiss_gpu_available
from kernels.hamming import NearestHits, hamming_distances, nearest_bruteforce
from kernels.optional import optional_module
from kernels.runtime import emulated_runtime
from tests.code_lists import clustered_list, queries_for, random_list

HAS_FAISS = optional_module("faiss") is not None


def test_the_reference_is_the_k_smallest_distance_and_row_pairs() -> None:
    rng = np.random.default_rng(0)
    codes = clustered_list(rng, 200)
    for query in queries_for(codes, rng, 10):
        d = hamming_distances(query, codes)
        expected = sorted(zip(d.tolist(), range(len(codes)), strict=True))[:9]
        got = nearest_bruteforce(query[None], codes, 9)
        assert list(zip(got.distances[0].tolist(), got.rows[0].tolist(), strict=True)) == expected


def test_k_beyond_the_list_returns_the_whole_list_and_an_empty_list_nothing() -> None:
    codes = random_list(np.random.default_rng(1), 2)
    assert nearest_bruteforce(codes, codes, 5).rows.tolist() == [[0, 1], [1, 0]]
    assert nearest_bruteforce(codes, codes[:0], 5).rows.shape == (2, 0)
    with pytest.raises(ValueError, match="at least 1"):
        nearest_bruteforce(codes, codes, 0)


def assert_nearest_within_ties(got: NearestHits, expected: NearestHits) -> None:
    """Equal distances; rows closer than the k-th distance equal; rows at it chosen among the tied rows."""
    np.testing.assert_array_equal(got.distances, expected.distances)
    for got_rows, expected_rows, distances in zip(got.rows, expected.rows, expected.distances, strict=True):
        if not len(distances):
            continue
        closer = distances < distances[-1]
        assert got_rows[closer].tolist() == expected_rows[closer].tolist()
        assert len(set(got_rows.tolist())) == len(got_rows)


def _backends(codes: np.ndarray) -> dict[str, Any]:
    backends: dict[str, Any] = {
        "bruteforce": BruteForceIndex(codes),
        "mih": MultiIndexHashIndex(codes),
        "gpu-emulated": GpuIndex(codes, emulated_runtime()),
    }
    if HAS_FAISS:
        backends["faiss-flat"] = FaissFlatIndex(codes)
    return backends


@pytest.mark.parametrize("kind", ["random", "clustered", "duplicates"])
@pytest.mark.parametrize("rows", [0, 1, 2, 300])
def test_every_backend_equals_the_reference(kind: str, rows: int) -> None:
    rng = np.random.default_rng(rows + len(kind))
    codes = (random_list if kind == "random" else clustered_list)(rng, rows)
    if kind == "duplicates":
        codes = np.repeat(codes, 3, axis=0)
    queries = queries_for(codes, rng, 12)
    for name, index in _backends(codes).items():
        for k in (1, 3, 10, 2 * len(codes) + 1):
            got, expected = index.nearest(queries, k), nearest_bruteforce(queries, codes, k)
            if name.startswith("faiss") or (name == "mih" and HAS_FAISS):
                assert_nearest_within_ties(got, expected)
            else:  # ours settle ties by row, as the reference does
                np.testing.assert_array_equal(got.rows, expected.rows, err_msg=f"{name} k={k}")
                np.testing.assert_array_equal(got.distances, expected.distances, err_msg=f"{name} k={k}")


def test_the_cpu_scan_without_faiss_is_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nearest_scan, "optional_module", lambda name: None)
    codes = clustered_list(np.random.default_rng(2), 100)
    scan = CpuNearestScan(codes)
    assert scan.backend == "numpy-bruteforce"
    np.testing.assert_array_equal(scan.nearest(codes[:5], 4).rows, nearest_bruteforce(codes[:5], codes, 4).rows)


class _FakeFaiss:
    """Stands for a faiss build: records whether a GPU class was constructed."""

    def __init__(self, gpus: int | None) -> None:
        self.constructed: list[str] = []
        if gpus is not None:
            self.get_num_gpus = lambda: gpus

    def StandardGpuResources(self) -> object:  # noqa: N802 (FAISS's name)
        self.constructed.append("resources")
        return object()

    def GpuIndexBinaryFlat(self, resources: object, bits: int) -> Any:  # noqa: N802
        self.constructed.append("index")
        codes: list[np.ndarray] = []
        return SimpleNamespace(
            add=codes.append,
            search=lambda queries, k: _brute_force_search(np.concatenate(codes), queries, k),
        )


def _brute_force_search(codes: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's (D, I), in reverse: the caller must put them in (distance, row) order itself."""
    found = nearest_bruteforce(queries, codes, k)
    return found.distances[:, ::-1].astype(np.int32), found.rows[:, ::-1].copy()


@pytest.mark.parametrize(("gpus", "k", "used"), [(None, 5, False), (0, 5, False), (1, 5, True), (1, 2049, False)])
def test_faiss_gpu_is_used_only_where_it_sees_a_device_and_takes_k(
    monkeypatch: pytest.MonkeyPatch, gpus: int | None, k: int, used: bool
) -> None:
    fake = _FakeFaiss(gpus)
    monkeypatch.setattr(nearest_scan, "optional_module", lambda name: fake if name == "faiss" else None)
    assert faiss_gpu_available(k) is used
    codes = clustered_list(np.random.default_rng(3), 60)
    got = GpuIndex(codes, emulated_runtime()).nearest(codes[:4], k)
    assert fake.constructed == (["resources", "index"] if used else [])
    np.testing.assert_array_equal(got.rows, nearest_bruteforce(codes[:4], codes, k).rows)
