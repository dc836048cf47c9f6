"""From hashed inputs to durable result lines, the same for every way a scan runs (worker processes here, or
actors on a Ray cluster): match the hashed inputs in one batch, give each exact duplicate its original's
result once that is known, count, and commit the batch to the journal as one checkpoint."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from engine.matcher import Matcher, MatchScope, QueryHashes
from engine.scan.journal import ScanJournal
from engine.scan.progress import ProgressReporter, ScanCounters
from engine.scan.records import Decision, ScanRecord
from engine.scan.workers import WorkerResult
from engine.signals import ParsedValue, SignalType
from hashing.pdq_hash import PdqHash
from hashing.vpdq import FRAME_DTYPE

Finished = tuple[ScanRecord, bool]  # a result line, and whether its input was hashed in this run


def records_of(results: list[WorkerResult], matcher: Matcher, scope: MatchScope) -> list[Finished]:
    """The result lines of inputs that are not duplicates: one index search per list for all of them."""
    readable = [r for r in results if r.problem is None]
    verdicts = iter(matcher.match_many([_query(r) for r in readable], scope))
    records = []
    for result in results:
        if result.problem is not None:
            record = ScanRecord(result.label, Decision.ERROR, result.size, result.content_type, error=result.problem)
        else:
            verdict = next(verdicts)
            digests = result.digests
            assert digests is not None  # readable results have digests
            record = ScanRecord(
                path=result.label,
                decision=Decision(verdict.decision.value),
                size=result.size,
                type=result.content_type,
                md5=digests.md5,
                sha1=digests.sha1,
                sha256=digests.sha256,
                pdq=result.pdq,
                quality=result.quality,
                matches=tuple(m.to_dict() for m in verdict.matches),
                reasons=verdict.reasons,
                detail=result.no_pdq.detail if result.no_pdq is not None else None,
                vpdq_frames=len(result.vpdq) // FRAME_DTYPE.itemsize if result.vpdq is not None else None,
            )
        records.append((record, result.hashed))
    return records


def _query(result: WorkerResult) -> QueryHashes:
    digests = result.digests
    assert digests is not None
    pdq = PdqHash.from_hex(result.pdq, result.quality) if result.pdq is not None else None
    return QueryHashes.of_digests(
        digests,
        pdq=pdq,
        dihedral=tuple(PdqHash.from_hex(h, result.quality) for h in result.dihedral),
        variants=result.variants,
        reasons=(result.no_pdq.reason,) if result.no_pdq is not None else (),
        others=_video_value(result.vpdq),
    )


def _video_value(frames: bytes | None) -> dict[SignalType, ParsedValue]:
    if frames is None:
        return {}
    return {SignalType.VPDQ: ParsedValue(hashlib.sha256(frames).digest(), frames)}


class Committer:
    """Commits finished inputs to the journal in checkpoints, holding back each duplicate until its original
    has a line (the original may still be in flight, or in a batch not committed yet)."""

    def __init__(self, journal: ScanJournal, counters: ScanCounters, reporter: ProgressReporter | None) -> None:
        self.journal = journal
        self.counters = counters
        self.reporter = reporter
        self._waiting: dict[str, list[WorkerResult]] = {}  # original's label -> its duplicates

    def commit(self, finished: list[Finished], duplicates: list[WorkerResult], final: bool = False) -> None:
        for duplicate in duplicates:
            assert duplicate.duplicate_of is not None
            self._waiting.setdefault(duplicate.duplicate_of, []).append(duplicate)
        by_label = {record.path: record for record, _ in finished}
        records = finished + self._resolved(by_label)
        if not records and not final:
            return
        self._count(records)
        self.journal.add(records, (round(self.counters.elapsed(), 3), self.counters.done))
        if self.reporter is not None:
            self.reporter.update(self.counters)

    def _resolved(self, batch: dict[str, ScanRecord]) -> list[Finished]:
        resolved = []
        for original in list(self._waiting):
            record = batch.get(original) or self.journal.record_of(original)
            if record is None:
                continue  # its original is still in flight
            for duplicate in self._waiting.pop(original):
                copy = replace(record, path=duplicate.label, duplicate_of=original, type=duplicate.content_type)
                resolved.append((copy, False))
        return resolved

    def _count(self, records: list[Finished]) -> None:
        for record, hashed in records:
            self.counters.done += 1
            self.counters.hashed += int(hashed)
            self.counters.bytes += record.size or 0
            self.counters.matches += record.decision in (Decision.MATCH, Decision.NEEDS_REVIEW)
            self.counters.errors += record.decision is Decision.ERROR
