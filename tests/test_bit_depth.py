"""High bit-depth images hash like their 8-bit copies (README, "Bit depth")."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hashing.media_hasher import MediaHasher
from tests.conformance import ROOT
from tests.png import png_bytes

PHOTO = ROOT / "pdq/data/bridge-mods/aaa-orig.jpg"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _grey_photo() -> np.ndarray:
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("L").resize((400, 251)))


def test_a_16_bit_greyscale_png_hashes_as_its_8_bit_copy() -> None:
    grey = _grey_photo()
    sixteen = Image.fromarray(grey.astype(np.uint16) * 257)  # full 16-bit range, as tools write it
    sixteen_png = _png(sixteen)
    assert Image.open(io.BytesIO(sixteen_png)).mode == "I;16"
    hasher = MediaHasher()
    deep = hasher.hash_bytes(sixteen_png).pdq
    copy = hasher.hash_bytes(_png(Image.fromarray(grey))).pdq
    assert deep.quality == copy.quality == 100
    assert deep - copy == 0


def test_16_bit_samples_that_fit_in_8_bits_convert_exactly_as_the_reference_does() -> None:
    grey = _grey_photo()
    narrow = _png(Image.fromarray(grey).convert("I;16"))  # Pillow stores the 8-bit values unscaled
    hasher = MediaHasher()
    assert hasher.hash_bytes(narrow).pdq - hasher.hash_bytes(_png(Image.fromarray(grey))).pdq == 0


def test_a_16_bit_colour_png_keeps_the_high_byte_as_pillow_does() -> None:
    with Image.open(PHOTO) as image:
        rgb = np.asarray(image.convert("RGB").resize((400, 251)))
    deep = (rgb.astype(">u2") * 257).tobytes()
    height, width = rgb.shape[:2]
    png = _png(Image.fromarray(rgb))  # the 8-bit copy
    hasher = MediaHasher()
    # Pillow cannot write 48-bit PNGs: decode a hand-made one.
    assert hasher.hash_bytes(png_bytes(width, height, 2, 16, deep)).pdq - hasher.hash_bytes(png).pdq == 0
