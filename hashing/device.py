"""Where hashing and search run: the CPU, or a GPU that has shown it computes what the CPU does.

`--device auto|cpu|gpu` (hash, match, serve, bench). `auto` uses the GPU only after a self-test on that
device passed: images hashed there (two of Meta's reference photos shipped in hashing/self_test, and
generated ones of awkward sizes, in every dihedral mode and both contracts) equal the CPU's hashes bit for
bit, and a search over a small clustered list equals the brute-force reference. Otherwise it says why, once,
and runs on the CPU. Asking for `gpu` where the self-test fails, or there is no CuPy, driver or device, is
an error that says why. GPU code never runs silently on the CPU.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import numpy as np

from hashing.decode import decode_rgb
from hashing.errors import HashmatchError, ReasonCode
from hashing.pdq_batch import BatchPdqHasher
from hashing.pdq_gpu import MAX_BATCH as GPU_BATCH
from hashing.pdq_gpu import GpuImageHasher
from hashing.pdq_hasher import DihedralMode, DownsampleKernel, ImageHasher, PdqContract, PdqHasher
from kernels.gpu_nearest import DeviceNearestSearch
from kernels.gpu_search import DeviceRangeSearch
from kernels.hamming import nearest_bruteforce, range_search_bruteforce
from kernels.optional import optional_module
from kernels.runtime import KernelRuntime, cuda_runtime

log = logging.getLogger("hashmatch.device")
SELF_TEST_DIR = Path(__file__).resolve().parent / "self_test"
SELF_TEST_SIZES = ((5, 5), (37, 64), (64, 64), (129, 127), (480, 640), (1004, 1600))


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"


class GpuUnavailableError(HashmatchError):
    """`--device gpu`, and no GPU that passed the self-test."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.GPU_UNAVAILABLE, message)


@dataclass(frozen=True)
class DeviceChoice:
    device: Device  # CPU or GPU, never AUTO
    reason: str  # why: what the self-test found, or why there is no GPU
    runtime: KernelRuntime | None = None  # the GPU's, when device is GPU

    @property
    def on_gpu(self) -> bool:
        return self.device is Device.GPU


def select_device(requested: Device | str = Device.AUTO) -> DeviceChoice:
    wanted = Device(requested)
    if wanted is Device.CPU:
        return DeviceChoice(Device.CPU, "asked for the CPU")
    runtime, finding = verified_gpu()
    if runtime is not None:
        return DeviceChoice(Device.GPU, finding, runtime)
    if wanted is Device.GPU:
        raise GpuUnavailableError(f"--device gpu: {finding}")
    _say_once(finding)
    return DeviceChoice(Device.CPU, finding)


@cache
def _say_once(finding: str) -> None:
    log.warning(json.dumps({"event": "gpu_not_used", "reason": finding}))


@cache
def verified_gpu() -> tuple[KernelRuntime | None, str]:
    """The GPU's runtime and what its self-test found, or None and why there is no usable GPU. Once per
    process: the self-test compiles the kernels and hashes a few dozen images."""
    cupy = optional_module("cupy")
    if cupy is None:
        return None, "CuPy is not installed (pip install 'hashmatch[gpu]')"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver, or a broken one: CuPy raises its own runtime errors
        return None, f"no usable CUDA driver ({type(exc).__name__})"
    if count < 1:
        return None, "no CUDA device"
    try:
        runtime = cuda_runtime()
        failures = self_test(runtime)
    except Exception as exc:  # a kernel that does not compile or launch on this device
        return None, f"the GPU self-test could not run ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if failures:
        return None, "the GPU self-test failed: " + "; ".join(failures[:5])
    return runtime, f"GPU self-test passed on device 0 of {count}"


def self_test(runtime: KernelRuntime) -> list[str]:
    """What differs between `runtime` and the CPU on the self-test images and search; empty when nothing."""
    images = self_test_images()
    batch, cpu = BatchPdqHasher(runtime), PdqHasher(backend="numpy")
    failures = []
    for contract in PdqContract:
        for dihedral in DihedralMode:
            got = batch.hash_batch(images, contract, dihedral)
            for number, (image, result) in enumerate(zip(images, got, strict=True)):
                expected = cpu.hash_image(image, contract, dihedral)
                if (result.hash, result.dihedral) != (expected.hash, expected.dihedral) or [
                    h.quality for h in (result.hash, *result.dihedral)
                ] != [h.quality for h in (expected.hash, *expected.dihedral)]:
                    failures.append(f"image {number} ({image.shape[1]}x{image.shape[0]}, {contract}, {dihedral})")
    rng = np.random.default_rng(11)
    centres = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    codes = centres[rng.integers(0, 40, 3000)] ^ (rng.random((3000, 32)) < 0.05).astype(np.uint8)
    queries = np.concatenate([codes[:60], rng.integers(0, 256, (20, 32), dtype=np.uint8)])
    search = DeviceRangeSearch(codes, runtime, capacity=64)  # small: the overflow rerun is tested too
    for radius in (0, 31, 64):
        got_hits = search.search(queries, radius)
        expected_hits = range_search_bruteforce(queries, codes, radius)
        if not (
            np.array_equal(got_hits.offsets, expected_hits.offsets)
            and np.array_equal(got_hits.rows, expected_hits.rows)
            and np.array_equal(got_hits.distances, expected_hits.distances)
        ):
            failures.append(f"range search at radius {radius}")
    nearest = DeviceNearestSearch(search.words, runtime).nearest(queries, 10)
    expected_nearest = nearest_bruteforce(queries, codes, 10)
    if not (
        np.array_equal(nearest.rows, expected_nearest.rows)
        and np.array_equal(nearest.distances, expected_nearest.distances)
    ):
        failures.append("nearest-neighbour lookup")
    return failures


def self_test_images() -> list[np.ndarray]:
    """Two reference photos, and blocky noise of sizes that stress the operators' edges."""
    photos = [decode_rgb(path.read_bytes()) for path in sorted(SELF_TEST_DIR.glob("*.jpg"))]
    rng = np.random.default_rng(12)
    generated = []
    for height, width in SELF_TEST_SIZES:
        coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.int16)
        image = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
        generated.append(np.clip(image + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8))
    return photos + generated


def image_hasher(choice: DeviceChoice, kernel: DownsampleKernel = DownsampleKernel.AUTO) -> ImageHasher:
    """PDQ for decoded images on the chosen device (call `close()` on a GPU one when done)."""
    if choice.runtime is not None:
        if kernel is not DownsampleKernel.AUTO:
            raise ValueError("--kernel chooses the CPU's downsample kernel; this run hashes on the GPU")
        return GpuImageHasher(choice.runtime)
    return PdqHasher(kernel=kernel)


def feeder_threads(choice: DeviceChoice, requested: int | None) -> int:
    """Threads that read and decode for the hasher: one per core on the CPU; on a GPU enough to fill a batch
    (they mostly wait on decoding and on their batch)."""
    cores = os.cpu_count() or 1
    if requested is not None:
        return requested
    return max(GPU_BATCH, 2 * cores) if choice.on_gpu else cores


def close_hasher(hasher: ImageHasher) -> None:
    if isinstance(hasher, GpuImageHasher):
        hasher.close()
