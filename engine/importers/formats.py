"""The import formats by name, detection from the file, and opening a file as a stream of parse results."""

from __future__ import annotations

import io
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from engine.importers.api_json import parse_stopncii_json, parse_tat_json
from engine.importers.delimited import parse_delimited
from engine.importers.hasher_output import parse_hasher_output
from engine.importers.ncmec_xml import parse_ncmec_xml
from engine.importers.plain_text import parse_plain_text
from engine.importers.records import HexBatch, ImportFormatError, ParseResult
from engine.importers.vpdq_files import looks_like_vpdq_line, parse_vpdq_files, parse_vpdq_text


class ImportFormat(StrEnum):
    AUTO = "auto"
    PLAIN = "plain"  # one hash per line, or "TYPE HASH"
    CSV = "csv"  # CSV or TSV with a header
    HASHER = "hasher"  # reference hasher output: "hex,quality,path" / "hash=..,quality=..,filename=.."
    NCMEC_XML = "ncmec-xml"
    STOPNCII_JSON = "stopncii-json"
    TAT_JSON = "tat-json"
    VPDQ = "vpdq"  # vPDQ hasher output: one file (or each *.txt of a directory) is one video entry


def detect_format(path: Path) -> ImportFormat:
    """From the first kilobytes: XML, the JSON keys, a header row, hasher lines, else plain text. A directory
    is a folder of vPDQ hash files."""
    if path.is_dir():
        return ImportFormat.VPDQ
    with path.open("rb") as handle:
        return detect_format_of_text(handle.read(8192).decode("utf-8", errors="replace"))


def detect_format_of_text(head: str) -> ImportFormat:
    """detect_format for the first few kilobytes of a list already in memory."""
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        return ImportFormat.NCMEC_XML
    if stripped.startswith(("{", "[")):
        if '"hashRecords"' in head:
            return ImportFormat.STOPNCII_JSON
        if '"hash_digest"' in head or '"results"' in head:
            return ImportFormat.TAT_JSON
        raise ImportFormatError("JSON without 'hashRecords' (StopNCII) or 'results' (Tech Against Terrorism)")
    first = next((line for line in stripped.splitlines() if line.strip() and not line.startswith("#")), "")
    if first.startswith("hash="):
        return ImportFormat.HASHER
    if looks_like_vpdq_line(first):
        return ImportFormat.VPDQ
    fields = first.replace("\t", ",").split(",")
    if len(fields) >= 2 and not _is_hex(fields[0].strip()):
        return ImportFormat.CSV
    if len(fields) == 3 and fields[1].strip().isdigit():
        return ImportFormat.HASHER
    return ImportFormat.PLAIN


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def read_records(path: Path, fmt: ImportFormat = ImportFormat.AUTO) -> Iterator[ParseResult | HexBatch]:
    """Parse results of a list file, streamed: the file is never read whole."""
    if fmt is ImportFormat.AUTO:
        fmt = detect_format(path)
    if fmt is ImportFormat.NCMEC_XML:
        with path.open("rb") as binary:
            yield from parse_ncmec_xml(binary)
        return
    if fmt is ImportFormat.VPDQ:
        yield from parse_vpdq_files(path)
        return
    # utf-8-sig: exports from spreadsheet tools start with a byte-order mark.
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as text:
        if fmt is ImportFormat.PLAIN:
            yield from parse_plain_text(text)
        elif fmt is ImportFormat.CSV:
            yield from parse_delimited(text)
        elif fmt is ImportFormat.HASHER:
            yield from parse_hasher_output(text)
        elif fmt is ImportFormat.STOPNCII_JSON:
            yield from parse_stopncii_json(text)
        elif fmt is ImportFormat.TAT_JSON:
            yield from parse_tat_json(text)
        else:  # pragma: no cover - every member is handled above
            raise ImportFormatError(f"no reader for {fmt}")


def records_from_text(text: str, fmt: ImportFormat) -> Iterator[ParseResult | HexBatch]:
    """The same parsers over an in-memory string (tests, the admin API)."""
    if fmt is ImportFormat.NCMEC_XML:
        return parse_ncmec_xml(io.BytesIO(text.encode()))
    if fmt is ImportFormat.PLAIN:
        return parse_plain_text(io.StringIO(text, newline=""))
    if fmt is ImportFormat.CSV:
        return parse_delimited(io.StringIO(text, newline=""))
    if fmt is ImportFormat.HASHER:
        return parse_hasher_output(io.StringIO(text, newline=""))
    if fmt is ImportFormat.STOPNCII_JSON:
        return parse_stopncii_json(io.StringIO(text))
    if fmt is ImportFormat.TAT_JSON:
        return parse_tat_json(io.StringIO(text))
    if fmt is ImportFormat.VPDQ:
        return iter([parse_vpdq_text(io.StringIO(text), "vpdq")])
    raise ImportFormatError(f"give a concrete format, not {fmt}")
