"""PDQ for a batch of decoded images at once, on a KernelRuntime: the GPU path (CuPy), or the emulated one
that checks the same code on any machine.

Images are grouped by size; each group is uploaded once and hashed with the array-level definition of
`hashing.pdq` (the same math as the CPU hasher): luma, the two operator products `R Y C^T` as batched float64
GEMMs (cuBLAS on a GPU) with the operators cached per size where the arrays live, the DCT corner, and then
two kernels of `kernels/cuda/pdq_tail.cu`: the quality metric, and the bits against each DCT's lower median
found by rank (no sort). Both kernels write into one result buffer, so a group costs one copy back.

Each thread that hashes has its own stream and its own page-locked staging buffer: the group's pixels are
stacked into the staging buffer, uploaded on the thread's stream, hashed, and copied back on it, so while one
thread's group computes, another's upload proceeds (hashing.pdq_gpu runs two such threads). A group larger
than PINNED_LIMIT_BYTES is uploaded from ordinary memory instead (page-locked memory is scarce). The 8
DCT-derived dihedral variants are computed beside the DCT; `DihedralMode.PIXELS` runs four operator pairs
(flipping an axis flips its operator; transposes are free), as the CPU hasher does.

Bit-identical to the CPU path wherever a coefficient is not within float64 rounding of the median: the GEMMs
may sum in another order than the CPU's kernels (the device check compares hashes on a GPU, not floats).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashing.jarosz import axis_operator
from hashing.pdq import DCT_MATRIX, MIN_HASHABLE_SIDE, dihedral_dcts
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, PdqContract, PdqResult, cli512_resize
from kernels.downsample import luma_plane
from kernels.runtime import KernelRuntime

THREADS = 256  # pdq_tail.cu's kernels use one block of 256 threads per matrix
HASH_BYTES = 32
PINNED_LIMIT_BYTES = 256 << 20  # one thread's staging buffer at most: 64 images of 1024 x 768 RGB fit


@dataclass
class FeedState:
    """One hashing thread's stream and staging buffer (grown to the largest group that fits the limit)."""

    stream: Any
    staging: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint8))


