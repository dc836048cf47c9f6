"""Typed errors with stable reason codes, shared by every layer above (the gRPC layer maps them to statuses)."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Stable, documented codes: clients and reports key on these strings, so never rename one."""

    EMPTY_INPUT = "EMPTY_INPUT"
    UNDECODABLE = "UNDECODABLE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    TOO_LARGE = "TOO_LARGE"
    INVALID_HASH = "INVALID_HASH"
    NOT_FOUND = "NOT_FOUND"
    UNREADABLE = "UNREADABLE"
    QUALITY_TOO_LOW = "QUALITY_TOO_LOW"


class HashmatchError(Exception):
    """Base of every error hashmatch raises on bad input; `reason` is the stable code."""

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class MediaError(HashmatchError):
    """The media could not be read or decoded within the configured limits."""


class InvalidHashError(HashmatchError, ValueError):
    """A hash string or byte string is not a valid value of its type."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.INVALID_HASH, message)
