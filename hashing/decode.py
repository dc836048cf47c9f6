"""Bytes -> pixels, within limits, without ever touching the disk.

Exact decoding follows the reference contract: Pillow `Image.open(...).convert("RGB")` (palette, CMYK,
16-bit, float and alpha modes all go through Pillow's own conversion; alpha is dropped, not composited;
animated images give their first frame; EXIF orientation is ignored unless asked for). Baseline and
progressive YCbCr / greyscale JPEGs take a faster libjpeg-turbo decoder (simplejpeg, else OpenCV) that the
conformance tests hold pixel-identical to Pillow; everything else goes through Pillow.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hashing.errors import MediaError, ReasonCode
from kernels.optional import optional_module

_JPEG_MAGIC = b"\xff\xd8\xff"
_FAST_JPEG_COLORSPACES = frozenset({"YCbCr", "Gray"})
# Signatures of formats Pillow reads: a file that starts like one but will not open is damaged (UNDECODABLE),
# not of an unknown format.
_KNOWN_SIGNATURES = (
    _JPEG_MAGIC,
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)

# We enforce our own pixel limit before Pillow allocates anything (DecodeLimits.max_pixels); Pillow's
# process-wide warning would only duplicate it, so silence that one category.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class JpegDecoder(StrEnum):
    AUTO = "auto"  # simplejpeg, else OpenCV, else Pillow
    PILLOW = "pillow"
    SIMPLEJPEG = "simplejpeg"
    OPENCV = "opencv"


@dataclass(frozen=True)
class DecodeLimits:
    """Refuse media over these sizes with TOO_LARGE. Defaults suit camera photos up to ~90 MP."""

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 90_000_000


@dataclass(frozen=True)
class DecodeOptions:
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    apply_exif_orientation: bool = False
    jpeg_decoder: JpegDecoder = JpegDecoder.AUTO


def read_media_file(path: str | os.PathLike[str], limits: DecodeLimits) -> bytes:
    """Read a file whole, refusing one over the byte limit before reading it."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError as exc:
        raise MediaError(ReasonCode.NOT_FOUND, f"no such file: {path}") from exc
    except OSError as exc:
        raise MediaError(ReasonCode.UNREADABLE, f"cannot stat {path}: {exc.strerror or exc}") from exc
    if size > limits.max_bytes:
        raise MediaError(ReasonCode.TOO_LARGE, f"{size} bytes is over the limit of {limits.max_bytes}")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise MediaError(ReasonCode.UNREADABLE, f"cannot read {path}: {exc.strerror or exc}") from exc


def decode_rgb(data: bytes, options: DecodeOptions = DecodeOptions()) -> np.ndarray:
    """Decode to an H x W x 3 uint8 RGB array exactly as Pillow's convert("RGB") gives it."""
    _check_bytes(data, options.limits)
    if data.startswith(_JPEG_MAGIC) and not options.apply_exif_orientation:
        pixels = _decode_jpeg_fast(data, options)
        if pixels is not None:
            return pixels
    return _decode_with_pillow(data, options)


def decode_luma_jpeg(data: bytes, options: DecodeOptions = DecodeOptions()) -> np.ndarray | None:
    """The JPEG's own Y plane (H x W uint8) via OpenCV, or None when the input is no YCbCr/grey JPEG.

    Faster than decoding RGB, but libjpeg's Y is rounded to integers: hashes drift a bit or two from the
    exact path. Only the opt-in fast mode uses it.
    """
    _check_bytes(data, options.limits)
    cv2 = optional_module("cv2")
    if cv2 is None or not data.startswith(_JPEG_MAGIC) or options.apply_exif_orientation:
        return None
    header = _jpeg_header(data, options.limits)
    if header is None:
        return None
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION
    plane = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if plane is None:
        raise MediaError(ReasonCode.UNDECODABLE, "corrupt or truncated JPEG")
    return plane  # type: ignore[no-any-return]


def _check_bytes(data: bytes, limits: DecodeLimits) -> None:
    if not data:
        raise MediaError(ReasonCode.EMPTY_INPUT, "no bytes to decode")
    if len(data) > limits.max_bytes:
        raise MediaError(ReasonCode.TOO_LARGE, f"{len(data)} bytes is over the limit of {limits.max_bytes}")


def _check_pixels(width: int, height: int, limits: DecodeLimits) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(ReasonCode.UNDECODABLE, f"image declares an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise MediaError(ReasonCode.TOO_LARGE, f"{width}x{height} pixels is over the limit of {limits.max_pixels}")


def _jpeg_header(data: bytes, limits: DecodeLimits) -> tuple[int, int, str] | None:
    """(height, width, colorspace) for a JPEG the fast decoders handle, None for others (e.g. CMYK)."""
    simplejpeg = optional_module("simplejpeg")
    if simplejpeg is not None:
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            return None  # let Pillow decide and name the error
        _check_pixels(width, height, limits)
        return (height, width, colorspace) if colorspace in _FAST_JPEG_COLORSPACES else None
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
            _check_pixels(image.width, image.height, limits)
            return (image.height, image.width, "YCbCr") if image.mode in ("RGB", "L") else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _decode_jpeg_fast(data: bytes, options: DecodeOptions) -> np.ndarray | None:
    choice = options.jpeg_decoder
    if choice is JpegDecoder.PILLOW:
        return None
    header = _jpeg_header(data, options.limits)
    if header is None:
        return None
    simplejpeg = optional_module("simplejpeg")
    if simplejpeg is not None and choice in (JpegDecoder.AUTO, JpegDecoder.SIMPLEJPEG):
        try:
            pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False)
        except ValueError as exc:
            raise MediaError(ReasonCode.UNDECODABLE, f"corrupt or truncated JPEG: {exc}") from exc
        return pixels  # type: ignore[no-any-return]
    cv2 = optional_module("cv2")
    if cv2 is not None and choice in (JpegDecoder.AUTO, JpegDecoder.OPENCV):
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        if bgr is None:
            raise MediaError(ReasonCode.UNDECODABLE, "corrupt or truncated JPEG")
        return np.ascontiguousarray(bgr[..., ::-1])
    return None


def _decode_with_pillow(data: bytes, options: DecodeOptions) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(image.width, image.height, options.limits)
            frame = ImageOps.exif_transpose(image) if options.apply_exif_orientation else image
            return np.asarray(frame.convert("RGB"))
    except MediaError:
        raise
    except UnidentifiedImageError as exc:
        if _has_known_signature(data):
            raise MediaError(ReasonCode.UNDECODABLE, "damaged image: its header cannot be parsed") from exc
        raise MediaError(ReasonCode.UNSUPPORTED_FORMAT, "not an image format this build can read") from exc
    except Image.DecompressionBombError as exc:
        raise MediaError(ReasonCode.TOO_LARGE, str(exc)) from exc
    except MemoryError as exc:
        raise MediaError(ReasonCode.TOO_LARGE, "image needs more memory than is available") from exc
    except Exception as exc:  # hostile input reaches odd corners of Pillow's plugins; none may escape
        raise MediaError(ReasonCode.UNDECODABLE, f"corrupt or truncated image: {exc}") from exc


def _has_known_signature(data: bytes) -> bool:
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return is_webp or data.startswith(_KNOWN_SIGNATURES)
