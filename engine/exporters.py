"""Write list entries back out: CSV (re-importable, with provenance) and plain text (`TYPE HASH` lines)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from enum import StrEnum
from typing import TextIO

from engine.lists import ListEntry

CSV_HEADER = ("hash", "type", "id", "classification", "source_file", "source_line", "added_version", "imported_at")


class ExportFormat(StrEnum):
    CSV = "csv"
    PLAIN = "plain"


def export_entries(entries: Iterable[ListEntry], out: TextIO, fmt: ExportFormat = ExportFormat.CSV) -> int:
    """Write every entry; returns how many were written."""
    count = 0
    if fmt is ExportFormat.PLAIN:
        for entry in entries:
            out.write(f"{entry.signal_type.value} {entry.text}\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for entry in entries:
        writer.writerow(
            (
                entry.text,
                entry.signal_type.value,
                entry.external_id or "",
                entry.classification or "",
                entry.source_file or "",
                entry.source_line if entry.source_line is not None else "",
                entry.added_version,
                entry.imported_at,
            )
        )
        count += 1
    return count
