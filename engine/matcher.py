"""Hashes -> verdict: every list entry within each list's threshold, exact digest matches, the quality gate,
negative lists, and the decision, with the evidence a removal or a referral needs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from engine.index.base import HashIndex
from engine.index.factory import IndexBackend, build_index
from engine.lists import HashList, ListAction
from engine.signals import SignalType
from engine.store import ListNotFoundError, Store
from hashing.errors import ReasonCode
from hashing.media_hasher import MediaHashes, MediaOutcome
from hashing.pdq import DIHEDRAL_NAMES
from hashing.pdq_hash import PdqHash
from kernels.runtime import KernelRuntime

DEFAULT_QUALITY_GATE = 50
MAX_NEAREST = 1000  # entries per list for --nearest: a reviewer's page, and within every backend's limit


class Decision(StrEnum):
    NO_MATCH = "no_match"
    MATCH = "match"
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class QueryHashes:
    """What is matched: a PDQ hash (with quality, optionally its 8 dihedral variants) and exact digests."""

    pdq: PdqHash | None = None
    dihedral: tuple[PdqHash, ...] = ()  # empty, or 8 in DIHEDRAL_NAMES order (the first is `pdq`)
    md5: bytes | None = None
    sha1: bytes | None = None
    sha256: bytes | None = None
    reasons: tuple[ReasonCode, ...] = ()  # why part of the query is missing, e.g. UNDECODABLE: no PDQ

    @classmethod
    def of_media(cls, hashes: MediaHashes) -> QueryHashes:
        digests = hashes.digests
        return cls(
            pdq=hashes.pdq,
            dihedral=hashes.dihedral,
            md5=bytes.fromhex(digests.md5) if digests else None,
            sha1=bytes.fromhex(digests.sha1) if digests else None,
            sha256=bytes.fromhex(digests.sha256) if digests else None,
        )

    @classmethod
    def of_outcome(cls, outcome: MediaOutcome) -> QueryHashes:
        """The digests always; the PDQ when there is one, else the reason there is none."""
        if outcome.hashes is not None:
            return cls.of_media(outcome.hashes)
        digests = outcome.digests
        return cls(
            md5=bytes.fromhex(digests.md5),
            sha1=bytes.fromhex(digests.sha1),
            sha256=bytes.fromhex(digests.sha256),
            reasons=(outcome.error.reason,) if outcome.error else (),
        )

    def exact(self) -> dict[SignalType, bytes]:
        pairs = ((SignalType.MD5, self.md5), (SignalType.SHA1, self.sha1), (SignalType.SHA256, self.sha256))
        return {signal: value for signal, value in pairs if value is not None}


@dataclass(frozen=True)
class MatchedEntry:
    list_name: str
    list_version: int
    entry_id: int
    signal_type: SignalType
    external_id: str | None
    classification: str | None
    distance: int  # 0 for exact digests
    dihedral_variant: str | None  # which rotation/flip of the query matched (PDQ with dihedral queries)
    action: ListAction
    negative: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "list_version": self.list_version,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type.value,
            "external_id": self.external_id,
            "classification": self.classification,
            "distance": self.distance,
            "dihedral_variant": self.dihedral_variant,
            "action": self.action.value,
        }


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
    quality_gate: int | None = None  # None: the matcher's
    nearest: int = 0  # K > 0: also each list's K closest PDQ entries, whatever the threshold (MAX_NEAREST at most)

    def __post_init__(self) -> None:
        if not 0 <= self.nearest <= MAX_NEAREST:
            raise ValueError(f"nearest must be within 0..{MAX_NEAREST}, got {self.nearest}")


EVERYTHING = MatchScope()


@dataclass
class LoadedList:
    """One list version in memory: its PDQ index (row i = pdq_ids[i]) and its exact digests."""

    spec: HashList
    version: int
    pdq_index: HashIndex | None
    pdq_ids: np.ndarray
    exact: dict[SignalType, dict[bytes, list[int]]] = field(default_factory=dict)
    exact_entries: int = 0  # entries of every exact-digest type together

    @property
    def entries(self) -> int:
        return len(self.pdq_ids) + self.exact_entries


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
    index: HashIndex | None = None
    pdq_ids = np.zeros(0, dtype=np.int64)
    if SignalType.PDQ in spec.signal_types:
        live = store.live_signals(name, SignalType.PDQ, number)
        pdq_ids = live.entry_ids
        index = build_index(live.values, spec.threshold, backend, gpu)
    exact: dict[SignalType, dict[bytes, list[int]]] = {}
    exact_entries = 0
    for signal in sorted(spec.signal_types - {SignalType.PDQ}):
        live = store.live_signals(name, signal, number)
        exact_entries += len(live.entry_ids)
        table: dict[bytes, list[int]] = {}
        blob = live.values.tobytes()
        width = signal.byte_length
        for i, entry_id in enumerate(live.entry_ids.tolist()):
            table.setdefault(blob[i * width : (i + 1) * width], []).append(entry_id)
        exact[signal] = table
    return LoadedList(spec, number, index, pdq_ids, exact, exact_entries)


Hit = tuple[LoadedList, int, SignalType, int, str | None]  # list, entry id, signal, distance, dihedral variant


class Matcher:
    """Matches queries against loaded list versions. Build a new Matcher to change versions (hot swap)."""

    def __init__(
        self,
        store: Store,
        lists: list[LoadedList],
        quality_gate: int = DEFAULT_QUALITY_GATE,
    ) -> None:
        self.store = store
        self.lists = lists
        self.quality_gate = quality_gate

    @classmethod
    def from_store(
        cls,
        store: Store,
        names: list[str] | None = None,
        backend: IndexBackend | str = "auto",
        quality_gate: int = DEFAULT_QUALITY_GATE,
        gpu: KernelRuntime | None = None,
    ) -> Matcher:
        """Every list with an active version (or the named ones), at its active version; with a verified GPU's
        runtime, large lists are searched on the device."""
        chosen = names if names else [h.name for h in store.lists() if h.active_version is not None]
        return cls(store, [load_list(store, name, backend=backend, gpu=gpu) for name in chosen], quality_gate)

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
        # A PDQ hash sent without its quality (some lists and edge hashers drop it) is not gated.
        gated = [q.pdq is not None and q.pdq.quality is not None and q.pdq.quality < gate for q in queries]
        codes, owners, variants = _query_codes(queries, gated, scope.dihedral)
        for loaded in lists:
            if loaded.pdq_index is not None and len(codes) and len(loaded.pdq_index):
                found = loaded.pdq_index.search(codes, loaded.spec.threshold)
                for row in range(found.n_queries):
                    rows, distances = found.for_query(row)
                    for hit_row, distance in zip(rows.tolist(), distances.tolist(), strict=True):
                        entry_id = int(loaded.pdq_ids[hit_row])
                        hits[owners[row]].append((loaded, entry_id, SignalType.PDQ, int(distance), variants[row]))
            if near is not None and loaded.pdq_index is not None and len(codes) and len(loaded.pdq_index):
                closest = _nearest_of(loaded, codes, owners, variants, len(queries), scope.nearest)
                for q, per_query in enumerate(closest):
                    near[q].extend(per_query)
            for q, query in enumerate(queries):
                for signal, value in query.exact().items():
                    for entry_id in loaded.exact.get(signal, {}).get(value, []):
                        hits[q].append((loaded, entry_id, signal, 0, None))
        # One evidence query per batch, whatever the number of matches: a flood of re-uploads of one listed
        # image must cost what a flood of unlisted ones does.
        wanted = {h[1] for per_query in hits + (near or []) for h in per_query}
        evidence = self.store.evidence(wanted)
        elapsed = (time.perf_counter() - started) * 1000.0 / max(1, len(queries))
        versions = {loaded.spec.name: loaded.version for loaded in lists}
        verdicts = [
            self._verdict(query, per_query, evidence, is_gated, elapsed, versions)
            for query, per_query, is_gated in zip(queries, hits, gated, strict=True)
        ]
        if near is None:
            return verdicts
        return [
            replace(verdict, nearest=tuple(_entries(per_query, evidence)))
            for verdict, per_query in zip(verdicts, near, strict=True)
        ]

    def _verdict(
        self,
        query: QueryHashes,
        hits: list[Hit],
        evidence: dict[int, tuple[str | None, str | None]],
        gated: bool,
        elapsed_ms: float,
        list_versions: dict[str, int],
    ) -> Verdict:
        ordered = _entries(hits, evidence)
        negative = tuple(m for m in ordered if m.negative)
        positive = [m for m in ordered if not m.negative]
        # A known false positive explains a perceptual match only if the query is at least as close to it as to
        # the listed entry; exact-digest matches always stand.
        closest_negative = min((m.distance for m in negative if m.signal_type is SignalType.PDQ), default=None)
        suppressed: tuple[MatchedEntry, ...] = ()
        if closest_negative is not None:
            suppressed = tuple(
                m for m in positive if m.signal_type is SignalType.PDQ and m.distance >= closest_negative
            )
            positive = [m for m in positive if m not in suppressed]
        if not positive:
            decision = Decision.NO_MATCH
        elif any(m.action is not ListAction.REVIEW for m in positive):
            decision = Decision.MATCH
        else:
            decision = Decision.NEEDS_REVIEW
        return Verdict(
            decision=decision,
            matches=tuple(positive),
            query=query,
            list_versions=list_versions,
            suppressed=suppressed,
            negative_matches=negative,
            reasons=query.reasons + ((ReasonCode.QUALITY_TOO_LOW,) if gated else ()),
            elapsed_ms=elapsed_ms,
        )


def _entries(hits: list[Hit], evidence: dict[int, tuple[str | None, str | None]]) -> list[MatchedEntry]:
    """One entry per (list, entry) at the distance of the query's closest variant, by (distance, list, entry)."""
    best: dict[tuple[str, int], MatchedEntry] = {}
    for loaded, entry_id, signal, distance, variant in hits:
        # No evidence: the entry has no external id or classification, or its list was deleted meanwhile.
        external_id, classification = evidence.get(entry_id, (None, None))
        matched = MatchedEntry(
            list_name=loaded.spec.name,
            list_version=loaded.version,
            entry_id=entry_id,
            signal_type=signal,
            external_id=external_id,
            classification=classification,
            distance=distance,
            dihedral_variant=variant,
            action=loaded.spec.action,
            negative=loaded.spec.negative,
        )
        key = (loaded.spec.name, entry_id)
        if key not in best or matched.distance < best[key].distance:
            best[key] = matched  # the closest variant of the query is the evidence
    return sorted(best.values(), key=lambda m: (m.distance, m.list_name, m.entry_id))


