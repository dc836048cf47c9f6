"""CSV or TSV with a header row naming the columns (hash, type, id, classification; aliases accepted)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from engine.importers.records import ImportFormatError, ParsedRecord, ParseResult, RejectedLine
from engine.signals import RejectReason

_COLUMNS = {
    "hash": ("hash", "value", "signal_value", "hash_value", "hashvalue", "hash_digest", "pdq", "md5", "sha1", "sha256"),
    "type": ("type", "signal_type", "hash_type", "signaltype", "algorithm"),
    "id": ("id", "external_id", "entry_id", "ncmec_id", "case_id"),
    "classification": ("classification", "category", "label", "tag"),
    "deleted": ("deleted", "is_deleted", "tombstone"),
}
_TRUE = frozenset({"1", "true", "yes", "y", "deleted"})


def parse_delimited(lines: Iterable[str], delimiter: str | None = None) -> Iterator[ParseResult]:
    rows = iter(lines)
    header_line = next(rows, "")
    if delimiter is None:
        delimiter = "\t" if "\t" in header_line else ","
    header = [name.strip().lower() for name in next(csv.reader([header_line], delimiter=delimiter), [])]
    positions = {role: _find(header, aliases) for role, aliases in _COLUMNS.items()}
    hash_column = positions["hash"]
    if hash_column is None:
        raise ImportFormatError(f"no hash column in the header {header!r}; expected one of {_COLUMNS['hash']}")
    # A column named after a signal type (e.g. "md5") says the type when there is no type column.
    implied_type = header[hash_column] if header[hash_column] in ("pdq", "md5", "sha1", "sha256") else None
    for number, fields in enumerate(csv.reader(rows, delimiter=delimiter), start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            yield RejectedLine(number, RejectReason.MALFORMED, f"{len(fields)} fields, the header has {len(header)}")
            continue

        def field(role: str, row: list[str] = fields) -> str | None:
            column = positions[role]
            value = row[column].strip() if column is not None else ""
            return value or None

        hash_text = field("hash")
        deleted = (field("deleted") or "").lower() in _TRUE
        if hash_text is None and not (deleted and field("id")):
            yield RejectedLine(number, RejectReason.MISSING_HASH, "the hash field is empty")
            continue
        yield ParsedRecord(
            number,
            hash_text or "",
            signal_name=field("type") or implied_type,
            external_id=field("id"),
            classification=field("classification"),
            deleted=deleted,
        )


def _find(header: list[str], aliases: tuple[str, ...]) -> int | None:
    for alias in aliases:
        if alias in header:
            return header.index(alias)
    return None
