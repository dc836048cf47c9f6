"""Test lists of PDQ codes (random, clustered with duplicates and skewed substrings) and queries near them,
shared by the index, kernel and GPU tests. No hypothesis here: the GPU machine runs tests/test_gpu_device.py
without it."""

from __future__ import annotations

import numpy as np

from kernels.hamming import RangeHits


def flip_bits(codes: np.ndarray, rng: np.random.Generator, max_flips: int) -> np.ndarray:
    out = codes.copy()
    for row in out:
        for bit in rng.choice(256, int(rng.integers(0, max_flips + 1)), replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def random_list(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def clustered_list(rng: np.random.Generator, n: int) -> np.ndarray:
    """Families of near-duplicates around a few centres, exact duplicates, and skewed substrings: many rows
    share their first 8 bytes, so some buckets hold a large part of the list."""
    centres = random_list(rng, max(1, n // 20))
    codes = flip_bits(centres[rng.integers(0, len(centres), n)], rng, 40)
    if n == 0:
        return codes
    codes[: n // 3, :8] = codes[0, :8]
    if n >= 4:
        codes[n // 2 : n // 2 + n // 10] = codes[1]
    return codes


def queries_for(codes: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    if len(codes) == 0:
        return random_list(rng, n)
    near = flip_bits(codes[rng.integers(0, len(codes), n)], rng, 64)
    return np.concatenate([near, random_list(rng, max(1, n // 4))])


def assert_same(got: RangeHits, expected: RangeHits) -> None:
    got = got.sorted_by_row()
    np.testing.assert_array_equal(got.offsets, expected.offsets)
    np.testing.assert_array_equal(got.rows, expected.rows)
    np.testing.assert_array_equal(got.distances, expected.distances)
