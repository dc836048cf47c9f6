"""Hashes -> verdict: every list entry within each list's threshold, exact digest matches, the quality gate,
negative lists, and the decision, with the evidence a removal or a referral needs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from engine.evidence.flood import FloodGuard, Hold
from engine.index.factory import IndexBackend
from engine.lists import HashList, ListAction
from engine.query import QueryHashes
from engine.signal_types.pdq import DIHEDRAL_THRESHOLD, PdqIndex
from engine.signal_types.spec import SearchRequest, SignalHit, SignalIndex
from engine.signals import SignalType, spec_of
from engine.store import ListNotFoundError, Store
from hashing.errors import ReasonCode
from hashing.pdq import DIHEDRAL_NAMES
from hashing.query_variants import ALL_FAMILIES, Region, VariantFamily
from kernels.runtime import KernelRuntime

__all__ = ["QueryHashes"]  # re-exported: callers built queries from here before engine.query existed

DEFAULT_QUALITY_GATE = 50
MAX_NEAREST = 1000  # entries per list for --nearest: a reviewer's page, and within every backend's limit


class Decision(StrEnum):
    NO_MATCH = "no_match"
    MATCH = "match"
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class MatchedEntry:
    list_name: str
    list_version: int
    entry_id: int
    signal_type: SignalType
    external_id: str | None
    classification: str | None
    distance: int  # 0 for exact digests
    # Which variant of the query matched (PDQ): a rotation or flip ("orig", "rot90", ...), "content_box", a
    # crop ("crop_90_center", ...); None for a query without variants.
    variant: str | None
    action: ListAction
    negative: bool
    evidence: Mapping[str, Any] | None = field(default=None, compare=False)  # type-specific (vPDQ percentages)
    quarantined: bool = False  # held for review by the flood guard: this match decides needs_review at most
    region: Region | None = None  # the part of the query the matching variant was hashed from; None: all of it

    @property
    def dihedral_variant(self) -> str | None:
        """The variant when it is a rotation or flip (the field's name before other variants existed)."""
        return self.variant if self.variant in DIHEDRAL_NAMES else None

    def to_dict(self) -> dict[str, Any]:
        return (
            {
                "list": self.list_name,
                "list_version": self.list_version,
                "entry_id": self.entry_id,
                "signal_type": self.signal_type.value,
                "external_id": self.external_id,
                "classification": self.classification,
                "distance": self.distance,
                "variant": self.variant,
                "region": None if self.region is None else self.region.to_dict(),
                "dihedral_variant": self.dihedral_variant,
                "action": self.action.value,
            }
            | ({} if self.evidence is None else {"evidence": dict(self.evidence)})
            | ({"quarantined": True} if self.quarantined else {})
        )


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    matches: tuple[MatchedEntry, ...]
    query: QueryHashes
    list_versions: dict[str, int]
    suppressed: tuple[MatchedEntry, ...] = ()  # perceptual matches a negative-list hit overrode
    negative_matches: tuple[MatchedEntry, ...] = ()
    reasons: tuple[ReasonCode, ...] = ()  # e.g. QUALITY_TOO_LOW
    elapsed_ms: float = 0.0
    # With MatchScope.nearest = K: each list's K closest PDQ entries whatever the threshold (near misses for a
    # reviewer); None when not asked for. They decide nothing: the decision comes from `matches` alone.
    nearest: tuple[MatchedEntry, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        pdq = self.query.pdq
        return {
            "decision": self.decision.value,
            "reasons": [r.value for r in self.reasons],
            "query": {
                "pdq": pdq.hex() if pdq else None,
                "quality": pdq.quality if pdq else None,
                "md5": self.query.md5.hex() if self.query.md5 else None,
                "sha1": self.query.sha1.hex() if self.query.sha1 else None,
                "sha256": self.query.sha256.hex() if self.query.sha256 else None,
            },
            "matches": [m.to_dict() for m in self.matches],
            "suppressed": [m.to_dict() for m in self.suppressed],
            "negative_matches": [m.to_dict() for m in self.negative_matches],
            "list_versions": self.list_versions,
            "elapsed_ms": round(self.elapsed_ms, 3),
        } | ({} if self.nearest is None else {"nearest": [m.to_dict() for m in self.nearest]})


@dataclass(frozen=True)
class MatchScope:
    """What a batch is matched with: the options of `hashmatch match`, also sent by clients of the service."""

    lists: frozenset[str] | None = None  # these loaded lists only; None: all of them
    dihedral: bool = True  # match a query's 8 rotations and flips where it carries them
    variants: frozenset[VariantFamily] = ALL_FAMILIES  # the query variants (content box, crops) matched
    dihedral_threshold: int | None = None  # how close a rotation or flip must come; None: DIHEDRAL_THRESHOLD
    quality_gate: int | None = None  # None: the matcher's
    nearest: int = 0  # K > 0: also each list's K closest PDQ entries, whatever the threshold (MAX_NEAREST at most)
    # Per-type match options (vPDQ's rule, say); None: the matcher's. Left out of the hash (a dict has none) but
    # not out of equality, so scopes that differ only here still batch apart.
    signal_options: Mapping[SignalType, object] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not 0 <= self.nearest <= MAX_NEAREST:
            raise ValueError(f"nearest must be within 0..{MAX_NEAREST}, got {self.nearest}")
        if self.dihedral_threshold is not None and not 0 <= self.dihedral_threshold <= 256:
            raise ValueError(f"the dihedral threshold is within 0..256 bits, got {self.dihedral_threshold}")


EVERYTHING = MatchScope()


@dataclass
class LoadedList:
    """One list version in memory: an index per signal type it holds."""

    spec: HashList
    version: int
    indexes: dict[SignalType, SignalIndex] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        return sum(len(index) for index in self.indexes.values())

    @property
    def pdq_ids(self) -> np.ndarray:
        """Entry ids of the PDQ index's rows (row i is entry pdq_ids[i])."""
        index = self.indexes.get(SignalType.PDQ)
        return index.entry_ids if isinstance(index, PdqIndex) else np.zeros(0, dtype=np.int64)


def load_list(
    store: Store,
    name: str,
    version: int | None = None,
    backend: IndexBackend | str = "auto",
    gpu: KernelRuntime | None = None,
) -> LoadedList:
    """One version with the settings it was made with (its threshold, action and negative flag)."""
    number = store.resolve_version(name, version)
    settings = store.version_settings(name, number)
    spec = replace(
        store.get_list(name), threshold=settings.threshold, action=settings.action, negative=settings.negative
    )
    indexes: dict[SignalType, SignalIndex] = {}
    for signal in sorted(spec.signal_types):
        live = store.live_signals(name, signal, number)
        indexes[signal] = spec_of(signal).build_index(live, spec.threshold, backend, gpu)
    return LoadedList(spec, number, indexes)


Hit = tuple[LoadedList, SignalType, SignalHit]


@dataclass(frozen=True)
class FloodWatch:
    """The flood guard a serving matcher reports its matches to, and what to do when it holds an entry (keep
    the hold, audit it, count it): shared by every matcher a server swaps in."""

    guard: FloodGuard
    on_hold: Callable[[Hold, str], None]


class Matcher:
    """Matches queries against loaded list versions. Build a new Matcher to change versions (hot swap)."""

    def __init__(
        self,
        store: Store,
        lists: list[LoadedList],
        quality_gate: int = DEFAULT_QUALITY_GATE,
        signal_options: Mapping[SignalType, object] | None = None,
        flood: FloodWatch | None = None,
    ) -> None:
        self.store = store
        self.lists = lists
        self.quality_gate = quality_gate
        self.signal_options: Mapping[SignalType, object] = signal_options or {}
        self.flood = flood

    @classmethod
    def from_store(
        cls,
        store: Store,
        names: list[str] | None = None,
        backend: IndexBackend | str = "auto",
        quality_gate: int = DEFAULT_QUALITY_GATE,
        gpu: KernelRuntime | None = None,
        signal_options: Mapping[SignalType, object] | None = None,
        flood: FloodWatch | None = None,
    ) -> Matcher:
        """Every list with an active version (or the named ones), at its active version; with a verified GPU's
        runtime, large lists are searched on the device."""
        chosen = names if names else [h.name for h in store.lists() if h.active_version is not None]
        loaded = [load_list(store, name, backend=backend, gpu=gpu) for name in chosen]
        return cls(store, loaded, quality_gate, signal_options, flood)

    @property
    def list_versions(self) -> dict[str, int]:
        return {loaded.spec.name: loaded.version for loaded in self.lists}

    def match(self, query: QueryHashes) -> Verdict:
        return self.match_many([query])[0]

    def lists_in(self, scope: MatchScope) -> list[LoadedList]:
        """The loaded lists a scope names; StoreError LIST_NOT_FOUND for a name this matcher does not hold."""
        if scope.lists is None:
            return self.lists
        missing = sorted(scope.lists - {loaded.spec.name for loaded in self.lists})
        if missing:
            raise ListNotFoundError(missing[0])
        return [loaded for loaded in self.lists if loaded.spec.name in scope.lists]

    def match_many(self, queries: list[QueryHashes], scope: MatchScope = EVERYTHING) -> list[Verdict]:
        """Batched: one index search per list for all the queries' PDQ codes (and their variants)."""
        started = time.perf_counter()
        lists = self.lists_in(scope)
        gate = self.quality_gate if scope.quality_gate is None else scope.quality_gate
        hits: list[list[Hit]] = [[] for _ in queries]
        near: list[list[Hit]] | None = [[] for _ in queries] if scope.nearest else None
        gated = [q.below_quality(gate) for q in queries]
        options = self.signal_options if scope.signal_options is None else scope.signal_options
        for loaded in lists:
            # A list that opts out of query variants is matched on the query's own PDQ alone.
            with_variants = loaded.spec.query_variants
            request = SearchRequest(
                queries,
                loaded.spec.threshold,
                gated,
                scope.dihedral and with_variants,
                options,
                scope.variants if with_variants else frozenset(),
                gate,
                DIHEDRAL_THRESHOLD if scope.dihedral_threshold is None else scope.dihedral_threshold,
            )
            for signal, index in loaded.indexes.items():
                if not len(index):
                    continue
                for hit in index.search(request):
                    hits[hit.query].append((loaded, signal, hit))
                if near is not None:
                    for hit in index.nearest(request, scope.nearest):
                        near[hit.query].append((loaded, signal, hit))
        # One evidence query per batch, whatever the number of matches: a flood of re-uploads of one listed
        # image must cost what a flood of unlisted ones does.
        wanted = {h[2].entry_id for per_query in hits + (near or []) for h in per_query}
        evidence = self.store.evidence(wanted)
        held = self._watch_floods(queries, hits)
        elapsed = (time.perf_counter() - started) * 1000.0 / max(1, len(queries))
        versions = {loaded.spec.name: loaded.version for loaded in lists}
        verdicts = [
            self._verdict(query, per_query, evidence, is_gated, elapsed, versions, held)
            for query, per_query, is_gated in zip(queries, hits, gated, strict=True)
        ]
        if near is None:
            return verdicts
        return [
            replace(verdict, nearest=tuple(_entries(per_query, evidence)))
            for verdict, per_query in zip(verdicts, near, strict=True)
        ]

    def _watch_floods(self, queries: list[QueryHashes], hits: list[list[Hit]]) -> frozenset[int]:
        """Each query's positive matches, by entry and the query's content identity (the guard counts one
        upload once); the entries held for review after them."""
        if self.flood is None:
            return frozenset()
        lists_of = {
            hit.entry_id: loaded.spec.name
            for per_query in hits
            for loaded, _, hit in per_query
            if not loaded.spec.negative
        }
        if not lists_of:  # most batches match nothing
            return self.flood.guard.held
        matched = [
            (entry_id, query.identity)
            for query, per_query in zip(queries, hits, strict=True)
            for entry_id in {h[2].entry_id for h in per_query} & lists_of.keys()
        ]
        for hold in self.flood.guard.observe(matched):
            self.flood.on_hold(hold, lists_of[hold.entry_id])
        return self.flood.guard.held

    def _verdict(
        self,
        query: QueryHashes,
        hits: list[Hit],
        evidence: dict[int, tuple[str | None, str | None]],
        gated: bool,
        elapsed_ms: float,
        list_versions: dict[str, int],
        held: frozenset[int] = frozenset(),
    ) -> Verdict:
        ordered = [replace(m, quarantined=True) if m.entry_id in held else m for m in _entries(hits, evidence)]
        negative = tuple(m for m in ordered if m.negative)
        positive = [m for m in ordered if not m.negative]
        # A known false positive explains a perceptual match of its own type only if the query is at least as
        # close to it as to the listed entry, both seen through the same part of the query: the whole image (as
        # it is, or rotated), or the same content box or crop. A false positive found in a crop does not explain
        # a match of the whole image. Exact-digest matches always stand.
        closest_negative: dict[tuple[SignalType, str | None], int] = {}
        for m in negative:
            if spec_of(m.signal_type).perceptual:
                key = _seen_through(m)
                closest_negative[key] = min(m.distance, closest_negative.get(key, m.distance))
        suppressed = tuple(
            m
            for m in positive
            if _seen_through(m) in closest_negative and m.distance >= closest_negative[_seen_through(m)]
        )
        positive = [m for m in positive if m not in suppressed]
        if not positive:
            decision = Decision.NO_MATCH
        elif any(m.action is not ListAction.REVIEW and not m.quarantined for m in positive):
            decision = Decision.MATCH
        else:
            decision = Decision.NEEDS_REVIEW
        held_reason = (ReasonCode.ENTRY_QUARANTINED,) if any(m.quarantined for m in positive) else ()
        return Verdict(
            decision=decision,
            matches=tuple(positive),
            query=query,
            list_versions=list_versions,
            suppressed=suppressed,
            negative_matches=negative,
            reasons=query.reasons + ((ReasonCode.QUALITY_TOO_LOW,) if gated else ()) + held_reason,
            elapsed_ms=elapsed_ms,
        )


def _seen_through(match: MatchedEntry) -> tuple[SignalType, str | None]:
    """The match's type and the part of the query it was found in: None for the whole image (the query's own
    hash or a rotation of it), else the variant (a content box, a crop)."""
    return match.signal_type, None if match.region is None else match.variant


def _entries(hits: list[Hit], evidence: dict[int, tuple[str | None, str | None]]) -> list[MatchedEntry]:
    """One entry per (list, entry) at the distance of the query's closest variant, by (distance, list, entry)."""
    best: dict[tuple[str, int], MatchedEntry] = {}
    for loaded, signal, hit in hits:
        # No evidence: the entry has no external id or classification, or its list was deleted meanwhile.
        external_id, classification = evidence.get(hit.entry_id, (None, None))
        matched = MatchedEntry(
            list_name=loaded.spec.name,
            list_version=loaded.version,
            entry_id=hit.entry_id,
            signal_type=signal,
            external_id=external_id,
            classification=classification,
            distance=hit.distance,
            variant=hit.variant,
            action=loaded.spec.action,
            negative=loaded.spec.negative,
            evidence=hit.evidence,
            region=hit.region,
        )
        key = (loaded.spec.name, hit.entry_id)
        if key not in best or matched.distance < best[key].distance:
            best[key] = matched  # the closest variant of the query is the evidence
    return sorted(best.values(), key=lambda m: (m.distance, m.list_name, m.entry_id))