def _nearest_of(
    loaded: LoadedList, codes: np.ndarray, owners: list[int], variants: list[str | None], n_queries: int, k: int
) -> list[list[Hit]]:
    """Each query's k closest entries of one list over all its variants, ties settled by row as the index
    settles them: the k best of each variant's k best are the k best of their union."""
    assert loaded.pdq_index is not None
    found = loaded.pdq_index.nearest(codes, k)
    best: list[dict[int, tuple[int, str | None]]] = [{} for _ in range(n_queries)]
    for code_row in range(len(codes)):
        per_entry = best[owners[code_row]]
        for row, distance in zip(found.rows[code_row].tolist(), found.distances[code_row].tolist(), strict=True):
            if row not in per_entry or distance < per_entry[row][0]:
                per_entry[row] = (distance, variants[code_row])
    result: list[list[Hit]] = []
    for per_entry in best:
        closest = sorted(per_entry.items(), key=lambda item: (item[1][0], item[0]))[:k]
        result.append([(loaded, int(loaded.pdq_ids[row]), SignalType.PDQ, d, variant) for row, (d, variant) in closest])
    return result


def _query_codes(
    queries: list[QueryHashes], gated: list[bool], dihedral: bool
) -> tuple[np.ndarray, list[int], list[str | None]]:
    """Stack every query's PDQ code (or its 8 variants) for one search; remember owner and variant."""
    rows: list[bytes] = []
    owners: list[int] = []
    variants: list[str | None] = []
    for q, query in enumerate(queries):
        if query.pdq is None or gated[q]:
            continue
        if query.dihedral and dihedral:
            for name, variant in zip(DIHEDRAL_NAMES, query.dihedral, strict=True):
                rows.append(variant.digest)
                owners.append(q)
                variants.append(name)
        else:
            rows.append(query.pdq.digest)
            owners.append(q)
            variants.append(None)
    codes = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32)
    return codes, owners, variants
