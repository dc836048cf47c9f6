"""Bytes -> pixels, within limits, without ever touching the disk.

Exact decoding follows the reference contract: Pillow `Image.open(...).convert("RGB")` (palette, CMYK,
16-bit, float and alpha modes all go through Pillow's own conversion; alpha is dropped, not composited;
animated images give their first frame; EXIF orientation is ignored unless asked for). YCbCr and greyscale
JPEGs take simplejpeg (libjpeg-turbo), which the conformance tests hold pixel-identical to Pillow; it runs in
strict mode, so any JPEG it would have to repair goes to Pillow instead, and Pillow decides every error.

Pillow only opens the formats in `ALLOWED_FORMATS`: some of its other plugins shell out to external
programs or write temporary files (EPS runs Ghostscript), which hostile uploads must never reach.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hashing.errors import MediaError, ReasonCode
from kernels.optional import optional_module, require_module

_JPEG_MAGIC = b"\xff\xd8\xff"
_FAST_JPEG_COLORSPACES = frozenset({"YCbCr", "Gray"})
_WANTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM", "TGA", "ICO", "AVIF")
Image.init()
ALLOWED_FORMATS: tuple[str, ...] = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)
# Signatures of the allowed formats: a file that starts like one but will not open is damaged
# (UNDECODABLE), not of an unknown format.
# The most bytes a pixel costs while decoding, all copies alive at once included, by decoder (measured on
# 9 to 88 MP images, and held by tests/test_decode_memory.py): simplejpeg writes RGB straight into the
# array; the Pillow paths hold Pillow's own image (up to 4 bytes a pixel, RGB kept as RGBX) beside a
# converted one and the output array; libwebp and libavif hand Pillow a decoded copy of their own first.
DECODE_BYTES_PER_PIXEL = 8
BYTES_PER_PIXEL_BY_FORMAT = {"WEBP": 18, "AVIF": 12}
FAST_JPEG_BYTES_PER_PIXEL = 3
DECODE_OVERHEAD_BYTES = 8 << 20  # decoder state, the PDQ kernel's scratch lines
STRIP_ROWS = 256
STRIP_BYTES_PER_COLUMN = 2 * STRIP_ROWS * 4  # a strip (RGBX) and its bytes while it is copied out
# Pillow's modes for 16-bit greyscale samples (PNG, TIFF, PGM), in any byte order.
_SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_KNOWN_SIGNATURES = (_JPEG_MAGIC, b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


# DecodeLimits.max_pixels is checked from the header before any pixel is allocated; Pillow's own warning
# (between 1x and 2x its MAX_IMAGE_PIXELS) would only repeat that check into the logs. This one category is
# silenced for the process; Pillow's hard refusal above 2x still applies and maps to TOO_LARGE.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class JpegDecoder(StrEnum):
    AUTO = "auto"  # simplejpeg when installed, else Pillow
    PILLOW = "pillow"
    SIMPLEJPEG = "simplejpeg"
    # Pixel-identical on intact JPEGs, but OpenCV repairs damaged ones silently where Pillow refuses them:
    # only used when asked for.
    OPENCV = "opencv"


@dataclass(frozen=True)
class DecodeLimits:
    """Refuse media over these sizes with TOO_LARGE.

    Pillow applies its own decompression-bomb limit too (it refuses over twice `PIL.Image.MAX_IMAGE_PIXELS`,
    about 179 MP), so raising `max_pixels` past that has no effect unless Pillow's is raised as well.
    """

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 89_000_000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError("decode limits must be positive")


@dataclass(frozen=True)
class DecodeOptions:
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    apply_exif_orientation: bool = False
    jpeg_decoder: JpegDecoder = JpegDecoder.AUTO


@contextmanager
def open_media_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A regular file opened for reading; MediaError NOT_FOUND / UNREADABLE otherwise (devices, FIFOs, sockets
    and directories are refused before a byte is read). Read errors inside the block become UNREADABLE."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it changes nothing for regular files.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise MediaError(ReasonCode.UNREADABLE, f"not a regular file: {path}")
            yield handle
    except FileNotFoundError as exc:
        raise MediaError(ReasonCode.NOT_FOUND, f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise MediaError(ReasonCode.UNREADABLE, f"a directory, not a file: {path}") from exc
    except OSError as exc:
        raise MediaError(ReasonCode.UNREADABLE, f"cannot read {path}: {exc.strerror or 'I/O error'}") from exc


def read_media_file(path: str | os.PathLike[str], limits: DecodeLimits) -> bytes:
    """Read a regular file whole, never more than the byte limit (devices, FIFOs and growing files too)."""
    with open_media_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limits.max_bytes:
            raise MediaError(ReasonCode.TOO_LARGE, f"{size} bytes is over the limit of {limits.max_bytes}")
        data = read_at_most(handle, size, limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise MediaError(ReasonCode.TOO_LARGE, f"more than {limits.max_bytes} bytes (the file grew while read)")
    return data


def read_at_most(handle: BinaryIO, expected: int, limit: int) -> bytes:
    """Up to `limit` bytes of a file whose size was `expected` when stat-ed. Asking for `limit` at once would
    have Python allocate all of it first (256 MiB by default; measured: 0.66 ms per 3 MB JPEG against 0.09
    ms), so the stat-ed size is read, and more only for a file that grew meanwhile (or a FIFO's 0)."""
    data = handle.read(min(expected, limit - 1) + 1)
    while len(data) < limit:
        more = handle.read(min(1 << 20, limit - len(data)))
        if not more:
            break
        data += more
    return data


def decode_rgb(data: bytes, options: DecodeOptions = DecodeOptions()) -> np.ndarray:
    """Decode to an H x W x 3 uint8 RGB array exactly as Pillow's convert("RGB") gives it."""
    _check_bytes(data, options.limits)
    if data.startswith(_JPEG_MAGIC) and not options.apply_exif_orientation:
        pixels = _decode_jpeg_fast(data, options)
        if pixels is not None:
            return pixels
    return _decode_with_pillow(data, options)


def decode_cost(data: bytes, options: DecodeOptions = DecodeOptions()) -> int:
    """Bytes of memory that decoding `data` will take at its peak, estimated from the header alone (no pixel
    is decoded). What cannot be parsed costs only the overhead: its decode fails before allocating pixels."""
    if data.startswith(_JPEG_MAGIC) and not options.apply_exif_orientation:
        try:
            if _is_fast_jpeg(data, options.limits):
                width, height = _jpeg_size(data)
                return width * height * FAST_JPEG_BYTES_PER_PIXEL + DECODE_OVERHEAD_BYTES
        except MediaError:
            return DECODE_OVERHEAD_BYTES  # over the pixel limit: refused before decoding
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            _check_pixels(image.width, image.height, options.limits)
            per_pixel = BYTES_PER_PIXEL_BY_FORMAT.get(image.format or "", DECODE_BYTES_PER_PIXEL)
            strips = image.width * STRIP_BYTES_PER_COLUMN
            return image.width * image.height * per_pixel + strips + DECODE_OVERHEAD_BYTES
    except Exception:  # not an image we read, or over the pixel limit: refused at the header, without pixels
        return DECODE_OVERHEAD_BYTES


def _jpeg_size(data: bytes) -> tuple[int, int]:
    simplejpeg = optional_module("simplejpeg")
    if simplejpeg is not None:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        return int(width), int(height)
    with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
        return image.width, image.height


def decode_luma_jpeg(data: bytes, options: DecodeOptions = DecodeOptions()) -> np.ndarray | None:
    """The JPEG's own Y plane (H x W uint8) via OpenCV, or None when the input is no YCbCr/grey JPEG.

    Faster than decoding RGB, but libjpeg's Y is rounded to integers: hashes drift a bit or two from the
    exact path. Only the opt-in fast mode uses it.
    """
    _check_bytes(data, options.limits)
    cv2 = optional_module("cv2")
    if cv2 is None or options.apply_exif_orientation or not _is_fast_jpeg(data, options.limits):
        return None
    return _opencv_decode(cv2, data, cv2.IMREAD_GRAYSCALE)


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


def _is_fast_jpeg(data: bytes, limits: DecodeLimits) -> bool:
    """A JPEG within the limits whose colour space the fast decoders handle (not CMYK/YCCK)."""
    if not data.startswith(_JPEG_MAGIC):
        return False
    simplejpeg = optional_module("simplejpeg")
    if simplejpeg is not None:
        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            return False  # Pillow decides and names the error
        _check_pixels(width, height, limits)
        return colorspace in _FAST_JPEG_COLORSPACES
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
            _check_pixels(image.width, image.height, limits)
            return image.mode in ("RGB", "L")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def _decode_jpeg_fast(data: bytes, options: DecodeOptions) -> np.ndarray | None:
    """Pixels from a fast decoder, or None to let Pillow decode (and judge) the JPEG."""
    choice = options.jpeg_decoder
    if choice is JpegDecoder.PILLOW or not _is_fast_jpeg(data, options.limits):
        return None
    if choice is JpegDecoder.OPENCV:
        cv2 = require_module("cv2", "the OpenCV JPEG decoder")
        bgr = _opencv_decode(cv2, data, cv2.IMREAD_COLOR)
        return np.ascontiguousarray(bgr[..., ::-1])
    if choice is JpegDecoder.SIMPLEJPEG:
        simplejpeg: ModuleType | None = require_module("simplejpeg", "the simplejpeg JPEG decoder")
    else:
        simplejpeg = optional_module("simplejpeg")
    if simplejpeg is None:
        return None
    try:
        pixels: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False)
    except ValueError:
        return None  # strict mode refused a damaged JPEG: Pillow repairs what it can and refuses the rest
    return pixels


