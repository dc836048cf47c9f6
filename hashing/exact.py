"""Exact cryptographic digests of the media bytes, as NCMEC and industry lists carry them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

STREAM_CHUNK = 1 << 20  # hashlib releases the GIL on buffers this large


@dataclass(frozen=True, slots=True)
class ExactDigests:
    md5: str
    sha1: str
    sha256: str
    size: int = 0  # bytes digested

    @classmethod
    def of(cls, data: bytes) -> ExactDigests:
        return cls(
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    @classmethod
    def of_stream(cls, stream: BinaryIO, first: bytes = b"") -> ExactDigests:
        """Digests of `first` followed by the rest of `stream`, read in 1 MiB chunks (bounded memory)."""
        md5 = hashlib.md5(first, usedforsecurity=False)
        sha1 = hashlib.sha1(first, usedforsecurity=False)
        sha256 = hashlib.sha256(first)
        size = len(first)
        while chunk := stream.read(STREAM_CHUNK):
            for digest in (md5, sha1, sha256):
                digest.update(chunk)
            size += len(chunk)
        return cls(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest(), size)
