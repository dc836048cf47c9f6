"""Signal types a list can hold, and how a list line's hash text becomes validated bytes."""

from __future__ import annotations

from enum import StrEnum

from hashing.errors import HashmatchError, ReasonCode


class SignalType(StrEnum):
    PDQ = "pdq"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"

    @property
    def byte_length(self) -> int:
        return _BYTE_LENGTHS[self]


_BYTE_LENGTHS = {SignalType.PDQ: 32, SignalType.MD5: 16, SignalType.SHA1: 20, SignalType.SHA256: 32}
_HEX_LENGTHS = {signal: 2 * length for signal, length in _BYTE_LENGTHS.items()}
_BY_HEX_LENGTH = {32: SignalType.MD5, 40: SignalType.SHA1}
_ZERO_PDQ = bytes(32)

# Names the import formats use for the same signal types.
_ALIASES = {
    "pdq": SignalType.PDQ,
    "imagepdq": SignalType.PDQ,
    "photo_pdq": SignalType.PDQ,
    "pdq_hash": SignalType.PDQ,
    "md5": SignalType.MD5,
    "videomd5": SignalType.MD5,
    "imagemd5": SignalType.MD5,
    "photo_md5": SignalType.MD5,
    "video_md5": SignalType.MD5,
    "sha1": SignalType.SHA1,
    "sha-1": SignalType.SHA1,
    "sha256": SignalType.SHA256,
    "sha-256": SignalType.SHA256,
}


class SignalValueError(HashmatchError, ValueError):
    """A list line's or a query's hash text is not a valid value of its type; `reason` says how."""


def signal_type_named(name: str) -> SignalType:
    signal = _ALIASES.get(name.strip().lower())
    if signal is None:
        raise SignalValueError(ReasonCode.UNKNOWN_TYPE, f"unknown signal type {name.strip()!r}")
    return signal


def infer_signal_type(text: str, default_for_64_hex: SignalType = SignalType.PDQ) -> SignalType:
    """By length alone: 32 hex digits are MD5, 40 SHA-1; 64 are PDQ unless the list says SHA-256."""
    length = len(text.strip())
    if length == 64:
        return default_for_64_hex
    inferred = _BY_HEX_LENGTH.get(length)
    if inferred is None:
        raise SignalValueError(ReasonCode.BAD_LENGTH, f"{length} characters matches no signal type")
    return inferred


def parse_signal(signal: SignalType, text: str) -> bytes:
    """Validated bytes of a hash written in hex (either case). Called once per list line: kept lean."""
    value = text.strip()
    expected = _HEX_LENGTHS[signal]
    if len(value) != expected:
        raise SignalValueError(ReasonCode.BAD_LENGTH, f"{signal} needs {expected} hex digits, got {len(value)}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) * 2 != expected:  # fromhex also skips spaces: "ab cd" must not pass
        raise SignalValueError(ReasonCode.NOT_HEX, f"{signal} contains characters other than 0-9, a-f")
    if raw == _ZERO_PDQ and signal is SignalType.PDQ:
        raise SignalValueError(ReasonCode.ZERO_PDQ, "the all-zero PDQ hash (images under 5 px) matches nothing")
    return raw
