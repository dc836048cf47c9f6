"""CSV or TSV with a header row naming the columns (hash, type, id, classification; aliases accepted)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import chain

from engine.importers.records import ImportFormatError, ParsedRecord, ParseResult, RejectedLine
from hashing.errors import ReasonCode

_GENERIC_HASH_COLUMNS = ("hash", "value", "signal_value", "hash_value", "hashvalue", "hash_digest")
_COLUMNS = {
    "type": ("type", "signal_type", "hash_type", "signaltype", "algorithm"),
    "id": ("id", "external_id", "entry_id", "ncmec_id", "case_id"),
    "classification": ("classification", "category", "label", "tag"),
    "deleted": ("deleted", "is_deleted", "tombstone"),
    # hashmatch's own CSV export: an export re-imported keeps each entry's original provenance
    "source_file": ("source_file",),
    "source_line": ("source_line",),
    "imported_at": ("imported_at",),
}
_TRUE = frozenset({"1", "true", "yes", "y", "deleted"})


_SIGNAL_COLUMNS = ("pdq", "md5", "sha1", "sha256")


def parse_delimited(lines: Iterable[str], delimiter: str | None = None) -> Iterator[ParseResult]:
    """Records in file order, numbered by the physical line each starts on (quoted fields may span lines).

    With a generic hash column (`hash`, `value`, ...) each row is one record; without one, each non-empty
    column named after a signal type (`md5`, `sha1`, `pdq`, `sha256`) is a record of that type, as in
    exports that carry several fingerprints of one entry per row.
    """
    rows = iter(lines)
    header_line = next(rows, "")
    if delimiter is None:
        delimiter = "\t" if "\t" in header_line else ","
    reader = csv.reader(chain([header_line], rows), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    positions = {role: _find(header, aliases) for role, aliases in _COLUMNS.items()}
    generic = _find(header, _GENERIC_HASH_COLUMNS)
    hash_columns = (
        [(generic, None)]
        if generic is not None
        else [(header.index(name), name) for name in _SIGNAL_COLUMNS if name in header]
    )
    if not hash_columns:
        expected = _GENERIC_HASH_COLUMNS + _SIGNAL_COLUMNS
        raise ImportFormatError(f"no hash column in the header {header!r}; expected one of {expected}")
    previous_end = reader.line_num
    for fields in reader:
        number, previous_end = previous_end + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            yield RejectedLine(number, ReasonCode.MALFORMED, f"{len(fields)} fields, the header has {len(header)}")
            continue

        def field(column: int | None, row: list[str] = fields) -> str | None:
            return (row[column].strip() or None) if column is not None else None

        external_id = field(positions["id"])
        classification = field(positions["classification"])
        deleted = (field(positions["deleted"]) or "").lower() in _TRUE
        present = [(field(column), implied) for column, implied in hash_columns if field(column)]
        if not present:
            if deleted and external_id:
                yield ParsedRecord(number, "", None, external_id, classification, deleted=True)
            else:
                yield RejectedLine(number, ReasonCode.MISSING_HASH, "the hash field is empty")
            continue
        source_line = field(positions["source_line"])
        for hash_text, implied_type in present:
            yield ParsedRecord(
                number,
                hash_text or "",
                signal_name=field(positions["type"]) or implied_type,
                external_id=external_id,
                classification=classification,
                deleted=deleted,
                source_file=field(positions["source_file"]),
                source_line=int(source_line)
                if source_line and source_line.isascii() and source_line.isdigit()
                else None,
                imported_at=field(positions["imported_at"]),
            )


def _find(header: list[str], aliases: tuple[str, ...]) -> int | None:
    for alias in aliases:
        if alias in header:
            return header.index(alias)
    return None
