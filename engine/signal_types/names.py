"""The names of the signal types, as lists, files and the store spell them. Part of the registry: a new type
adds its name here and its spec to `engine.signals.SPECS`."""

from __future__ import annotations

from enum import StrEnum


class SignalType(StrEnum):
    PDQ = "pdq"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    VPDQ = "vpdq"

    @property
    def byte_length(self) -> int:
        """Bytes of the value the store keeps per entry (fixed per type)."""
        from engine.signals import spec_of

        return spec_of(self).value_width
