"""Minimal PNG writer for bit depths and layouts Pillow cannot save (48-bit RGB, 16-bit grey with alpha)."""

from __future__ import annotations

import struct
import zlib

# PNG colour types: 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA.
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def png_bytes(width: int, height: int, colour_type: int, bit_depth: int, samples: bytes) -> bytes:
    """A valid PNG of big-endian `samples`, row by row, with filter 0 on every row."""
    row = width * _CHANNELS[colour_type] * bit_depth // 8
    assert len(samples) == row * height
    raw = b"".join(b"\x00" + samples[y * row : (y + 1) * row] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
