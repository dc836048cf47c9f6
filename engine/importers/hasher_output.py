"""What reference command-line hashers print: `hex,quality,path` or `hash=HEX,quality=Q,filename=PATH`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from engine.importers.records import ParsedRecord, ParseResult, RejectedLine
from hashing.errors import ReasonCode


def parse_hasher_output(lines: Iterable[str]) -> Iterator[ParseResult]:
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("hash="):
            fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
            hash_text, path = fields.get("hash", ""), fields.get("filename")
        else:
            parts = text.split(",", 2)
            if len(parts) != 3:
                yield RejectedLine(number, ReasonCode.MALFORMED, "expected 'hex,quality,path'")
                continue
            hash_text, path = parts[0], parts[2]
        if not hash_text:
            yield RejectedLine(number, ReasonCode.MISSING_HASH, "no hash on the line")
            continue
        yield ParsedRecord(number, hash_text, signal_name="pdq", external_id=path or None)
