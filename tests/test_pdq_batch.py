"""The batched PDQ pipeline of the GPU path, run through the emulated kernels on NumPy arrays: bit-identical
to the CPU hasher on the conformance images and on random images of many sizes, in every dihedral mode and
both contracts. On a GPU the same functions run on CuPy (tests/test_gpu_device.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hashing.decode import decode_rgb
from hashing.pdq_batch import BatchPdqHasher
from hashing.pdq_hasher import DihedralMode, PdqContract, PdqHasher, PdqResult
from kernels.runtime import emulated_runtime
from tests.conformance import QUALITY_GATE, core_expectations
from tests.images import structured_image

CPU = PdqHasher(backend="numpy")
# The conformance images up to 1600 x 1004 (the 4032 x 3024 EXIF shots add minutes to the emulated kernels
# and nothing the others lack), at or above the quality gate.
CONFORMANCE = [
    e for e in core_expectations() if e.width * e.height <= 1600 * 1004 and e.fullres_quality >= QUALITY_GATE
]


@pytest.fixture(scope="module")
def batch() -> BatchPdqHasher:
    return BatchPdqHasher(emulated_runtime())


def _same(got: PdqResult, expected: PdqResult) -> bool:
    def flat(result: PdqResult) -> list[tuple[str, int | None]]:
        return [(h.hex(), h.quality) for h in (result.hash, *result.dihedral)]

    return flat(got) == flat(expected)


@pytest.mark.parametrize("dihedral", list(DihedralMode))
def test_conformance_images_hash_exactly_as_on_the_cpu(batch: BatchPdqHasher, dihedral: DihedralMode) -> None:
    images = [decode_rgb(e.path.read_bytes()) for e in CONFORMANCE]
    assert len(images) >= 40
    results = batch.hash_batch(images, dihedral=dihedral)
    mismatched = [
        e.name
        for e, image, got in zip(CONFORMANCE, images, results, strict=True)
        if not _same(got, CPU.hash_image(image, dihedral=dihedral))
    ]
    assert mismatched == []
    assert all(got.hash.hex() == e.fullres_pdq for e, got in zip(CONFORMANCE, results, strict=True))


def test_the_cli512_contract_and_mixed_sizes_in_one_batch(batch: BatchPdqHasher) -> None:
    sizes = [(3, 7), (4, 4), (5, 5), (5, 63), (64, 64), (127, 129), (128, 128), (200, 600), (513, 700), (64, 64)]
    images = [structured_image(h, w, seed) for seed, (h, w) in enumerate(sizes)]
    images.append(structured_image(90, 70, 99, channels=1))  # luma
    for contract in PdqContract:
        results = batch.hash_batch(images, contract=contract, dihedral=DihedralMode.DCT)
        for image, got in zip(images, results, strict=True):
            assert _same(got, CPU.hash_image(image, contract, DihedralMode.DCT)), (image.shape, contract)
    assert results[0].hash.quality == 0 and results[0].hash.is_zero()  # under 5 px: the all-zero hash


def test_an_empty_batch_and_bad_input(batch: BatchPdqHasher) -> None:
    assert batch.hash_batch([]) == []
    with pytest.raises(ValueError, match="uint8"):
        batch.hash_batch([np.zeros((8, 8, 3), np.float32)])
