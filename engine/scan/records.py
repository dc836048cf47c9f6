"""What a scan finds and what it writes: one ScanItem per input it meets (a file, or a member of an archive),
one ScanRecord per line of results.jsonl."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hashing.errors import ReasonCode

ARCHIVE_SEPARATOR = "!"  # "seized.zip!photos/a.jpg": a member, named inside its archive


class ContentType(StrEnum):
    """By content (magic bytes), never by extension."""

    IMAGE = "image"
    VIDEO = "video"
    ARCHIVE = "archive"
    OTHER = "other"


@dataclass(frozen=True)
class ItemProblem:
    """Why an input could not be read at all (it still gets a result line)."""

    reason: ReasonCode
    detail: str


@dataclass(frozen=True)
class ScanItem:
    """One input. A plain file is read by the worker that hashes it (`path`); an archive member's bytes are
    read by the walker, within the archive limits (`data`). `problem` is set when neither is possible."""

    label: str  # the path as the investigator will read it; members as archive!member (nested: a!b!c)
    size: int | None = None
    content_type: ContentType | None = None
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    problem: ItemProblem | None = None


class Decision(StrEnum):
    """A result line's outcome: the matcher's decisions, or `error` when the input could not be read."""

    MATCH = "match"
    NEEDS_REVIEW = "needs_review"
    NO_MATCH = "no_match"
    ERROR = "error"


@dataclass(frozen=True)
class ScanRecord:
    """One line of results.jsonl. `matches` are MatchedEntry.to_dict() objects; `reasons` say why part of the
    matching could not happen (UNDECODABLE: digests only; QUALITY_TOO_LOW: PDQ not matched); `error` is set
    exactly when decision is `error` (nothing could be read). `duplicate_of` names the first input with the
    same SHA-256, which was hashed in its place."""

    path: str
    decision: Decision
    size: int | None = None
    type: ContentType | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    quality: int | None = None
    matches: tuple[dict[str, Any], ...] = ()
    reasons: tuple[ReasonCode, ...] = ()
    error: ItemProblem | None = None
    duplicate_of: str | None = None
    detail: str | None = None  # plain words for the first of `reasons` (e.g. what made a file undecodable)
    vpdq_frames: int | None = None  # a video's hashed frames (its vPDQ); written only for videos that have one

    def to_json(self) -> str:
        record = asdict(self)
        record["matches"] = list(self.matches)
        record["reasons"] = [str(r) for r in self.reasons]
        record["error"] = (
            None if self.error is None else {"reason": str(self.error.reason), "detail": self.error.detail}
        )
        if self.vpdq_frames is None:
            del record["vpdq_frames"]
        return json.dumps(record, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> ScanRecord:
        raw = json.loads(line)
        error = raw.pop("error")
        return cls(
            **{
                **raw,
                "decision": Decision(raw["decision"]),
                "type": ContentType(raw["type"]) if raw["type"] else None,
                "matches": tuple(raw["matches"]),
                "reasons": tuple(ReasonCode(r) for r in raw["reasons"]),
                "error": None if error is None else ItemProblem(ReasonCode(error["reason"]), error["detail"]),
            }
        )
