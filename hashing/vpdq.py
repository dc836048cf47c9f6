"""The vPDQ video hash (Meta's open video standard): one PDQ hash per sampled frame, with its quality and
time, matched as a bag of frame hashes. Parse, print and compare, in the reference's text forms.

Two text forms exist upstream, and both are read and written here:
* the hasher's output file, one line per frame: `frameNumber,quality,pdqHex,timestamp` (3 decimals);
* python-threatexchange's signal string (what HMA and list exchanges carry): a JSON list of
  `"pdqHex,quality,timestamp"` strings, without frame numbers (frames are then numbered by position).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hashing.errors import ReasonCode
from hashing.pdq_hash import PdqHash

TIMESTAMP_DECIMALS = 3
MAX_FRAMES = 1_000_000  # frame hashes per video in one value: ~11 h at 25 fps hashed every frame

# The canonical binary form (what the store keeps and what identifies a video hash): per frame, its number,
# its quality, its 32 PDQ bytes and its time in milliseconds, little-endian.
FRAME_DTYPE = np.dtype([("frame", "<i4"), ("quality", "u1"), ("pdq", "u1", (32,)), ("millis", "<i8")])


class VpdqFormatError(ValueError):
    """Text or bytes that are not a vPDQ hash; `reason` is BAD_LENGTH, NOT_HEX or MALFORMED."""

    def __init__(self, reason: ReasonCode, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VpdqFeature:
    frame_number: int
    pdq: PdqHash  # carries the frame's quality
    timestamp: float  # seconds from the start

    @property
    def quality(self) -> int:
        return self.pdq.quality or 0

    def line(self) -> str:
        """The reference hasher's output line."""
        return f"{self.frame_number},{self.quality},{self.pdq.hex()},{self.timestamp:.{TIMESTAMP_DECIMALS}f}"


@dataclass(frozen=True, slots=True)
class VpdqHash:
    """A video's frame hashes, in frame order. `a - b` is not defined: videos match by percentages
    (engine/signal_types/vpdq.py), not by one distance."""

    features: tuple[VpdqFeature, ...]

    def __len__(self) -> int:
        return len(self.features)

    def lines(self) -> list[str]:
        return [feature.line() for feature in self.features]

    def to_text(self) -> str:
        """The hasher's lines joined by ';' on one line: what a list field carries without losing frame
        numbers (`parse` reads it back)."""
        return ";".join(self.lines())

    def to_json(self) -> str:
        """python-threatexchange's signal string (frame numbers are not part of it)."""
        return json.dumps(
            [f"{f.pdq.hex()},{f.quality},{f.timestamp:.{TIMESTAMP_DECIMALS}f}" for f in self.features],
            separators=(",", ":"),
        )

    def to_bytes(self) -> bytes:
        rows = np.zeros(len(self.features), dtype=FRAME_DTYPE)
        for i, feature in enumerate(self.features):
            rows[i] = (
                feature.frame_number,
                feature.quality,
                np.frombuffer(feature.pdq.digest, np.uint8),
                round(feature.timestamp * 1000),
            )
        return rows.tobytes()

    def identity(self) -> bytes:
        """SHA-256 of the canonical bytes: two files of the same frame hashes are the same list entry."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> VpdqHash:
        if len(data) % FRAME_DTYPE.itemsize:
            raise VpdqFormatError(ReasonCode.BAD_LENGTH, "not a whole number of vPDQ frame records")
        rows = np.frombuffer(data, dtype=FRAME_DTYPE)
        return cls(
            tuple(
                VpdqFeature(int(r["frame"]), PdqHash(r["pdq"].tobytes(), int(r["quality"])), int(r["millis"]) / 1000)
                for r in rows
            )
        )

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> VpdqHash:
        """The hasher's output file: `frameNumber,quality,pdqHex,timestamp` per line; blank lines skipped."""
        features: list[VpdqFeature] = []
        for number, raw in enumerate(lines, start=1):
            text = raw.strip()
            if not text:
                continue
            parts = text.split(",")
            if len(parts) != 4:
                detail = f"line {number}: expected frameNumber,quality,pdqHex,timestamp"
                raise VpdqFormatError(ReasonCode.MALFORMED, detail)
            frame, quality, hex_text, timestamp = parts
            features.append(_feature(_int(frame, number), quality, hex_text, timestamp, number))
        return cls(_checked(features))

    @classmethod
    def from_json(cls, text: str) -> VpdqHash:
        """python-threatexchange's signal string; frames are numbered by position."""
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise VpdqFormatError(ReasonCode.MALFORMED, "a vPDQ signal string is a JSON list") from exc
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise VpdqFormatError(ReasonCode.MALFORMED, 'a vPDQ signal string is a JSON list of "pdqHex,quality,time"')
        features: list[VpdqFeature] = []
        for number, item in enumerate(items):
            parts = item.split(",")
            if len(parts) != 3:
                raise VpdqFormatError(ReasonCode.MALFORMED, f"frame {number}: expected pdqHex,quality,timestamp")
            hex_text, quality, timestamp = parts
            features.append(_feature(number, quality, hex_text, timestamp, number))
        return cls(_checked(features))

    @classmethod
    def parse(cls, text: str) -> VpdqHash:
        """Either text form: a JSON list, or hasher lines (separated by newlines or by ';' in one field)."""
        value = text.strip()
        if value.startswith("["):
            return cls.from_json(value)
        return cls.from_lines(value.replace(";", "\n").splitlines())


def _int(text: str, number: int) -> int:
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise VpdqFormatError(ReasonCode.MALFORMED, f"frame {number}: {text.strip()!r} is not a whole number") from exc
    if not 0 <= value < 2**31:  # the canonical form keeps 32 bits
        raise VpdqFormatError(ReasonCode.MALFORMED, f"frame {number}: {value} is out of range")
    return value


def _feature(frame: int, quality: str, hex_text: str, timestamp: str, number: int) -> VpdqFeature:
    value = hex_text.strip()
    if len(value) != PdqHash.HEX_LENGTH:
        raise VpdqFormatError(ReasonCode.BAD_LENGTH, f"frame {number}: a PDQ hash is 64 hex digits, got {len(value)}")
    try:
        digest = bytes.fromhex(value)
    except ValueError as exc:
        raise VpdqFormatError(ReasonCode.NOT_HEX, f"frame {number}: the PDQ hash is not hex") from exc
    if len(digest) != 32:
        raise VpdqFormatError(ReasonCode.NOT_HEX, f"frame {number}: the PDQ hash is not hex")
    level = _int(quality, number)
    if level > 100:
        raise VpdqFormatError(ReasonCode.MALFORMED, f"frame {number}: quality {level} is over 100")
    try:
        seconds = float(timestamp)
    except ValueError as exc:
        raise VpdqFormatError(ReasonCode.MALFORMED, f"frame {number}: {timestamp.strip()!r} is not a time") from exc
    if not 0.0 <= seconds < 1e9:
        raise VpdqFormatError(ReasonCode.MALFORMED, f"frame {number}: time {seconds} is out of range")
    return VpdqFeature(frame, PdqHash(digest, level), round(seconds, TIMESTAMP_DECIMALS))


def _checked(features: Sequence[VpdqFeature]) -> tuple[VpdqFeature, ...]:
    if not features:
        raise VpdqFormatError(ReasonCode.MALFORMED, "a vPDQ hash has at least one frame")
    if len(features) > MAX_FRAMES:
        raise VpdqFormatError(ReasonCode.MALFORMED, f"more than {MAX_FRAMES} frames in one vPDQ hash")
    return tuple(features)
