"""The interface each signal type implements, and the records that cross it.

A type parses and validates its text form (with reason codes), prints it back, compares two values (the
brute-force reference every index is tested against) and builds the index that serves a list's values of it.
The store keeps one fixed-width value per entry (`value_width` bytes, what identifies the entry) and, for types
whose values have no fixed size (a video's frame hashes), a payload beside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.index.factory import IndexBackend
from engine.query import QueryHashes
from engine.signal_types.names import SignalType
from engine.signal_types.values import ParsedValue
from hashing.query_variants import ALL_FAMILIES, Region, VariantFamily
from kernels.runtime import KernelRuntime


@dataclass(frozen=True, eq=False)
class LiveSignals:
    """The live values of one signal type in one list version, as arrays for the index and lookups."""

    values: np.ndarray  # (n, value_width) uint8
    entry_ids: np.ndarray  # (n,) int64, ascending
    payloads: tuple[bytes, ...] = ()  # one per entry, for types with payloads; empty otherwise


@dataclass(frozen=True, slots=True)
class Comparison:
    matched: bool
    distance: int  # bits for PDQ, 0 for equal digests; for vPDQ the closest matched frame pair's bits
    evidence: Mapping[str, Any] | None = None  # what a reviewer needs beyond the distance (vPDQ: percentages)


@dataclass(frozen=True, slots=True)
class SignalHit:
    query: int  # position of the query in the batch
    entry_id: int
    distance: int
    variant: str | None = None  # which variant of the query matched (a rotation or flip, content_box, a crop)
    evidence: Mapping[str, Any] | None = None
    region: Region | None = None  # the part of the query the variant was hashed from; None: all of it


@dataclass(frozen=True)
class SearchRequest:
    """A batch of queries against one list's index of one type."""

    queries: Sequence[QueryHashes]
    threshold: int  # the list's
    below_quality_gate: Sequence[bool]  # per query: its PDQ is under the quality gate (not searched)
    dihedral: bool = True
    options: Mapping[SignalType, object] = field(default_factory=dict)  # per-type match options
    variants: frozenset[VariantFamily] = ALL_FAMILIES  # the query variants' families searched
    quality_gate: int = 0  # a query variant below this quality is not searched (its own quality, not the PDQ's)
    # A rotation or flip of the query matches only this close (and within `threshold`): see DIHEDRAL_THRESHOLD.
    dihedral_threshold: int = 256


class SignalIndex(ABC):
    """One list version's values of one type, searchable in batches."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def search(self, request: SearchRequest) -> list[SignalHit]:
        """Every (query, entry) pair that matches under the list's threshold."""

    def nearest(self, request: SearchRequest, k: int) -> list[SignalHit]:
        """Each query's k closest entries whatever the threshold; types without a distance order have none."""
        return []


class SignalSpec(ABC):
    """Everything the engine knows about one signal type."""

    signal: SignalType
    aliases: tuple[str, ...]  # names import formats use for it, lower case
    value_width: int
    perceptual: bool  # matched by distance (a negative-list hit of the same type can suppress it)
    default_threshold: int = 0
    has_payload: bool = False

    @abstractmethod
    def parse(self, text: str) -> ParsedValue:
        """Validated value of its text form; SignalValueError with the reason otherwise."""

    @abstractmethod
    def format(self, value: ParsedValue) -> str:
        """The text form `parse` reads back."""

    @abstractmethod
    def compare(self, query: ParsedValue, entry: ParsedValue, threshold: int) -> Comparison:
        """The reference comparison of two values: what every index of the type must agree with."""

    @abstractmethod
    def query_value(self, query: QueryHashes) -> ParsedValue | None:
        """The query's value of this type, if it carries one."""

    def query_of(self, value: ParsedValue) -> QueryHashes:
        """A query of this value alone (a hash given as text): carried among the query's `others`."""
        return QueryHashes(others={self.signal: value})

    @abstractmethod
    def build_index(
        self,
        live: LiveSignals,
        threshold: int,
        backend: IndexBackend | str = IndexBackend.AUTO,
        gpu: KernelRuntime | None = None,
    ) -> SignalIndex: ...
