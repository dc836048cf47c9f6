"""Exact cryptographic digests of the media bytes, as NCMEC and industry lists carry them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExactDigests:
    md5: str
    sha1: str
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> ExactDigests:
        return cls(
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(),
        )
