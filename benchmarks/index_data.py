"""Synthetic hash lists for index benchmarks: random codes, and clustered ones (families of near-duplicates,
exact duplicates and a skewed substring), plus queries half near listed codes and half unrelated."""

from __future__ import annotations

import numpy as np


def flip_random_bits(codes: np.ndarray, rng: np.random.Generator, max_flips: int) -> np.ndarray:
    """Each row gets 0..max_flips random bit flips (with repetition, so possibly fewer)."""
    out = codes.copy()
    rows = np.arange(len(out))
    flips = rng.integers(0, max_flips + 1, len(out))
    for k in range(max_flips):
        chosen = rows[flips > k]
        bits = rng.integers(0, 256, len(chosen))
        np.bitwise_xor.at(out, (chosen, bits // 8), (1 << (bits % 8)).astype(np.uint8))
    return out


def random_codes(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)


def clustered_codes(n: int, seed: int = 0) -> np.ndarray:
    """n / 10 families of ~10 near-duplicates (<= 12 flipped bits), 1% exact duplicates, and 5% of rows
    sharing their first 16 bits (a common pattern, as flat image regions give real PDQ lists)."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (max(1, n // 10), 32), dtype=np.uint8)
    codes = flip_random_bits(centres[rng.integers(0, len(centres), n)], rng, 12)
    duplicates = rng.integers(0, n, n // 100)
    codes[duplicates] = codes[rng.integers(0, n, len(duplicates))]
    skewed = rng.integers(0, n, n // 20)
    codes[skewed, :2] = (0x5A, 0xA5)
    return codes


def queries(codes: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Half near listed codes (0..24 flipped bits: most match at radius 31), half random (no match)."""
    rng = np.random.default_rng(seed)
    near = flip_random_bits(codes[rng.integers(0, len(codes), count // 2)], rng, 24)
    far = rng.integers(0, 256, (count - len(near), 32), dtype=np.uint8)
    return np.concatenate([near, far])
