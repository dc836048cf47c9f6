"""On a GPU: the same comparisons as tests/test_cuda_kernels.py and tests/test_pdq_batch.py, with the kernels
compiled by CuPy and run on the device. Skipped, with the reason, where no GPU passes the self-test (the
emulated runs of the same code cover those machines). benchmarks/device_check.sh runs this file."""

from __future__ import annotations

import numpy as np
import pytest

from hashing.decode import decode_rgb
from hashing.device import Device, select_device
from hashing.pdq import bits_from_dct, quality
from hashing.pdq_batch import BatchPdqHasher
from hashing.pdq_hash import pack_bits
from hashing.pdq_hasher import DihedralMode, PdqContract, PdqHasher
from kernels.gpu_nearest import DeviceNearestSearch
from kernels.gpu_search import DeviceRangeSearch
from kernels.hamming import nearest_bruteforce, range_search_bruteforce
from kernels.runtime import KernelRuntime
from tests.code_lists import assert_same, clustered_list, queries_for, random_list
from tests.conformance import QUALITY_GATE, core_expectations
from tests.images import structured_image

CHOICE = select_device(Device.AUTO)
pytestmark = pytest.mark.skipif(not CHOICE.on_gpu, reason=f"no verified GPU: {CHOICE.reason}")


@pytest.fixture(scope="module")
def runtime() -> KernelRuntime:
    assert CHOICE.runtime is not None
    return CHOICE.runtime


@pytest.mark.parametrize("dihedral", list(DihedralMode))
@pytest.mark.parametrize("contract", list(PdqContract))
def test_every_conformance_image_hashes_as_on_the_cpu(
    runtime: KernelRuntime, dihedral: DihedralMode, contract: PdqContract
) -> None:
    rows = [e for e in core_expectations() if e.fullres_quality >= QUALITY_GATE]
    images = [decode_rgb(e.path.read_bytes()) for e in rows]
    cpu = PdqHasher(backend="numpy")
    got = BatchPdqHasher(runtime).hash_batch(images, contract, dihedral)
    for row, image, result in zip(rows, images, got, strict=True):
        expected = cpu.hash_image(image, contract, dihedral)
        assert (result.hash.hex(), result.hash.quality) == (expected.hash.hex(), expected.hash.quality), row.name
        assert [h.hex() for h in result.dihedral] == [h.hex() for h in expected.dihedral], row.name


def test_random_images_of_many_sizes_hash_as_on_the_cpu(runtime: KernelRuntime) -> None:
    rng = np.random.default_rng(1)
    sizes = [(int(h), int(w)) for h, w in rng.integers(5, 2100, (40, 2))] + [(64, 64), (127, 129), (5, 5)]
    images = [structured_image(h, w, seed) for seed, (h, w) in enumerate(sizes)]
    cpu = PdqHasher(backend="numpy")
    for image, result in zip(
        images, BatchPdqHasher(runtime).hash_batch(images, dihedral=DihedralMode.DCT), strict=True
    ):
        expected = cpu.hash_image(image, dihedral=DihedralMode.DCT)
        assert [h.hex() for h in result.dihedral] == [h.hex() for h in expected.dihedral], image.shape


@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("rows", [0, 1, 2, 5000])
def test_device_search_equals_brute_force(runtime: KernelRuntime, kind: str, rows: int) -> None:
    rng = np.random.default_rng(rows)
    codes = (random_list if kind == "random" else clustered_list)(rng, rows)
    queries = queries_for(codes, rng, 64)
    search = DeviceRangeSearch(codes, runtime, capacity=16)  # small: overflow reruns happen
    for radius in range(0, 65, 4):
        assert_same(search.search(queries, radius), range_search_bruteforce(queries, codes, radius))
    nearest = DeviceNearestSearch(search.words, runtime, chunk_codes=1024)
    for k in (1, 10, 100, 6000):
        got, expected = nearest.nearest(queries, k), nearest_bruteforce(queries, codes, k)
        np.testing.assert_array_equal(got.rows, expected.rows)
        np.testing.assert_array_equal(got.distances, expected.distances)


def test_tail_kernels_equal_their_twins(runtime: KernelRuntime) -> None:
    xp = runtime.xp
    rng = np.random.default_rng(2)
    dct = rng.normal(size=(300, 16, 16))
    dct[1] = 0
    packed = xp.zeros((300, 32), dtype=xp.uint8)
    runtime.kernel("pdq_tail", "pdq_bits")((300,), (256,), (xp.asarray(dct), np.int32(300), packed))
    np.testing.assert_array_equal(runtime.to_host(packed), pack_bits(bits_from_dct(np, dct)))
    buffers = np.cumsum(rng.normal(0, 0.6, (50, 64, 64)), axis=2) + 128
    got = xp.zeros(50, dtype=xp.int32)
    runtime.kernel("pdq_tail", "pdq_quality")((50,), (256,), (xp.asarray(buffers), np.int32(50), got))
    np.testing.assert_array_equal(runtime.to_host(got), quality(np, buffers))