def _opencv_decode(cv2: object, data: bytes, flags: int) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)  # type: ignore[attr-defined]
    if pixels is None:
        raise MediaError(ReasonCode.UNDECODABLE, "corrupt or truncated JPEG")
    return pixels  # type: ignore[no-any-return]


def _decode_with_pillow(data: bytes, options: DecodeOptions) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            _check_pixels(image.width, image.height, options.limits)
            if options.apply_exif_orientation:
                return _to_rgb_array(ImageOps.exif_transpose(image))
            return _to_rgb_array(image)
    except MediaError:
        raise
    except UnidentifiedImageError as exc:
        if _has_known_signature(data):
            raise MediaError(ReasonCode.UNDECODABLE, "damaged image: its header cannot be parsed") from exc
        raise MediaError(ReasonCode.UNSUPPORTED_FORMAT, "not an image format hashmatch reads") from exc
    except Image.DecompressionBombError as exc:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise MediaError(ReasonCode.TOO_LARGE, f"over Pillow's decompression-bomb limit of {limit:,} pixels") from exc
    except MemoryError as exc:
        raise MediaError(ReasonCode.TOO_LARGE, "image needs more memory than is available") from exc
    except Exception as exc:  # hostile input reaches odd corners of Pillow's plugins; none may escape
        raise MediaError(ReasonCode.UNDECODABLE, "corrupt or truncated image") from exc


