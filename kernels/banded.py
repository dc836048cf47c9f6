"""Banded 64 x N operators: the reduction "filter, then point-sample" along one image axis.

A PDQ-style downsample of an H x W plane Y to 64 x 64 is A = R Y C^T, where R (64 x H) and C (64 x W) each
have a short contiguous band of non-zero weights per row. Storing the band alone (start index + weights)
keeps the operator at 64 x ~2N/128 numbers instead of 64 x N, and lets the CPU kernel touch each pixel about
once instead of 64 times.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class BandedOperator:
    """Rows of a (rows x length) matrix whose row i is zero outside [starts[i], starts[i] + band)."""

    length: int
    starts: np.ndarray  # (rows,) int64, first column of each row's band
    weights: np.ndarray  # (rows, band) float64, zero-padded past each row's band

    def __post_init__(self) -> None:
        if self.starts.ndim != 1 or self.weights.ndim != 2 or self.weights.shape[0] != self.starts.shape[0]:
            raise ValueError("starts must be (rows,) and weights (rows, band)")
        if self.starts.size and (self.starts.min() < 0 or self.starts.max() + self.band > self.length):
            raise ValueError("a band reaches outside [0, length)")

    @property
    def rows(self) -> int:
        return int(self.starts.shape[0])

    @property
    def band(self) -> int:
        return int(self.weights.shape[1])

    @cached_property
    def dense(self) -> np.ndarray:
        """The full (rows x length) float64 matrix, built once per operator."""
        matrix = np.zeros((self.rows, self.length), dtype=np.float64)
        for i in range(self.rows):
            start = int(self.starts[i])
            matrix[i, start : start + self.band] = self.weights[i]
        matrix.setflags(write=False)
        return matrix

    def to_dense(self, xp: ModuleType = np) -> Any:
        """The dense matrix on the given array module (NumPy or CuPy)."""
        return xp.asarray(self.dense)

    def flipped(self) -> BandedOperator:
        """The operator of the mirrored axis, R J (J reverses the samples): hashing a flipped image
        needs no flipped copy of its pixels."""
        starts = self.length - self.starts - self.band
        weights = np.ascontiguousarray(self.weights[:, ::-1])
        starts.setflags(write=False)
        weights.setflags(write=False)
        return BandedOperator(length=self.length, starts=starts, weights=weights)
