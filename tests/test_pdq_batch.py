"""The batched PDQ pipeline of the GPU path, run through the emulated kernels on NumPy arrays: bit-identical
to the CPU hasher on the conformance images and on random images of many sizes, in every dihedral mode and
both contracts. On a GPU the same functions run on CuPy (tests/test_gpu_device.py)."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hashing import pdq_batch
from hashing.decode import decode_rgb
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_batch import BatchPdqHasher
from hashing.pdq_gpu import GpuImageHasher
from hashing.pdq_hasher import DihedralMode, PdqContract, PdqHasher, PdqResult
from hashing.query_variants import ALL_FAMILIES
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


class CountingRuntime:
    """The emulated runtime, counting the streams and page-locked buffers the hasher asks for."""

    def __init__(self) -> None:
        self.inner = emulated_runtime()
        self.xp = self.inner.xp
        self.streams: list[str] = []
        self.pinned: list[int] = []

    def kernel(self, source: str, name: str) -> Any:
        return self.inner.kernel(source, name)

    def to_host(self, array: Any) -> np.ndarray:
        return self.inner.to_host(array)

    def new_stream(self) -> Any:
        self.streams.append(threading.current_thread().name)
        return self.inner.new_stream()

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        self.pinned.append(int(np.prod(shape)))
        return self.inner.pinned_empty(shape, dtype)

    def upload(self, host: np.ndarray) -> Any:
        return self.inner.upload(host)


def test_each_feeding_thread_has_one_stream_and_reuses_its_staging_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = CountingRuntime()
    hasher = BatchPdqHasher(runtime)  # type: ignore[arg-type]  # a KernelRuntime in all it uses
    small = [structured_image(60, 80, seed) for seed in range(3)]
    for _ in range(3):
        assert all(_same(g, CPU.hash_image(i)) for g, i in zip(hasher.hash_batch(small), small, strict=True))
    assert len(runtime.streams) == 1 and runtime.pinned == [2 * 3 * 60 * 80 * 3]  # one buffer, reused
    both_started = threading.Barrier(2)  # two distinct threads, each hashing once

    def in_new_thread(images: list[np.ndarray]) -> list[PdqResult]:
        both_started.wait()
        return hasher.hash_batch(images)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(in_new_thread, [small, small]))
    assert len(runtime.streams) == 3  # one more stream for each new thread
    monkeypatch.setattr(pdq_batch, "PINNED_LIMIT_BYTES", 10_000)  # larger groups upload from ordinary memory
    before = len(runtime.pinned)
    assert all(_same(g, CPU.hash_image(i)) for g, i in zip(hasher.hash_batch(small), small, strict=True))
    assert len(runtime.pinned) == before


def test_the_gpu_hasher_feeds_from_two_threads_and_answers_every_caller() -> None:
    gpu = GpuImageHasher(emulated_runtime(), max_batch=4, feeding_threads=2)
    images = [structured_image(40 + seed % 3, 50, seed) for seed in range(24)]
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda image: gpu.hash_image(image, dihedral=DihedralMode.DCT), images))
    finally:
        gpu.close()
    assert all(_same(g, CPU.hash_image(i, dihedral=DihedralMode.DCT)) for g, i in zip(got, images, strict=True))


def test_the_gpu_hasher_gives_the_hosts_query_variants_and_pixel_dihedral() -> None:
    """Query variants are hashed on the host beside the device's batches (no region operators on the device
    yet); a MediaHasher over the GPU hasher gives what the CPU one gives."""
    gpu = GpuImageHasher(emulated_runtime(), max_batch=4)
    image = np.pad(structured_image(90, 120, 5), ((12, 12), (12, 12), (0, 0)))
    options = HashOptions(dihedral=DihedralMode.PIXELS, variants=ALL_FAMILIES, exact_digests=False)
    try:
        on_gpu = MediaHasher(options, gpu).hash_bytes(_png(image))
    finally:
        gpu.close()
    on_cpu = MediaHasher(options, CPU).hash_bytes(_png(image))
    assert [v.name for v in on_gpu.variants][:1] == ["content_box"]
    assert (on_gpu.pdq, on_gpu.dihedral, on_gpu.variants) == (on_cpu.pdq, on_cpu.dihedral, on_cpu.variants)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
