"""Luma + banded downsample of a uint8 image to a 64 x 64 float64 plane.

`downsample_dense` is the definition: luma as float64, then A = R Y C^T with dense operator matrices, on
any array module (NumPy or CuPy). `downsample_fused` is the CPU fast path: one Numba pass that reads the
uint8 pixels once, computes luma on the fly and applies only the non-zero band of each operator row. The
two agree to float64 rounding (about 1e-12 relative); tests hold them to that.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from kernels.banded import BandedOperator
from kernels.optional import optional_module, require_module

# The reference computes luma with these float32 constants; the float64 values of those float32 numbers
# reproduce its products before its own float32 rounding.
LUMA_COEFFS = np.array([np.float32(0.299), np.float32(0.587), np.float32(0.114)], dtype=np.float64)
_GREY_COEFFS = np.ones(1, dtype=np.float64)


def luma_plane(xp: ModuleType, image: Any) -> Any:
    """H x W float64 luma of an H x W x 3 RGB image, or the float64 copy of an H x W grey plane."""
    if image.ndim == 2:
        return image.astype(xp.float64)
    coeffs = xp.asarray(LUMA_COEFFS)
    return image[..., 0] * coeffs[0] + image[..., 1] * coeffs[1] + image[..., 2] * coeffs[2]


def downsample_dense(xp: ModuleType, image: Any, rows: BandedOperator, cols: BandedOperator) -> Any:
    """Reference: (64 x 64) = R @ luma(image) @ C^T with dense float64 operators."""
    luma = luma_plane(xp, image)
    return rows.to_dense(xp) @ luma @ cols.to_dense(xp).T


def fused_available() -> bool:
    return optional_module("numba") is not None


def downsample_fused(image: np.ndarray, rows: BandedOperator, cols: BandedOperator) -> np.ndarray:
    """CPU fast path of `downsample_dense` for a NumPy uint8 image (H x W grey or H x W x 3 RGB); needs numba."""
    result: np.ndarray = downsample_fused_columns(image, rows, [cols])[0]
    return result


def downsample_fused_columns(image: np.ndarray, rows: BandedOperator, cols: list[BandedOperator]) -> np.ndarray:
    """`downsample_fused` of one row operator with each column operator, (k, 64, 64): the row stage once.
    Column operators of one length and band (an operator and its flip): results bit for bit as one at a time."""
    kernels = _compiled_kernels()
    pixels = np.ascontiguousarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError("expected an H x W x 3 or H x W uint8 image")
    if rows.length != pixels.shape[0] or any(c.length != pixels.shape[1] or c.band != cols[0].band for c in cols):
        raise ValueError(f"operators that do not fit a {pixels.shape[:2]} image, or column bands that differ")
    coeffs = LUMA_COEFFS if pixels.ndim == 3 else _GREY_COEFFS
    out = np.empty((len(cols), rows.rows, cols[0].rows), dtype=np.float64)
    flat = pixels.reshape(pixels.shape[0], -1)
    starts = np.stack([c.starts for c in cols])
    weights = np.stack([c.weights for c in cols])
    kernels.downsample(flat, rows.starts, rows.weights, starts, weights, coeffs, out)
    return out


def _compiled_kernels() -> ModuleType:
    require_module("numba", "the fused CPU downsample kernel")
    from kernels import downsample_jit

    return downsample_jit
