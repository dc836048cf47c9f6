"""Decoding: hostile input gets a reason code, fast JPEG decoders are pixel-identical to Pillow."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashing.decode import DecodeLimits, DecodeOptions, JpegDecoder, decode_luma_jpeg, decode_rgb, read_media_file
from hashing.errors import MediaError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from kernels import optional
from kernels.optional import MissingDependencyError
from tests.conformance import ROOT, all_jpegs
from tests.images import structured_image


def png_with_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def encoded(image: np.ndarray, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **params)
    return buffer.getvalue()


JPEG = encoded(structured_image(300, 400, 1), "JPEG", quality=90)
PNG = encoded(structured_image(300, 400, 2), "PNG")

HOSTILE = {
    "empty": (b"", ReasonCode.EMPTY_INPUT),
    "random bytes": (
        np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        ReasonCode.UNSUPPORTED_FORMAT,
    ),
    "text": (b"hello, this is not an image\n" * 20, ReasonCode.UNSUPPORTED_FORMAT),
    "truncated jpeg": (JPEG[: len(JPEG) // 2], ReasonCode.UNDECODABLE),
    "jpeg header only": (JPEG[:200], ReasonCode.UNDECODABLE),
    "truncated png": (PNG[: len(PNG) // 2], ReasonCode.UNDECODABLE),
    "png declaring 100000x100000": (png_with_header(100_000, 100_000), ReasonCode.TOO_LARGE),
    "png declaring 10000x10000": (png_with_header(10_000, 10_000), ReasonCode.TOO_LARGE),  # ours, not Pillow's
    "eps (Pillow would run Ghostscript)": (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n" * 4,
        ReasonCode.UNSUPPORTED_FORMAT,
    ),
    "png declaring 0x0": (png_with_header(0, 0), ReasonCode.UNDECODABLE),
    "png declaring 0x10": (png_with_header(0, 10), ReasonCode.UNDECODABLE),
    "jpeg magic then garbage": (b"\xff\xd8\xff" + b"\x00" * 500, ReasonCode.UNDECODABLE),
}


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("decoder", list(JpegDecoder))
def test_hostile_input_gets_its_reason_code(name: str, decoder: JpegDecoder) -> None:
    data, reason = HOSTILE[name]
    with pytest.raises(MediaError) as caught:
        MediaHasher(HashOptions(decode=DecodeOptions(jpeg_decoder=decoder))).hash_bytes(data)
    assert caught.value.reason is reason


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_in_fast_luma_mode_too(name: str) -> None:
    data, reason = HOSTILE[name]
    with pytest.raises(MediaError) as caught:
        MediaHasher(HashOptions(fast_luma=True)).hash_bytes(data)
    assert caught.value.reason is reason


def test_our_pixel_limit_not_pillows_refuses_a_10000x10000_header() -> None:
    with pytest.raises(MediaError, match="over the limit of 89000000"):
        decode_rgb(png_with_header(10_000, 10_000))


def test_hostile_input_leaves_no_files_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for data, _ in HOSTILE.values():
        with pytest.raises(MediaError):
            MediaHasher().hash_bytes(data)
    MediaHasher().hash_bytes(JPEG)
    assert list(tmp_path.iterdir()) == []


def test_pixel_and_byte_limits() -> None:
    small = DecodeOptions(limits=DecodeLimits(max_pixels=300 * 400 - 1))
    for data in (JPEG, PNG):
        with pytest.raises(MediaError) as caught:
            decode_rgb(data, small)
        assert caught.value.reason is ReasonCode.TOO_LARGE
    with pytest.raises(MediaError) as caught:
        decode_rgb(JPEG, DecodeOptions(limits=DecodeLimits(max_bytes=len(JPEG) - 1)))
    assert caught.value.reason is ReasonCode.TOO_LARGE


def test_damaged_but_recoverable_jpeg_hashes_like_pillow_decodes_it() -> None:
    data = bytearray(encoded(structured_image(480, 640, 12), "JPEG", quality=90))
    data[len(data) // 2 : len(data) // 2 + 200] = bytes(200)  # zeroed entropy-coded data
    expected = np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"))
    assert np.array_equal(decode_rgb(bytes(data)), expected)


def test_device_files_and_fifos_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        with pytest.raises(MediaError) as caught:
            read_media_file(path, DecodeLimits())
        assert caught.value.reason is ReasonCode.UNREADABLE


def test_an_explicitly_requested_decoder_that_is_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(optional._cache, "simplejpeg", None)
    with pytest.raises(MissingDependencyError, match="simplejpeg"):
        decode_rgb(JPEG, DecodeOptions(jpeg_decoder=JpegDecoder.SIMPLEJPEG))
    # auto falls back to Pillow, with the same pixels
    expected = np.asarray(Image.open(io.BytesIO(JPEG)).convert("RGB"))
    assert np.array_equal(decode_rgb(JPEG), expected)


def test_negative_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        DecodeLimits(max_pixels=-1)


def test_file_errors(tmp_path: Path) -> None:
    limits = DecodeLimits(max_bytes=10)
    with pytest.raises(MediaError) as caught:
        read_media_file(tmp_path / "missing.jpg", limits)
    assert caught.value.reason is ReasonCode.NOT_FOUND
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 11)
    with pytest.raises(MediaError) as caught:
        read_media_file(big, limits)
    assert caught.value.reason is ReasonCode.TOO_LARGE
    with pytest.raises(MediaError) as caught:
        read_media_file(tmp_path, DecodeLimits())
    assert caught.value.reason is ReasonCode.UNREADABLE


def _generated_jpegs() -> dict[str, bytes]:
    colour = structured_image(333, 517, 3)
    grey = structured_image(250, 199, 4, channels=1)
    return {
        "baseline 4:2:0": encoded(colour, "JPEG", quality=85),
        "baseline 4:4:4": encoded(colour, "JPEG", quality=95, subsampling=0),
        "baseline 4:2:2": encoded(colour, "JPEG", quality=75, subsampling=1),
        "progressive": encoded(colour, "JPEG", quality=80, progressive=True),
        "greyscale": encoded(grey, "JPEG", quality=90),
        "greyscale progressive": encoded(grey, "JPEG", quality=70, progressive=True),
        "odd size": encoded(structured_image(17, 33, 5), "JPEG", quality=60),
    }


JPEG_CASES = {str(p.relative_to(ROOT)): p.read_bytes() for p in all_jpegs()} | _generated_jpegs()


@pytest.mark.parametrize("decoder", [JpegDecoder.SIMPLEJPEG, JpegDecoder.OPENCV, JpegDecoder.AUTO])
@pytest.mark.parametrize("name", list(JPEG_CASES))
def test_fast_jpeg_decoders_are_pixel_identical_to_pillow(name: str, decoder: JpegDecoder) -> None:
    data = JPEG_CASES[name]
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    got = decode_rgb(data, DecodeOptions(jpeg_decoder=decoder))
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_every_pillow_mode_decodes_to_rgb() -> None:
    images = [p for p in sorted((ROOT / "pdq/data/misc-images/modes").iterdir()) if p.suffix != ".md"]
    assert len(images) == 14
    for path in images:
        pixels = decode_rgb(path.read_bytes())
        assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8, path.name


MODE_FORMATS = {
    "1": "PNG",
    "L": "PNG",
    "LA": "PNG",
    "P": "PNG",
    "RGB": "PNG",
    "RGBA": "PNG",
    "I;16": "PNG",
    "I": "TIFF",
    "F": "TIFF",
    "CMYK": "JPEG",
    "YCbCr": "JPEG",
    "LAB": "TIFF",
}


@pytest.mark.parametrize("mode", list(MODE_FORMATS))
def test_generated_images_in_every_mode_decode_like_pillow_convert(mode: str) -> None:
    source = Image.fromarray(structured_image(40, 56, 9)).convert(mode)
    data = _save(source, MODE_FORMATS[mode])
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert Image.open(io.BytesIO(data)).mode == ("RGB" if mode == "YCbCr" else mode)  # JPEG stores YCbCr
    assert np.array_equal(decode_rgb(data), expected)


def _save(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_exif_orientation_is_ignored_unless_asked_for() -> None:
    data = (ROOT / "pdq/data/reg-test-input/exif-rotn/exif-rotn-6.jpg").read_bytes()
    raw = decode_rgb(data)
    rotated = decode_rgb(data, DecodeOptions(apply_exif_orientation=True))
    assert raw.shape[:2] == (3024, 4032)
    assert rotated.shape[:2] == (4032, 3024)


def test_animated_images_give_their_first_frame() -> None:
    frames = [Image.fromarray(structured_image(64, 80, seed)) for seed in (10, 11)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    first = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert np.array_equal(decode_rgb(buffer.getvalue()), first)


def test_fast_luma_reads_only_jpegs() -> None:
    assert decode_luma_jpeg(PNG) is None
    plane = decode_luma_jpeg(JPEG)
    assert plane is not None and plane.shape == (300, 400) and plane.dtype == np.uint8


def test_read_at_most_reads_the_stat_ed_size_and_what_a_growing_file_added_up_to_the_limit() -> None:
    import io

    from hashing.decode import read_at_most

    data = bytes(range(256)) * 20_000  # 5 MB
    assert read_at_most(io.BytesIO(data), len(data), 10_000_000) == data
    assert read_at_most(io.BytesIO(data), 1_000, 10_000_000) == data  # grew after the stat
    assert read_at_most(io.BytesIO(data), len(data) * 2, 10_000_000) == data  # shrank
    assert read_at_most(io.BytesIO(data), 1_000, 3_000_001) == data[:3_000_001]  # the limit + 1 tells "too large"
    assert read_at_most(io.BytesIO(data), len(data), 4_000) == data[:4_000]
