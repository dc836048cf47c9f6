"""The signal-type registry: which types exist, the names import formats give them, and how a hash text
becomes a validated value. Everything else in the engine reaches a type's behaviour through `spec_of`.

Adding a type: its name in `engine/signal_types/names.py`, its module in `engine/signal_types/`, and its spec
in `SPECS` below. The matcher, the store and the importers need no change.
"""

from __future__ import annotations

from engine.signal_types.exact import MD5, SHA1, SHA256
from engine.signal_types.names import SignalType
from engine.signal_types.pdq import PDQ
from engine.signal_types.spec import SignalSpec
from engine.signal_types.values import ParsedValue, SignalValueError
from engine.signal_types.vpdq import VPDQ
from hashing.errors import ReasonCode

SPECS: dict[SignalType, SignalSpec] = {spec.signal: spec for spec in (PDQ, MD5, SHA1, SHA256, VPDQ)}
# What a list holds when its creator names no types: the image and file types. A video list says `vpdq`.
DEFAULT_LIST_TYPES = frozenset({SignalType.PDQ, SignalType.MD5, SignalType.SHA1, SignalType.SHA256})
_ALIASES = {alias: spec.signal for spec in SPECS.values() for alias in spec.aliases}
_BY_HEX_LENGTH = {32: SignalType.MD5, 40: SignalType.SHA1}

__all__ = [
    "DEFAULT_LIST_TYPES",
    "SPECS",
    "ParsedValue",
    "SignalSpec",
    "SignalType",
    "SignalValueError",
    "infer_signal_type",
    "parse_signal",
    "parse_value",
    "signal_type_named",
    "spec_of",
]


def spec_of(signal: SignalType) -> SignalSpec:
    return SPECS[signal]


def signal_type_named(name: str) -> SignalType:
    signal = _ALIASES.get(name.strip().lower())
    if signal is None:
        raise SignalValueError(ReasonCode.UNKNOWN_TYPE, f"unknown signal type {name.strip()!r}")
    return signal


def infer_signal_type(text: str, default_for_64_hex: SignalType = SignalType.PDQ) -> SignalType:
    """By length alone: 32 hex digits are MD5, 40 SHA-1; 64 are PDQ unless the list says SHA-256. Other
    types are never guessed: their lines name them."""
    length = len(text.strip())
    if length == 64:
        return default_for_64_hex
    inferred = _BY_HEX_LENGTH.get(length)
    if inferred is None:
        raise SignalValueError(ReasonCode.BAD_LENGTH, f"{length} characters matches no signal type")
    return inferred


def parse_value(signal: SignalType, text: str) -> ParsedValue:
    """The validated value of a hash text of the given type."""
    return SPECS[signal].parse(text)


def parse_signal(signal: SignalType, text: str) -> bytes:
    """Validated bytes of a hash text: what identifies the entry (see `parse_value` for a payload)."""
    return SPECS[signal].parse(text).value
