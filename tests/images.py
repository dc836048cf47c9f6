"""Benign generated test images: seeded noise with structure, so hashes have high quality."""

from __future__ import annotations

import numpy as np


def structured_image(height: int, width: int, seed: int, channels: int = 3, block: int = 0) -> np.ndarray:
    """Blocky random colours plus fine noise; `block` 0 picks a block size that leaves visible structure."""
    rng = np.random.default_rng(seed)
    block = block or max(1, min(height, width) // int(rng.integers(4, 24)))
    coarse = rng.integers(0, 256, (height // block + 1, width // block + 1, channels), dtype=np.int16)
    image = np.repeat(np.repeat(coarse, block, axis=0), block, axis=1)[:height, :width]
    image = image + rng.integers(-24, 25, image.shape, dtype=np.int16)
    out = np.clip(image, 0, 255).astype(np.uint8)
    return out[..., 0] if channels == 1 else out


def noise_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
