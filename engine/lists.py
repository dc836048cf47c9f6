"""The list domain: a list, its versions, its entries and their provenance."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.signals import ParsedValue, SignalType, spec_of
from hashing.errors import HashmatchError, ReasonCode

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


class ListSettingsError(HashmatchError, ValueError):
    """A list's settings are invalid (name, signal types, threshold)."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.INVALID_SETTING, message)


def check_threshold(threshold: int) -> int:
    if not 0 <= threshold <= 256:
        raise ListSettingsError(f"the PDQ threshold is within 0..256 bits, not {threshold}")
    return threshold


@dataclass(frozen=True)
class ListSettings:
    """What a version is matched with. Each version keeps its own, so activating an old version brings its
    settings back with its entries."""

    threshold: int = DEFAULT_THRESHOLD
    action: ListAction = ListAction.REMOVE
    negative: bool = False
    # Match the query's variants (rotations and flips, content box, crops) against this list; False: the
    # query's own PDQ alone, for a list whose programme wants strictly the standard comparison.
    query_variants: bool = True

    def __post_init__(self) -> None:
        check_threshold(self.threshold)

    def changes_from(self, old: ListSettings) -> list[str]:
        """Human-readable changes, e.g. ["threshold 31 -> 24"]; empty when equal."""
        pairs = (
            ("threshold", old.threshold, self.threshold),
            ("action", old.action.value, self.action.value),
            ("negative", old.negative, self.negative),
            ("query_variants", old.query_variants, self.query_variants),
        )
        return [f"{name} {before} -> {after}" for name, before, after in pairs if before != after]


@dataclass(frozen=True)
class HashList:
    name: str
    source: SourceProgramme
    signal_types: frozenset[SignalType]
    threshold: int = DEFAULT_THRESHOLD
    action: ListAction = ListAction.REMOVE
    negative: bool = False  # known false positives: a match here suppresses perceptual matches elsewhere
    query_variants: bool = True  # ListSettings.query_variants
    active_version: int | None = None
    created_at: str = ""

    @property
    def settings(self) -> ListSettings:
        return ListSettings(self.threshold, self.action, self.negative, self.query_variants)


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
    settings: ListSettings = ListSettings()


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
    payload: bytes | None = None  # the whole value, for types whose values have no fixed size (vPDQ)

    @property
    def content_key(self) -> tuple[str, bytes, str]:
        """What makes two entries the same entry, whatever their ids: type, hash and external id."""
        return (self.signal_type.value, self.value, self.external_id or "")

    @property
    def hex(self) -> str:
        return self.value.hex()

    @property
    def text(self) -> str:
        """The value in its type's text form (what an import reads back)."""
        return spec_of(self.signal_type).format(ParsedValue(self.value, self.payload))
