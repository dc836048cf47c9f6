"""A signal type's parsed value, and the error its parsing raises: shared by queries, lists and the store."""

from __future__ import annotations

from dataclasses import dataclass

from hashing.errors import HashmatchError


class SignalValueError(HashmatchError, ValueError):
    """A list line's or a query's hash text is not a valid value of its type; `reason` says how."""


@dataclass(frozen=True, slots=True)
class ParsedValue:
    value: bytes  # `value_width` bytes: what identifies the entry (the hash, or a digest of a variable value)
    payload: bytes | None = None  # the whole value where it has no fixed size (a video's frame hashes)
