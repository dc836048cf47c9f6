"""The CUDA kernels, checked without a GPU: every source compiles for the device (NVRTC, and nvcc when it is
on the PATH), and runs on the CPU through the emulation harness (kernels/emulation) against its NumPy twin,
through the same host code the GPU runs. On a GPU machine the same comparisons run on CuPy
(tests/test_gpu_device.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hashing.pdq import bits_from_dct, quality
from hashing.pdq_hash import pack_bits
from kernels import gpu_nearest
from kernels.cuda_sources import ARCHITECTURES, SOURCE_DIR, signatures, source, source_names
from kernels.emulation.emulator import EmulatedModule
from kernels.gpu_nearest import DeviceNearestSearch
from kernels.gpu_search import DeviceRangeSearch
from kernels.hamming import nearest_bruteforce, range_search_bruteforce
from kernels.optional import optional_module
from kernels.runtime import KernelRuntime, emulated_runtime
from tests.code_lists import assert_same, clustered_list, queries_for, random_list

NVCC = shutil.which("nvcc")


@pytest.fixture(scope="module")
def runtime() -> KernelRuntime:
    return emulated_runtime()


def test_every_source_declares_kernels_with_known_parameter_types() -> None:
    assert source_names() == ["hamming_nearest", "hamming_range", "pdq_tail"]
    for name in source_names():
        kernels = signatures(source(name))
        assert kernels, name
        assert "#include" not in source(name)  # NVRTC compiles them as they are: no headers


@pytest.mark.skipif(optional_module("cuda.bindings.nvrtc") is None, reason="cuda-bindings (NVRTC) not installed")
@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("name", source_names())
def test_every_source_compiles_for_the_device_with_nvrtc(name: str, arch: str) -> None:
    from kernels.nvrtc_check import compile_cubin

    assert compile_cubin(name, arch)[:4] == b"\x7fELF"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("name", source_names())
def test_every_source_compiles_with_nvcc(name: str, tmp_path: Path) -> None:
    assert NVCC is not None
    for arch in ARCHITECTURES:
        result = subprocess.run(
            [
                NVCC,
                f"-arch={arch}",
                "-cubin",
                "--fmad=false",
                "-std=c++17",
                str(SOURCE_DIR / f"{name}.cu"),
                "-o",
                str(tmp_path / f"{name}.cubin"),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.skipif(optional_module("cuda.bindings.nvrtc") is None, reason="cuda-bindings (NVRTC) not installed")
def test_a_source_that_does_not_compile_fails_with_the_compilers_log(monkeypatch: pytest.MonkeyPatch) -> None:
    from kernels import nvrtc_check

    monkeypatch.setattr(nvrtc_check, "source", lambda name: 'extern "C" __global__ void k(int* x) { x[0] = y; }')
    with pytest.raises(nvrtc_check.KernelCompileError, match='identifier "y" is undefined'):
        nvrtc_check.compile_cubin("broken", "sm_90")


# ----- hamming_range: the device range search against the brute-force reference -----


@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("rows", [0, 1, 2, 700])
def test_device_range_search_equals_brute_force(runtime: KernelRuntime, kind: str, rows: int) -> None:
    rng = np.random.default_rng(rows + len(kind))
    codes = (random_list if kind == "random" else clustered_list)(rng, rows)
    queries = queries_for(codes, rng, 24)
    search = DeviceRangeSearch(codes, runtime)
    for radius in (0, 1, 16, 31, 47, 64, 128, 256):
        assert_same(search.search(queries, radius), range_search_bruteforce(queries, codes, radius))


def test_duplicates_and_every_owner_are_found(runtime: KernelRuntime) -> None:
    rng = np.random.default_rng(3)
    codes = np.repeat(random_list(rng, 5), 4, axis=0)
    hits = DeviceRangeSearch(codes, runtime).search(codes[:1], 0)
    assert hits.rows.tolist() == [0, 1, 2, 3]


def test_an_overflowing_output_is_detected_and_rerun_with_room_for_all(runtime: KernelRuntime) -> None:
    rng = np.random.default_rng(4)
    codes = clustered_list(rng, 500)
    queries = queries_for(codes, rng, 30)
    search = DeviceRangeSearch(codes, runtime, capacity=7)
    expected = range_search_bruteforce(queries, codes, 100)
    assert int(expected.offsets[-1]) > 7
    assert_same(search.search(queries, 100), expected)
    assert search.reruns == 1


def test_long_lists_and_large_batches_run_in_chunks(runtime: KernelRuntime) -> None:
    rng = np.random.default_rng(5)
    codes = clustered_list(rng, 900)
    queries = queries_for(codes, rng, 70)
    search = DeviceRangeSearch(codes, runtime, chunk_codes=256, query_group=32)
    assert_same(search.search(queries, 40), range_search_bruteforce(queries, codes, 40))


# ----- hamming_nearest: the k nearest rows, ties settled by row as the reference settles them -----


def _nearest_search(codes: np.ndarray, runtime: KernelRuntime, chunk_codes: int = 1 << 26) -> DeviceNearestSearch:
    return DeviceNearestSearch(DeviceRangeSearch(codes, runtime).words, runtime, chunk_codes)


@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("rows", [0, 1, 2, 700])
def test_device_nearest_equals_the_reference_row_for_row(runtime: KernelRuntime, kind: str, rows: int) -> None:
    rng = np.random.default_rng(rows + 7 * len(kind))
    codes = (random_list if kind == "random" else clustered_list)(rng, rows)
    queries = queries_for(codes, rng, 40)
    search = _nearest_search(codes, runtime)
    for k in (1, 2, 3, 10, 699, 700, 5000):
        got, expected = search.nearest(queries, k), nearest_bruteforce(queries, codes, k)
        assert got.rows.shape == (len(queries), min(k, rows))
        np.testing.assert_array_equal(got.rows, expected.rows)
        np.testing.assert_array_equal(got.distances, expected.distances)


def test_ties_at_the_kth_distance_go_to_the_lowest_rows(runtime: KernelRuntime) -> None:
    rng = np.random.default_rng(8)
    codes = random_list(rng, 300)
    codes[40:260] = codes[3]  # 221 rows at distance 0 from row 3, in a list searched in chunks of 64
    got = _nearest_search(codes, runtime, chunk_codes=64).nearest(codes[[3]], 5)
    assert got.rows.tolist() == [[3, 40, 41, 42, 43]] and got.distances.tolist() == [[0] * 5]


def test_many_tied_candidates_are_collected_in_groups_of_queries(
    runtime: KernelRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu_nearest, "CANDIDATE_BUDGET", 50)  # each query's ties alone exceed it
    codes = np.repeat(random_list(np.random.default_rng(9), 3), 60, axis=0)
    queries = codes[[0, 60, 120, 0]]
    np.testing.assert_array_equal(
        _nearest_search(codes, runtime).nearest(queries, 4).rows, nearest_bruteforce(queries, codes, 4).rows
    )


# ----- pdq_tail: bits against the lower median, and the quality metric -----


def _dcts(rng: np.random.Generator) -> np.ndarray:
    dct = rng.normal(size=(12, 16, 16))
    dct[1] = 0.0  # all tied
    dct[2] = rng.integers(0, 3, (16, 16))  # many ties around the median
    dct[3] = np.arange(256).reshape(16, 16)[::-1]
    dct[4, 0, 0] = np.inf
    return dct


def test_pdq_bits_kernel_equals_its_twin(runtime: KernelRuntime) -> None:
    dct = _dcts(np.random.default_rng(6))
    packed = np.zeros((len(dct), 32), np.uint8)
    runtime.kernel("pdq_tail", "pdq_bits")((len(dct),), (256,), (dct, np.int32(len(dct)), packed))
    np.testing.assert_array_equal(packed, pack_bits(bits_from_dct(np, dct)))


def test_pdq_quality_kernel_equals_its_twin(runtime: KernelRuntime) -> None:
    rng = np.random.default_rng(7)
    smooth = np.cumsum(rng.normal(0, 0.6, (6, 64, 64)), axis=2) + 128.0
    buffers = np.concatenate([smooth, rng.uniform(0, 255, (2, 64, 64)), np.zeros((1, 64, 64))])
    got = np.zeros(len(buffers), np.int32)
    runtime.kernel("pdq_tail", "pdq_quality")((len(buffers),), (256,), (buffers, np.int32(len(buffers)), got))
    expected = quality(np, buffers)
    np.testing.assert_array_equal(got, expected)
    assert len(set(expected.tolist())) > 3  # the metric is exercised below its cap of 100


# ----- the emulator holds the host code to the kernels' real signatures -----


def test_a_scalar_of_the_wrong_type_is_refused(runtime: KernelRuntime) -> None:
    kernel = runtime.kernel("pdq_tail", "pdq_bits")
    with pytest.raises(TypeError, match=r"numpy\.int32"):
        kernel((1,), (256,), (np.zeros((1, 256)), 1, np.zeros((1, 32), np.uint8)))  # a Python int for `int n`
    with pytest.raises(TypeError, match="C-contiguous"):
        kernel((1,), (256,), (np.zeros((256, 2))[:, 0], np.int32(1), np.zeros((1, 32), np.uint8)))


def test_the_emulator_runs_barriers_and_atomics_as_a_gpu_block_does() -> None:
    text = """
    extern "C" __global__ void block_sum(const int* x, int n, unsigned long long* total, int* partial) {
        __shared__ int values[128];
        values[threadIdx.x] = threadIdx.x < n ? x[blockIdx.x * 128 + threadIdx.x] : 0;
        __syncthreads();
        if (threadIdx.x == 0) {
            int sum = 0;
            for (int i = 0; i < 128; ++i) sum += values[i];
            partial[blockIdx.x] = sum;
            atomicAdd(total, (unsigned long long)sum);
        }
    }
    """
    kernel = EmulatedModule("block_sum", text=text).get_function("block_sum")
    x = np.arange(3 * 128, dtype=np.int32)
    total, partial = np.zeros(1, np.uint64), np.zeros(3, np.int32)
    kernel((3,), (128,), (x, np.int32(128), total, partial))
    assert partial.tolist() == [int(x[i * 128 : (i + 1) * 128].sum()) for i in range(3)]
    assert int(total[0]) == int(x.sum())


def test_the_device_checks_compile_step_loads_every_kernel_through_cupy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """benchmarks/device_check.sh compiles with CuPy on the GPU machine (no cuda-bindings there); here a
    stand-in CuPy whose RawModule is the emulator runs the same code."""
    from types import SimpleNamespace

    from kernels import nvrtc_check

    fake_cupy = SimpleNamespace(
        cuda=SimpleNamespace(Device=lambda number: SimpleNamespace(compute_capability="90")),
        RawModule=lambda code, options: EmulatedModule("cupy-check", None, code),
    )
    monkeypatch.setattr(nvrtc_check, "require_module", lambda name, purpose: fake_cupy)
    monkeypatch.setattr(sys, "argv", ["nvrtc_check", "--cupy"])
    assert nvrtc_check.run() == 0
    loaded = capsys.readouterr().out.splitlines()
    expected = {(name, kernel) for name in source_names() for kernel in signatures(source(name))}
    assert {(line.split(".cu ")[0], line.split(" ")[1].rstrip(":")) for line in loaded} == expected


def test_a_missing_compiler_package_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kernels import nvrtc_check
    from kernels.optional import MissingDependencyError

    def missing(name: str, purpose: str) -> None:
        raise MissingDependencyError(name, purpose)

    monkeypatch.setattr(nvrtc_check, "require_module", missing)
    monkeypatch.setattr(sys, "argv", ["nvrtc_check", "--cupy"])
    assert nvrtc_check.run() == 1
    assert capsys.readouterr().err.startswith("nvrtc_check: the CuPy compile check needs")


def test_launches_from_several_threads_take_turns_in_the_emulator(runtime: KernelRuntime) -> None:
    """The service launches from its batcher and its gRPC threads at once; the emulator's launch dimensions
    and shared arrays are process-wide, so concurrent launches must not interleave."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    cases = []
    for rows in (300, 700, 1300, 2100):
        codes = clustered_list(rng, rows)
        cases.append((DeviceRangeSearch(codes, runtime), queries_for(codes, rng, 40), codes))

    def search(case: tuple[DeviceRangeSearch, np.ndarray, np.ndarray]) -> None:
        index, queries, codes = case
        for _ in range(3):
            assert_same(index.search(queries, 40), range_search_bruteforce(queries, codes, 40))

    with ThreadPoolExecutor(len(cases)) as pool:
        list(pool.map(search, cases))
