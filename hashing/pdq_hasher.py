"""Pixels -> PDQ hashes on the chosen array backend, under the full-resolution or the `cli512` contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from hashing.jarosz import axis_operator
from hashing.pdq import (
    MIN_HASHABLE_SIDE,
    bits_from_dct,
    dct16,
    dihedral_dcts,
    quality,
)
from hashing.pdq_hash import PdqHash, pack_bits
from hashing.query_variants import VariantPlan, plan_operators
from kernels.backend import ArrayBackend, BackendName, select_backend
from kernels.banded import BandedOperator
from kernels.downsample import downsample_dense, downsample_fused, downsample_fused_columns, fused_available
from kernels.optional import MissingDependencyError

CLI512_SIDE = 512


class PdqContract(StrEnum):
    FULLRES = "fullres"  # the reference core on full-resolution pixels (Java, python-threatexchange, HMA)
    CLI512 = "cli512"  # Meta's C++ command-line tool: nearest-neighbour to 512x512 when a side is over 512


class DihedralMode(StrEnum):
    NONE = "none"
    DCT = "dct"  # derived from the original's DCT by signs and transposes: cheap, approximate
    PIXELS = "pixels"  # hash the 8 transformed images: exact


class DownsampleKernel(StrEnum):
    AUTO = "auto"  # fused (Numba) on NumPy when available, dense operators otherwise
    FUSED = "fused"
    DENSE = "dense"


class ImageHasher(Protocol):
    """What hashes decoded images: PdqHasher on the CPU, hashing.pdq_gpu.GpuImageHasher on a GPU."""

    def hash_image(self, image: Any, contract: PdqContract = ..., dihedral: DihedralMode = ...) -> PdqResult: ...

    def hash_images(self, images: list[Any]) -> list[PdqResult]:
        """Several images at once (a video's frames), full resolution, no dihedral variants."""
        ...

    def hash_variants(self, image: Any, plans: Sequence[VariantPlan]) -> list[PdqHash]:
        """The hash of each planned variant (hashing.query_variants) of one decoded image, full resolution."""
        ...


@dataclass(frozen=True, slots=True)
class PdqResult:
    hash: PdqHash
    dihedral: tuple[PdqHash, ...] = ()  # empty, or 8 hashes in DIHEDRAL_NAMES order


def cli512_resize(image: np.ndarray) -> np.ndarray:
    """The C++ CLI's pre-resize: nearest neighbour to exactly 512x512 (aspect not kept) if a side is over 512."""
    height, width = image.shape[:2]
    if height <= CLI512_SIDE and width <= CLI512_SIDE:
        return image
    rows = (np.arange(CLI512_SIDE) * height) // CLI512_SIDE
    cols = (np.arange(CLI512_SIDE) * width) // CLI512_SIDE
    return np.ascontiguousarray(image[rows][:, cols])


class PdqHasher:
    """Hashes decoded images: H x W x 3 uint8 RGB, or H x W uint8 luma for the fast JPEG mode."""

    def __init__(
        self,
        backend: ArrayBackend | BackendName | str = BackendName.AUTO,
        kernel: DownsampleKernel | str = DownsampleKernel.AUTO,
    ) -> None:
        self.backend = backend if isinstance(backend, ArrayBackend) else select_backend(backend)
        self.kernel = self._resolve_kernel(DownsampleKernel(kernel))

    def _resolve_kernel(self, kernel: DownsampleKernel) -> DownsampleKernel:
        on_cpu = self.backend.name is BackendName.NUMPY
        if kernel is DownsampleKernel.FUSED:
            if not on_cpu:
                raise ValueError("the fused kernel runs on the NumPy backend only")
            if not fused_available():
                raise MissingDependencyError("numba", "the fused CPU downsample kernel")
            return kernel
        if kernel is DownsampleKernel.AUTO:
            return DownsampleKernel.FUSED if on_cpu and fused_available() else DownsampleKernel.DENSE
        return kernel

    def buffer64(self, image: Any, rows: BandedOperator | None = None, cols: BandedOperator | None = None) -> Any:
        """The 64 x 64 float64 downsampled luma, on the backend's array module."""
        rows = rows or axis_operator(image.shape[0])
        cols = cols or axis_operator(image.shape[1])
        if self.kernel is DownsampleKernel.FUSED:
            return downsample_fused(np.asarray(image), rows, cols)
        xp = self.backend.xp
        return downsample_dense(xp, xp.asarray(image), rows, cols)

    def hash_image(
        self,
        image: Any,
        contract: PdqContract = PdqContract.FULLRES,
        dihedral: DihedralMode = DihedralMode.NONE,
    ) -> PdqResult:
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or image.dtype != np.uint8:
            raise ValueError("expected an H x W x 3 (RGB) or H x W (luma) uint8 array")
        if contract is PdqContract.CLI512:
            image = cli512_resize(np.asarray(image))
        if min(image.shape[0], image.shape[1]) < MIN_HASHABLE_SIDE:
            zero = PdqHash(bytes(32), 0)
            return PdqResult(zero, (zero,) * 8 if dihedral is not DihedralMode.NONE else ())
        buffers = self._pixel_dihedral_buffers(image) if dihedral is DihedralMode.PIXELS else self.buffer64(image)[None]
        return self._hashes_from_buffers(buffers, dihedral)

    def hash_variants(self, image: Any, plans: Sequence[VariantPlan]) -> list[PdqHash]:
        """Each plan's region (and extension) is a change of the two operators: no pixel is copied."""
        if not plans:
            return []
        height, width = image.shape[:2]
        buffers = self.backend.xp.stack([self.buffer64(image, *plan_operators(p, height, width)) for p in plans])
        return list(self._hashes_of(buffers))

    def hash_images(self, images: list[Any]) -> list[PdqResult]:
        """One after another: on the CPU a batch saves nothing (the fused kernel is per image)."""
        return [self.hash_image(image) for image in images]

    def _pixel_dihedral_buffers(self, image: Any) -> Any:
        """The 8 transformed images' 64 x 64 buffers from 4 downsamples.

        Flipping an axis of the image is flipping its operator (R J), so no pixels are copied; a transposed
        image's buffer is the transpose of the untransposed one, because each operator depends only on the
        length of its axis.
        """
        xp = self.backend.xp
        rows, cols = axis_operator(image.shape[0]), axis_operator(image.shape[1])
        if self.kernel is DownsampleKernel.FUSED:  # each row stage once, for a column operator and its flip
            pixels = np.asarray(image)
            plain, mirrored = downsample_fused_columns(pixels, rows, [cols, cols.flipped()])
            upside_down, both = downsample_fused_columns(pixels, rows.flipped(), [cols, cols.flipped()])
        else:
            plain = self.buffer64(image, rows, cols)
            upside_down = self.buffer64(image, rows.flipped(), cols)
            mirrored = self.buffer64(image, rows, cols.flipped())
            both = self.buffer64(image, rows.flipped(), cols.flipped())
        # Order of DIHEDRAL_NAMES: orig, rot90 (counter-clockwise), rot180, rot270, flipx (upside down),
        # flipy (mirror), flipplus1 (transpose), flipminus1 (anti-transpose).
        return xp.stack([plain, mirrored.T, both, upside_down.T, upside_down, mirrored, plain.T, both.T])

    def _hashes_from_buffers(self, buffers: Any, dihedral: DihedralMode) -> PdqResult:
        hashes = self._hashes_of(buffers, derive_dihedral=dihedral is DihedralMode.DCT)
        return PdqResult(hashes[0], hashes if dihedral is not DihedralMode.NONE else ())

    def _hashes_of(self, buffers: Any, derive_dihedral: bool = False) -> tuple[PdqHash, ...]:
        """One hash per 64 x 64 buffer; with `derive_dihedral`, the 8 DCT-derived variants of the first."""
        xp = self.backend.xp
        dct = dct16(xp, buffers)
        qualities = self.backend.to_numpy(quality(xp, buffers))
        if derive_dihedral:
            dct = dihedral_dcts(xp, dct[0])
            qualities = np.repeat(qualities, 8)
        packed = pack_bits(self.backend.to_numpy(bits_from_dct(xp, dct)))
        return tuple(PdqHash(row.tobytes(), int(q)) for row, q in zip(packed, qualities, strict=True))
