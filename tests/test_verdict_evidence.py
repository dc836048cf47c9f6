"""A verdict's evidence costs the same few queries whatever the number of matches in the batch."""

from __future__ import annotations

import numpy as np

from engine.importers.records import ParsedRecord
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.matcher import Matcher, QueryHashes
from engine.signals import SignalType
from engine.store import Store
from hashing.pdq_hash import PdqHash

ROWS = 3000


def _store() -> tuple[Store, np.ndarray]:
    codes = np.random.default_rng(7).integers(0, 256, (ROWS, 32), dtype=np.uint8)
    store = Store(":memory:")
    store.create_list(HashList("ncmec", SourceProgramme.NCMEC, frozenset({SignalType.PDQ, SignalType.MD5})))
    records = [
        ParsedRecord(i + 1, bytes(c).hex(), external_id=f"N-{i}", classification="A1") for i, c in enumerate(codes)
    ]
    import_records(store, "ncmec", records)
    return store, codes


def _statements_during(store: Store, work: object) -> list[str]:
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    try:
        work()  # type: ignore[operator]
    finally:
        store.db.set_trace_callback(None)
    return statements


def test_a_batch_of_matches_reads_its_evidence_in_one_query() -> None:
    store, codes = _store()
    matcher = Matcher.from_store(store)
    queries = [QueryHashes(pdq=PdqHash(bytes(codes[i]), 100)) for i in range(0, ROWS, 3)]  # 1,000 matching
    verdicts: list[object] = []
    statements = _statements_during(store, lambda: verdicts.extend(matcher.match_many(queries)))
    assert len(statements) <= 2, statements
    for i, verdict in zip(range(0, ROWS, 3), verdicts, strict=True):
        (match,) = verdict.matches  # type: ignore[attr-defined]
        assert (match.external_id, match.classification, match.distance) == (f"N-{i}", "A1", 0)


def test_a_batch_without_matches_reads_nothing() -> None:
    store, _ = _store()
    matcher = Matcher.from_store(store)
    misses = np.random.default_rng(8).integers(0, 256, (200, 32), dtype=np.uint8)
    queries = [QueryHashes(pdq=PdqHash(bytes(c), 100)) for c in misses]
    assert len(_statements_during(store, lambda: matcher.match_many(queries))) <= 1
