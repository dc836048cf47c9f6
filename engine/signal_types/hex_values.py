"""Fixed-length hex text -> bytes, with the reason codes list files report. Called once per list line."""

from __future__ import annotations

from engine.signal_types.names import SignalType
from engine.signal_types.values import SignalValueError
from hashing.errors import ReasonCode


def parse_hex(signal: SignalType, text: str, width: int) -> bytes:
    """Validated bytes of a hash written in hex (either case)."""
    value = text.strip()
    expected = 2 * width
    if len(value) != expected:
        raise SignalValueError(ReasonCode.BAD_LENGTH, f"{signal} needs {expected} hex digits, got {len(value)}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != width:  # fromhex also skips spaces: "ab cd" must not pass
        raise SignalValueError(ReasonCode.NOT_HEX, f"{signal} contains characters other than 0-9, a-f")
    return raw
