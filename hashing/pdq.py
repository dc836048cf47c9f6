"""PDQ over an array module: the same code runs on NumPy and on CuPy.

Pipeline per image: luma -> 64 x 64 buffer (two Jarosz passes and point sampling, as banded operators; see
`hashing.jarosz`) -> quality metric on that buffer -> 16 x 16 DCT corner `B = D A D^T` -> bit `16i+j` set iff
`B[i, j]` exceeds the lower median. All functions take stacks (`(..., 64, 64)`) so the GPU can batch.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

MIN_HASHABLE_SIDE = 5
HASH_SIDE = 16

DIHEDRAL_NAMES: tuple[str, ...] = (
    "orig",
    "rot90",
    "rot180",
    "rot270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)


def _dct_matrix() -> np.ndarray:
    # Entries rounded to float32 like the reference's table, then used in float64 arithmetic.
    i = np.arange(1, HASH_SIDE + 1).reshape(-1, 1)
    j = np.arange(64).reshape(1, -1)
    scale = np.float32(np.sqrt(2.0 / 64.0))
    values = scale.astype(np.float64) * np.cos((np.pi / 2.0 / 64.0) * i * (2 * j + 1))
    rounded: np.ndarray = values.astype(np.float32).astype(np.float64)
    return rounded


DCT_MATRIX = _dct_matrix()
DCT_MATRIX.setflags(write=False)


def dct16(xp: ModuleType, buffers: Any) -> Any:
    """(..., 64, 64) -> (..., 16, 16): the low-frequency corner of the 2-D DCT, skipping the DC row/column."""
    d = xp.asarray(DCT_MATRIX)
    return d @ buffers @ d.T


def quality(xp: ModuleType, buffers: Any) -> Any:
    """(..., 64, 64) -> (...,) int: the reference's gradient-sum quality, capped at 100."""
    down = xp.trunc((buffers[..., :-1, :] - buffers[..., 1:, :]) * 100.0 / 255.0)
    across = xp.trunc((buffers[..., :, :-1] - buffers[..., :, 1:]) * 100.0 / 255.0)
    total = xp.abs(down).sum(axis=(-2, -1)) + xp.abs(across).sum(axis=(-2, -1))
    return xp.minimum(total.astype(xp.int64) // 90, 100)


def bits_from_dct(xp: ModuleType, dct: Any) -> Any:
    """(..., 16, 16) -> (..., 16, 16) bool: coefficient > lower median (the 128th smallest of 256)."""
    flat = dct.reshape((*dct.shape[:-2], HASH_SIDE * HASH_SIDE))
    median = xp.sort(flat, axis=-1)[..., 127]
    return dct > median[..., None, None]


def _parity_signs(xp: ModuleType) -> tuple[Any, Any, Any]:
    idx = xp.arange(HASH_SIDE)
    odd = (idx % 2 == 1).astype(xp.float64)
    row_sign = (2 * odd - 1).reshape(-1, 1)  # +1 on odd rows i, -1 on even
    col_sign = (2 * odd - 1).reshape(1, -1)  # +1 on odd columns j, -1 on even
    checker = row_sign * col_sign  # +1 where i + j is even
    return row_sign, col_sign, checker


def dihedral_dcts(xp: ModuleType, dct: Any) -> Any:
    """(..., 16, 16) -> (..., 8, 16, 16): DCTs of the 8 rotations/flips, derived by signs and transposes.

    Cheap but approximate: the Jarosz filter and point sampling are not symmetric, so on small images these
    can be 30-100 bits from hashing the transformed pixels (`DihedralMode.PIXELS`).
    """
    row_sign, col_sign, checker = _parity_signs(xp)

    def t(a: Any) -> Any:
        return xp.swapaxes(a, -1, -2)

    variants = [
        dct,
        t(dct * col_sign),
        dct * checker,
        t(dct * row_sign),
        dct * row_sign,
        dct * col_sign,
        t(dct),
        t(dct * checker),
    ]
    return xp.stack(variants, axis=-3)
