"""JSON exports of hash-sharing programmes: StopNCII `hashRecords` and Tech Against Terrorism `results`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TextIO

from engine.importers.json_stream import JsonStreamError, iter_array_items
from engine.importers.records import ParsedRecord, ParseResult, RejectedLine
from hashing.errors import ReasonCode

# StopNCII statuses that take a hash out of the list.
_STOPNCII_REMOVED = frozenset({"withdrawn", "deleted", "inactive"})


def _stopncii(ordinal: int, item: dict[str, Any]) -> ParseResult:
    value = item.get("hashValue")
    if not isinstance(value, str) or not value:
        return RejectedLine(ordinal, ReasonCode.MISSING_HASH, "record without hashValue")
    status = str(item.get("hashStatus") or "")
    cases = item.get("caseNumbers")
    case_ids = sorted(cases) if isinstance(cases, dict) else []
    return ParsedRecord(
        ordinal,
        value,
        signal_name=str(item.get("signalType") or "") or None,
        external_id=",".join(case_ids) or None,
        classification=status or None,
        deleted=status.lower() in _STOPNCII_REMOVED,
    )


def _tat(ordinal: int, item: dict[str, Any]) -> ParseResult:
    value = item.get("hash_digest")
    if not isinstance(value, str) or not value:
        return RejectedLine(ordinal, ReasonCode.MISSING_HASH, "result without hash_digest")
    entry_id = item.get("id")
    return ParsedRecord(
        ordinal,
        value,
        signal_name=str(item.get("algorithm") or "") or None,
        external_id=str(entry_id) if entry_id is not None else None,
        classification=str(item.get("ideology") or "") or None,
        deleted=_truthy(item.get("deleted")),
    )


def _truthy(value: Any) -> bool:
    """JSON booleans, and the strings and numbers some exports use for them ("false" is false)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _parse(stream: TextIO, key: str, convert: Callable[[int, dict[str, Any]], ParseResult]) -> Iterator[ParseResult]:
    ordinal = 0
    try:
        for item in iter_array_items(stream, key):
            ordinal += 1
            if not isinstance(item, dict):
                yield RejectedLine(ordinal, ReasonCode.MALFORMED, "array element is not an object")
                continue
            yield convert(ordinal, item)
    except JsonStreamError as exc:
        yield RejectedLine(ordinal + 1, ReasonCode.MALFORMED, f"{exc}; rest of file unreadable", fatal=True)


def parse_stopncii_json(stream: TextIO) -> Iterator[ParseResult]:
    return _parse(stream, "hashRecords", _stopncii)


def parse_tat_json(stream: TextIO) -> Iterator[ParseResult]:
    return _parse(stream, "results", _tat)
