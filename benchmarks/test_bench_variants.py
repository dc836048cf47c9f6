"""What the query variants cost: file -> every hash an upload is matched with, on one core, for the hashing
modes side by side in one run: the PDQ alone, the 8 DCT-derived dihedral hashes (the default before the
variants), and the default now (the 8 pixel-exact rotations and flips, the content box, the crops).

Reproduce: see README, "Query variants". `python -m benchmarks.summarize_variants` turns the medians into
images/s and ratios against the PDQ alone.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from benchmarks.conftest import SIZES
from hashing.jarosz import axis_operator
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode
from hashing.query_variants import ALL_FAMILIES, region_operator

pytestmark = pytest.mark.usefixtures("one_core")

MODES: dict[str, HashOptions] = {
    "pdq_only": HashOptions(exact_digests=False),
    "dct_dihedral": HashOptions(exact_digests=False, dihedral=DihedralMode.DCT),
    "pixel_dihedral": HashOptions(exact_digests=False, dihedral=DihedralMode.PIXELS),
    "default": HashOptions(exact_digests=False, dihedral=DihedralMode.PIXELS, variants=ALL_FAMILIES),
}
# Hashes searched per mode when nothing is trimmed: the PDQ, or the 8, or the 8 and the 4 crop variants
EXPECTED_HASHES = {"pdq_only": 1, "dct_dihedral": 8, "pixel_dihedral": 8, "default": 12}
SIZE_NAMES = [name for name in SIZES if name != "256x256"]


@pytest.fixture(scope="module")
def uploads(jpeg_files: dict[str, Path]) -> dict[tuple[str, str], bytes]:
    """Each benchmark JPEG as it is ("plain": nothing to trim), and with a 5% black border added
    ("bordered": the content box is found and hashed too)."""
    out = {}
    for name in SIZE_NAMES:
        out[(name, "plain")] = jpeg_files[name].read_bytes()
        with Image.open(jpeg_files[name]) as image:
            framed = ImageOps.expand(image.convert("RGB"), border=max(image.size) // 20, fill=(0, 0, 0))
        buffer = io.BytesIO()
        framed.save(buffer, format="JPEG", quality=90)
        out[(name, "bordered")] = buffer.getvalue()
    return out


def clear_operator_caches() -> None:
    axis_operator.cache_clear()
    region_operator.cache_clear()


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("sizes", ["repeated", "new"])
@pytest.mark.parametrize("upload", ["plain", "bordered"])
@pytest.mark.parametrize("size", SIZE_NAMES)
def test_hashes_per_upload(
    benchmark: Any, uploads: dict[tuple[str, str], bytes], size: str, upload: str, sizes: str, mode: str
) -> None:
    """`sizes`: "repeated", uploads of one size (its operators cached); "new", every upload of a size not seen
    before (the operators of the image, its box and its crops built for it: the caches are cleared first)."""
    benchmark.group = f"variants file->hashes {size} {upload} {sizes} sizes"
    hasher = MediaHasher(MODES[mode])
    data = uploads[(size, upload)]
    hasher.hash_bytes(data)  # compile and warm caches outside the timing
    if sizes == "new":
        result = benchmark.pedantic(hasher.hash_bytes, args=(data,), setup=clear_operator_caches, rounds=15)
    else:
        result = benchmark(hasher.hash_bytes, data)
    hashes = max(1, len(result.dihedral)) + len(result.variants)
    boxed = mode == "default" and upload == "bordered"
    expected = EXPECTED_HASHES[mode] + (1 if boxed else 0)
    assert hashes == expected, f"{mode}: {hashes} hashes, expected {expected}"
    assert result.pdq.quality is not None and result.pdq.quality >= 50
    assert boxed == any(v.name == "content_box" for v in result.variants)
    assert np.all([v.hash.quality is not None for v in result.variants])
    benchmark.extra_info.update(kind="variants", mode=mode, size=f"{size} {upload}, {sizes} sizes", hashes=hashes)