def _to_rgb_array(frame: Image.Image) -> np.ndarray:
    """The pixels exactly as convert("RGB") gives them, with as few full-size copies alive at once as
    possible (their peak is what DECODE_BYTES_PER_PIXEL charges): Pillow keeps RGB as 4 bytes a pixel and its
    tobytes() holds two copies at its end, so the array is filled strip by strip from the decoded image, and
    each image is closed as soon as the next one exists."""
    if frame.mode in _SIXTEEN_BIT_GREY:
        return _sixteen_bit_grey_to_rgb(frame)
    if frame.mode not in ("RGB", "L"):
        converted = frame.convert("RGB")
        frame.close()
        frame = converted
    height, width = frame.height, frame.width
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        with frame.crop((0, top, width, bottom)) as strip:
            rows = np.frombuffer(strip.tobytes(), dtype=np.uint8)
        if frame.mode == "L":  # convert("RGB") copies the grey value into each channel
            pixels[top:bottom] = rows.reshape(bottom - top, width, 1)
        else:
            pixels[top:bottom] = rows.reshape(bottom - top, width, 3)
    frame.close()
    return pixels


def _sixteen_bit_grey_to_rgb(frame: Image.Image) -> np.ndarray:
    """16-bit greyscale to 8-bit RGB.

    Pillow's convert("RGB") (what the reference implementations call) clips these samples at 255. That is
    right for images whose samples are 8-bit values stored in 16 bits (Pillow's own convert("I;16") writes
    those) and ruinous for real 16-bit images, which it turns white (quality near 0: they can never match).
    So: samples all <= 255 convert exactly as the reference does; otherwise each sample keeps its high
    byte, as Pillow already does for 16-bit colour PNGs and as tools do when they save an 8-bit copy
    (README, "Bit depth").
    """
    samples = np.asarray(frame)
    if int(samples.max(initial=0)) <= 255:
        return np.asarray(frame.convert("RGB"))
    frame.close()
    grey = (samples >> 8).astype(np.uint8)
    del samples
    return np.repeat(grey[:, :, None], 3, axis=2)


def _has_known_signature(data: bytes) -> bool:
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return is_webp or data.startswith(_KNOWN_SIGNATURES)