class BatchPdqHasher:
    def __init__(self, runtime: KernelRuntime) -> None:
        self.runtime = runtime
        self.xp = runtime.xp
        self._dct = self.xp.asarray(DCT_MATRIX)
        self._operators: dict[tuple[int, bool], Any] = {}
        self._bits = runtime.kernel("pdq_tail", "pdq_bits")
        self._quality = runtime.kernel("pdq_tail", "pdq_quality")
        self._feeds = threading.local()
        self._operators_lock = threading.Lock()  # several feeding threads may meet a new size at once

    def hash_batch(
        self,
        images: Sequence[np.ndarray],
        contract: PdqContract = PdqContract.FULLRES,
        dihedral: DihedralMode = DihedralMode.NONE,
    ) -> list[PdqResult]:
        """One result per image (H x W x 3 RGB or H x W luma, uint8), in order."""
        prepared = [cli512_resize(image) if contract is PdqContract.CLI512 else image for image in images]
        results: list[PdqResult | None] = [None] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(prepared):
            if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or image.dtype != np.uint8:
                raise ValueError("expected H x W x 3 (RGB) or H x W (luma) uint8 arrays")
            groups.setdefault(tuple(image.shape), []).append(i)
        for shape, members in groups.items():
            group = self._hash_group([prepared[i] for i in members], shape, dihedral)
            for i, result in zip(members, group, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _operator(self, length: int, flipped: bool = False) -> Any:
        key = (length, flipped)
        with self._operators_lock:
            if key not in self._operators:
                operator = axis_operator(length)
                self._operators[key] = (operator.flipped() if flipped else operator).to_dense(self.xp)
            return self._operators[key]

    def feed_state(self) -> FeedState:
        """The calling thread's stream and staging buffer, made on its first group."""
        state: FeedState | None = getattr(self._feeds, "state", None)
        if state is None:
            state = self._feeds.state = FeedState(self.runtime.new_stream())
        return state

    def _upload(self, images: list[np.ndarray], state: FeedState) -> Any:
        """The group's pixels on the device, through the thread's page-locked staging buffer when they fit."""
        shape = (len(images), *images[0].shape)
        size = int(np.prod(shape))
        if size > PINNED_LIMIT_BYTES:
            return self.xp.asarray(np.stack(images))
        if state.staging.size < size:
            state.staging = self.runtime.pinned_empty((min(PINNED_LIMIT_BYTES, 2 * size),), np.uint8)
        staged = state.staging[:size].reshape(shape)
        np.stack(images, out=staged)
        return self.runtime.upload(staged)

    def _hash_group(self, images: list[np.ndarray], shape: tuple[int, ...], dihedral: DihedralMode) -> list[PdqResult]:
        height, width = shape[0], shape[1]
        if min(height, width) < MIN_HASHABLE_SIDE:
            zero = PdqHash(bytes(32), 0)
            return [PdqResult(zero, (zero,) * 8 if dihedral is not DihedralMode.NONE else ()) for _ in images]
        xp = self.xp
        state = self.feed_state()
        # Everything of this group is queued on the thread's stream; the copy back at the end waits for it,
        # so the staging buffer is free again when the next group of this thread arrives.
        with state.stream:
            pixels = self._upload(images, state)  # one upload per group
            luma = pixels.astype(xp.float64) if len(shape) == 2 else luma_plane(xp, pixels)
            return self.hash_luma(luma, dihedral)

    def hash_luma(self, luma: Any, dihedral: DihedralMode = DihedralMode.NONE) -> list[PdqResult]:
        """PDQ of a (b, H, W) float64 luma stack already where the runtime keeps arrays (on the device), with
        H and W at least 5: what the GPU does once the pixels are there."""
        xp = self.xp
        height, width = int(luma.shape[1]), int(luma.shape[2])
        if dihedral is DihedralMode.PIXELS:
            buffers = self._pixel_dihedral_buffers(luma, height, width)  # (b, 8, 64, 64)
        else:
            buffers = (self._operator(height) @ luma @ self._operator(width).T)[:, None]  # (b, 1, 64, 64)
        count, variants = buffers.shape[0], buffers.shape[1]
        dct = self._dct @ buffers @ self._dct.T  # (b, v, 16, 16)
        if dihedral is DihedralMode.DCT:
            dct = dihedral_dcts(xp, dct[:, 0])  # (b, 8, 16, 16)
        hashes_per_image = int(dct.shape[1])
        packed, qualities = self._tail(
            xp.ascontiguousarray(buffers.reshape(count * variants, 64, 64)),
            xp.ascontiguousarray(dct.reshape(count * hashes_per_image, 256)),
        )
        results = []
        for image in range(count):
            rows = packed[image * hashes_per_image : (image + 1) * hashes_per_image]
            marks = qualities[image * variants : (image + 1) * variants]
            marks = np.repeat(marks, hashes_per_image // variants)
            hashes = tuple(PdqHash(row.tobytes(), int(q)) for row, q in zip(rows, marks, strict=True))
            results.append(PdqResult(hashes[0], hashes if dihedral is not DihedralMode.NONE else ()))
        return results

    def _pixel_dihedral_buffers(self, luma: Any, height: int, width: int) -> Any:
        """The 8 transformed images' buffers from 4 operator pairs, in DIHEDRAL_NAMES order (as PdqHasher)."""
        xp = self.xp
        rows, cols = self._operator(height), self._operator(width)
        rows_flipped, cols_flipped = self._operator(height, True), self._operator(width, True)
        plain = rows @ luma @ cols.T
        upside_down = rows_flipped @ luma @ cols.T
        mirrored = rows @ luma @ cols_flipped.T
        both = rows_flipped @ luma @ cols_flipped.T

        def t(a: Any) -> Any:
            return xp.swapaxes(a, -1, -2)

        return xp.stack([plain, t(mirrored), both, t(upside_down), upside_down, mirrored, t(plain), t(both)], axis=1)

    def _tail(self, buffers: Any, dct: Any) -> tuple[np.ndarray, np.ndarray]:
        """Quality per buffer and packed bits per DCT, written into one buffer and copied back once."""
        xp = self.xp
        n_buffers, n_hashes = int(buffers.shape[0]), int(dct.shape[0])
        result = xp.zeros(n_hashes * HASH_BYTES + n_buffers * 4, dtype=xp.uint8)
        packed = result[: n_hashes * HASH_BYTES]
        quality = result[n_hashes * HASH_BYTES :].view(xp.int32)
        self._quality((n_buffers,), (THREADS,), (buffers, np.int32(n_buffers), quality))
        self._bits((n_hashes,), (THREADS,), (dct, np.int32(n_hashes), packed))
        host = self.runtime.to_host(result)
        return host[: n_hashes * HASH_BYTES].reshape(n_hashes, HASH_BYTES), host[n_hashes * HASH_BYTES :].view(np.int32)
