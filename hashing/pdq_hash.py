"""The PDQ hash value: parse, print, compare. Printable and subtractable like imagehash's objects.

Bit `16i + j` is DCT coefficient (i, j). The reference prints sixteen 16-bit words, word 15 first, where word
i holds row i with column j in bit j; the 32-byte form is exactly the bytes of that hex string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hashing.errors import InvalidHashError

_HEX_DIGITS = frozenset("0123456789abcdef")
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class PdqHash:
    """A 256-bit PDQ hash; `quality` (0-100) travels with it but is not part of its identity."""

    digest: bytes
    quality: int | None = field(default=None, compare=False)

    HEX_LENGTH: ClassVar[int] = 64

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise InvalidHashError("a PDQ digest is exactly 32 bytes")
        if self.quality is not None and not 0 <= self.quality <= 100:
            raise InvalidHashError(f"PDQ quality must be within 0..100, got {self.quality}")

    @classmethod
    def from_hex(cls, text: str, quality: int | None = None) -> PdqHash:
        """Parse 64 hex digits, either case, surrounding whitespace ignored."""
        value = text.strip().lower()
        if len(value) != cls.HEX_LENGTH:
            raise InvalidHashError(f"a PDQ hash is 64 hex digits, got {len(value)} characters")
        if not _HEX_DIGITS.issuperset(value):
            raise InvalidHashError("a PDQ hash contains only hex digits 0-9, a-f")
        return cls(bytes.fromhex(value), quality)

    @classmethod
    def from_bits(cls, bits: np.ndarray, quality: int | None = None) -> PdqHash:
        """From a (16, 16) or (256,) boolean array indexed [i, j] / [16i + j]."""
        return cls(pack_bits(np.asarray(bits).reshape(1, 16, 16))[0].tobytes(), quality)

    def hex(self) -> str:
        return self.digest.hex()

    def bits(self) -> np.ndarray:
        """(16, 16) bool, [i, j] = bit 16i + j."""
        bits: np.ndarray = unpack_bits(np.frombuffer(self.digest, dtype=np.uint8).reshape(1, 32))[0]
        return bits

    def distance(self, other: PdqHash) -> int:
        """Hamming distance in bits."""
        a = np.frombuffer(self.digest, dtype=np.uint8)
        b = np.frombuffer(other.digest, dtype=np.uint8)
        return int(_POPCOUNT[a ^ b].sum())

    def __sub__(self, other: PdqHash) -> int:
        return self.distance(other)

    def is_zero(self) -> bool:
        """The all-zero hash: what images under 5 px on a side get, and never a useful list entry."""
        return not any(self.digest)

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"PdqHash('{self.hex()}', quality={self.quality})"


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, 16, 16) bool -> (n, 32) uint8 in the reference's print order (word 15 first, bit 15 first)."""
    flat = np.asarray(bits, dtype=bool)[:, ::-1, ::-1].reshape(bits.shape[0], 256)
    return np.packbits(flat, axis=1)


def unpack_bits(packed: np.ndarray) -> np.ndarray:
    """Inverse of pack_bits: (n, 32) uint8 -> (n, 16, 16) bool."""
    flat = np.unpackbits(packed, axis=1).astype(bool)
    return flat.reshape(packed.shape[0], 16, 16)[:, ::-1, ::-1]
