"""vPDQ hash files as lists: the reference hasher's output (`frameNumber,quality,pdqHex,timestamp` per line)
is one video, so one file is one list entry, its external id the file's name without `.txt`. A directory
imports every `*.txt` in it (not recursively), in name order, as one entry each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from engine.importers.records import ParsedRecord, ParseResult, RejectedLine
from hashing.errors import ReasonCode
from hashing.vpdq import VpdqFormatError, VpdqHash

MAX_FILE_BYTES = 256 << 20  # a vPDQ file is ~90 bytes per frame: ~2.9 M frames


def parse_vpdq_text(text: TextIO, name: str, ordinal: int = 1) -> ParseResult:
    """One hash file's lines -> one record (the lines joined by ';', frame numbers kept), or its reject."""
    content = text.read(MAX_FILE_BYTES + 1)
    if len(content) > MAX_FILE_BYTES:
        return RejectedLine(ordinal, ReasonCode.MALFORMED, f"{name}: over {MAX_FILE_BYTES} bytes")
    try:
        video = VpdqHash.from_lines(content.splitlines())
    except VpdqFormatError as exc:
        return RejectedLine(ordinal, exc.reason, f"{name}: {exc.detail}")
    return ParsedRecord(ordinal, video.to_text(), signal_name="vpdq", external_id=name)


def parse_vpdq_files(path: Path) -> Iterator[ParseResult]:
    files = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file()) if path.is_dir() else [path]
    for ordinal, file in enumerate(files, start=1):
        with file.open(encoding="utf-8", errors="replace") as text:
            yield parse_vpdq_text(text, file.name.removesuffix(".txt"), ordinal)


def looks_like_vpdq_line(line: str) -> bool:
    fields = [f.strip() for f in line.split(",")]
    return len(fields) == 4 and fields[0].isdigit() and fields[1].isdigit() and len(fields[2]) == 64
