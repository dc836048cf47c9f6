"""PDQ on a GPU for callers that hash one image at a time (the service's requests, a pool of decode threads):
their images are gathered into batches (hashing.micro_batching) and hashed together by BatchPdqHasher.

Decoding stays on the host threads and exact (the same decoders as the CPU path); only the pixels go to the
device, one upload per batch and size from a page-locked staging buffer, and one copy of the hashes comes
back. Two feeding threads, each with its own CUDA stream, take batches in turn, so one batch's upload
overlaps the other's compute.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashing.micro_batching import MicroBatcher
from hashing.pdq_batch import BatchPdqHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, PdqContract, PdqHasher, PdqResult
from hashing.query_variants import VariantPlan
from kernels.runtime import KernelRuntime

MAX_BATCH = 64  # images per launch set: enough to amortise a launch, few enough to bound device memory
MAX_WAIT_S = 0.002
FEEDING_THREADS = 2  # each with its stream: one batch uploads while the other computes


class GpuImageHasher:
    """`hash_image` as PdqHasher has it, answered from batches on the device; safe to share between threads."""

    def __init__(
        self,
        runtime: KernelRuntime,
        max_batch: int = MAX_BATCH,
        max_wait_s: float = MAX_WAIT_S,
        feeding_threads: int = FEEDING_THREADS,
    ) -> None:
        self.batch = BatchPdqHasher(runtime)
        self.host = PdqHasher(backend="numpy")
        self.batcher: MicroBatcher[np.ndarray, tuple[PdqContract, DihedralMode], PdqResult] = MicroBatcher(
            self._hash_many, max_batch, max_wait_s, name="hashmatch-gpu-hasher", workers=feeding_threads
        )

    def hash_image(
        self, image: np.ndarray, contract: PdqContract = PdqContract.FULLRES, dihedral: DihedralMode = DihedralMode.NONE
    ) -> PdqResult:
        return self.batcher.submit(image, (contract, dihedral)).result()

    def hash_images(self, images: list[np.ndarray]) -> list[PdqResult]:
        """All submitted before any is awaited, so they reach the device in as few batches as they fill."""
        key = (PdqContract.FULLRES, DihedralMode.NONE)
        pending = [self.batcher.submit(image, key) for image in images]
        return [future.result() for future in pending]

    def hash_variants(self, image: np.ndarray, plans: Sequence[VariantPlan]) -> list[PdqHash]:
        """On the host for now: the batched device path has no region operators yet (each variant costs
        about one host downsample; the README states it)."""
        return self.host.hash_variants(image, plans)

    def _hash_many(self, images: list[np.ndarray], key: tuple[PdqContract, DihedralMode]) -> list[PdqResult]:
        return self.batch.hash_batch(images, *key)

    def close(self) -> None:
        self.batcher.close()
