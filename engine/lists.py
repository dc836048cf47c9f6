"""The list domain: a list, its versions, its entries and their provenance."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.signals import SignalType

DEFAULT_THRESHOLD = 31


class SourceProgramme(StrEnum):
    NCMEC = "ncmec"
    STOPNCII = "stopncii"
    INDUSTRY = "industry"
    LAW_ENFORCEMENT = "law-enforcement"
    TECH_AGAINST_TERRORISM = "tat"
    LOCAL = "local"


class ListAction(StrEnum):
    """What a platform should do with a match: decides MATCH vs NEEDS_REVIEW in a verdict."""

    REMOVE = "remove"
    REFER = "refer"
    REVIEW = "review"


@dataclass(frozen=True)
class HashList:
    name: str
    source: SourceProgramme
    signal_types: frozenset[SignalType]
    threshold: int = DEFAULT_THRESHOLD
    action: ListAction = ListAction.REMOVE
    negative: bool = False  # known false positives: a match here suppresses perceptual matches elsewhere
    active_version: int | None = None
    created_at: str = ""


@dataclass(frozen=True)
class ListVersion:
    list_name: str
    number: int
    created_at: str
    kind: str  # "replace" (the file is the whole list) or "delta" (additions and tombstones)
    source_file: str | None
    added: int
    removed: int
    total: int
    rejected: int
    note: str = ""


@dataclass(frozen=True)
class ListEntry:
    entry_id: int
    list_name: str
    signal_type: SignalType
    value: bytes
    external_id: str | None
    classification: str | None
    source_file: str | None
    source_line: int | None
    imported_at: str
    added_version: int
    removed_version: int | None = None

    @property
    def hex(self) -> str:
        return self.value.hex()
