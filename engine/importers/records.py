"""What every format parser yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashing.errors import HashmatchError, ReasonCode


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    line: int  # 1-based line number; for XML and JSON formats, the 1-based ordinal of the record
    hash_text: str
    signal_name: str | None = None  # as the file names it; None: inferred from the hash's length
    external_id: str | None = None
    classification: str | None = None
    deleted: bool = False  # a tombstone: remove this entry (or, without a hash, every entry of external_id)
    # Provenance carried by the file itself (hashmatch's own CSV export): kept instead of this file's.
    source_file: str | None = None
    source_line: int | None = None
    imported_at: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int
    reason: ReasonCode
    detail: str
    fatal: bool = False  # the rest of the file is unreadable (broken XML/JSON): the import must not go on


@dataclass(frozen=True, eq=False)
class HexBatch:
    """Many untyped 64-hex-digit lines at once (bulk parsing of plain lists): `values[i]` came from line
    `lines[i]`. The importer treats each row exactly as a `ParsedRecord(line, hex)` without a type."""

    lines: np.ndarray  # (n,) int64
    values: np.ndarray  # (n, 32) uint8


ParseResult = ParsedRecord | RejectedLine


class ImportFormatError(HashmatchError, ValueError):
    """The file as a whole cannot be read in the chosen format (for example, a CSV without a hash column)."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.UNKNOWN_LIST_FORMAT, message)
