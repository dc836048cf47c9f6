"""File -> PDQ and array -> PDQ, hashmatch side by side with Meta's C++ reference (`pdqhash`), one core.

Reproduce: see README, "Performance". Groups put the rivals of one measurement together; the summary
script turns medians into ratios.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.conftest import SIZES
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import PdqHasher

pdqhash = pytest.importorskip("pdqhash", reason="the C++ reference is the peer being compared")
pytestmark = pytest.mark.usefixtures("one_core")

EXACT = MediaHasher(HashOptions(exact_digests=False))
FAST = MediaHasher(HashOptions(exact_digests=False, fast_luma=True))
ARRAY_HASHER = PdqHasher(backend="numpy")


def pdqhash_file(path: Path) -> tuple[Any, int]:
    """What python-threatexchange and HMA do: Pillow decode, convert to RGB, pdqhash.compute."""
    with Image.open(path) as image:
        return pdqhash.compute(np.asarray(image.convert("RGB")))  # type: ignore[no-any-return]


@pytest.mark.parametrize("size", list(SIZES))
def test_file_to_hash_pdqhash(benchmark: Any, jpeg_files: dict[str, Path], size: str) -> None:
    benchmark.group = f"file->hash {size}"
    _, quality = benchmark(pdqhash_file, jpeg_files[size])
    assert quality > 50


@pytest.mark.parametrize("size", list(SIZES))
def test_file_to_hash_hashmatch_exact(benchmark: Any, jpeg_files: dict[str, Path], size: str) -> None:
    benchmark.group = f"file->hash {size}"
    EXACT.hash_file(jpeg_files[size])  # compile / warm caches outside the timing
    result = benchmark(EXACT.hash_file, jpeg_files[size])
    vector, _ = pdqhash_file(jpeg_files[size])
    assert result.pdq.digest == np.packbits(vector.astype(np.uint8)).tobytes()


@pytest.mark.parametrize("size", list(SIZES))
def test_file_to_hash_hashmatch_fast_luma(benchmark: Any, jpeg_files: dict[str, Path], size: str) -> None:
    benchmark.group = f"file->hash {size}"
    FAST.hash_file(jpeg_files[size])
    result = benchmark(FAST.hash_file, jpeg_files[size])
    assert not result.exact_pdq and result.pdq - EXACT.hash_file(jpeg_files[size]).pdq <= 8


@pytest.mark.parametrize("size", list(SIZES))
def test_file_to_hash_phash(benchmark: Any, jpeg_files: dict[str, Path], size: str) -> None:
    """imagehash's 64-bit pHash, for scale: a different, smaller hash, not a PDQ implementation."""
    imagehash = pytest.importorskip("imagehash")
    benchmark.group = f"file->hash {size}"

    def phash_file(path: Path) -> Any:
        with Image.open(path) as image:
            return imagehash.phash(image)

    assert benchmark(phash_file, jpeg_files[size]) is not None


def _decoded(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("size", list(SIZES))
def test_array_to_hash_pdqhash(benchmark: Any, jpeg_files: dict[str, Path], size: str) -> None:
    benchmark.group = f"array->hash {size}"
    benchmark(pdqhash.compute, _decoded(jpeg_files[size]))


@pytest.mark.parametrize("size", list(SIZES))
def test_array_to_hash_hashmatch(benchmark: Any, jpeg_files: dict[str, Path], size: str) -> None:
    benchmark.group = f"array->hash {size}"
    pixels = _decoded(jpeg_files[size])
    ARRAY_HASHER.hash_image(pixels)
    result = benchmark(ARRAY_HASHER.hash_image, pixels)
    assert result.hash.quality == pdqhash.compute(pixels)[1]
