"""The scan loop: the walker's inputs to worker processes, their answers matched in batches, each batch one
durable checkpoint in the journal.

The parent walks (reading archive members itself, plain files only for their first bytes), keeps at most two
inputs per worker in flight, and matches what comes back in batches of `checkpoint_items` (one index search
per list per batch). Inputs already in the journal are skipped, so rerunning the command resumes the scan.
An exact duplicate's line is written once the input it duplicates has its own, with that input's result.
Ctrl-C stops the walk, lets the inputs in flight finish, and checkpoints: nothing done is lost.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterable, MutableMapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.matcher import EVERYTHING, Matcher, MatchScope, QueryHashes
from engine.scan.journal import ScanJournal, label_key
from engine.scan.progress import ProgressReporter, ScanCounters
from engine.scan.records import Decision, ScanItem, ScanRecord
from engine.scan.sources import ArchiveLimits, walk
from engine.scan.workers import WorkerResult, hash_in_worker, hash_item, start_worker, state_for
from hashing.media_hasher import HashOptions
from hashing.pdq_hash import PdqHash


@dataclass(frozen=True)
class ScanSettings:
    workers: int = 1  # processes; 0 hashes in this process (tests, debugging)
    hash_options: HashOptions = field(default_factory=HashOptions)
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    scope: MatchScope = EVERYTHING
    checkpoint_items: int = 64  # results per durable commit (an interruption redoes at most these)
    checkpoint_seconds: float = 1.0


@dataclass(frozen=True)
class ScanRun:
    interrupted: bool
    counters: ScanCounters


class ScanRunner:
    def __init__(
        self, matcher: Matcher, journal: ScanJournal, settings: ScanSettings, reporter: ProgressReporter | None = None
    ) -> None:
        self.matcher = matcher
        self.journal = journal
        self.settings = settings
        self.reporter = reporter
        self.counters = ScanCounters()
        self._pending: list[WorkerResult] = []
        self._waiting: dict[str, list[WorkerResult]] = {}  # original's label -> its duplicates
        self._last_checkpoint = time.monotonic()

    def run(self, paths: Sequence[Path]) -> ScanRun:
        done = self.journal.done_labels()
        items = (item for item in walk(paths, self.settings.limits) if not self._already(item, done))
        interrupted = False
        try:
            if self.settings.workers == 0:
                self._run_here(items)
            else:
                self._run_in_workers(items)
        except KeyboardInterrupt:
            interrupted = True
        self._checkpoint(final=True)
        if self.reporter is not None:
            self.reporter.finish(self.counters)
        return ScanRun(interrupted, self.counters)

    def _already(self, item: ScanItem, done: set[str]) -> bool:
        if label_key(item.label) in done:
            self.counters.skipped += 1
            return True
        return False

    def _run_here(self, items: Iterable[ScanItem]) -> None:
        state = state_for(self.settings.hash_options, self._claims_from_journal({}))
        for item in items:
            self._take(hash_item(item, state))

    def _run_in_workers(self, items: Iterable[ScanItem]) -> None:
        # forkserver: workers start from a clean process, not a fork of this one and its threads.
        context = multiprocessing.get_context("forkserver")
        with context.Manager() as manager:
            claims = self._claims_from_journal(manager.dict())
            pool = ProcessPoolExecutor(
                self.settings.workers, context, initializer=start_worker, initargs=(self.settings.hash_options, claims)
            )
            in_flight: set[Future[WorkerResult]] = set()
            try:
                for item in items:
                    while len(in_flight) >= 2 * self.settings.workers:
                        in_flight = self._collect(in_flight)
                    in_flight.add(pool.submit(hash_in_worker, item))
                while in_flight:
                    in_flight = self._collect(in_flight)
            finally:
                # After Ctrl-C: inputs not started are dropped (the next run does them); those running finish
                # and are kept.
                pool.shutdown(wait=True, cancel_futures=True)
                for future in in_flight:
                    if future.done() and not future.cancelled() and future.exception() is None:
                        self._pending.append(future.result())

    def _collect(self, in_flight: set[Future[WorkerResult]]) -> set[Future[WorkerResult]]:
        finished, still = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
        for future in finished:
            self._take(future.result())
        if not finished:
            self._checkpoint()  # a slow input must not hold back the results already in
        return still

    def _claims_from_journal(self, claims: MutableMapping[str, str]) -> MutableMapping[str, str]:
        claims.update(self.journal.hashed_digests())
        return claims

    def _take(self, result: WorkerResult) -> None:
        self._pending.append(result)
        due = time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_seconds
        if due or len(self._pending) >= self.settings.checkpoint_items:
            self._checkpoint()

    def _checkpoint(self, final: bool = False) -> None:
        """Match the pending results, resolve the duplicates whose originals are now known, commit."""
        pending, self._pending = self._pending, []
        for result in pending:
            if result.duplicate_of is not None:
                self._waiting.setdefault(result.duplicate_of, []).append(result)
        records = self._records([r for r in pending if r.duplicate_of is None])
        by_label = {record.path: record for record, _ in records}
        records += self._resolved_duplicates(by_label)
        self._last_checkpoint = time.monotonic()
        if not records and not final:
            return
        self._count(records)
        self.journal.add(records, (round(self.counters.elapsed(), 3), self.counters.done))
        if self.reporter is not None:
            self.reporter.update(self.counters)

    def _resolved_duplicates(self, batch: dict[str, ScanRecord]) -> list[tuple[ScanRecord, bool]]:
        resolved = []
        for original in list(self._waiting):
            record = batch.get(original) or self.journal.record_of(original)
            if record is None:
                continue  # its original is still in flight
            for duplicate in self._waiting.pop(original):
                copy = replace(record, path=duplicate.label, duplicate_of=original, type=duplicate.content_type)
                resolved.append((copy, False))
        return resolved

    def _records(self, results: list[WorkerResult]) -> list[tuple[ScanRecord, bool]]:
        readable = [r for r in results if r.problem is None]
        verdicts = iter(self.matcher.match_many([_query(r) for r in readable], self.settings.scope))
        records = []
        for result in results:
            if result.problem is not None:
                record = ScanRecord(
                    result.label, Decision.ERROR, result.size, result.content_type, error=result.problem
                )
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
                )
            records.append((record, result.hashed))
        return records

    def _count(self, records: list[tuple[ScanRecord, bool]]) -> None:
        for record, hashed in records:
            self.counters.done += 1
            self.counters.hashed += int(hashed)
            self.counters.bytes += record.size or 0
            self.counters.matches += record.decision in (Decision.MATCH, Decision.NEEDS_REVIEW)
            self.counters.errors += record.decision is Decision.ERROR


def _query(result: WorkerResult) -> QueryHashes:
    digests = result.digests
    assert digests is not None
    pdq = PdqHash.from_hex(result.pdq, result.quality) if result.pdq is not None else None
    return QueryHashes(
        pdq=pdq,
        dihedral=tuple(PdqHash.from_hex(h, result.quality) for h in result.dihedral),
        md5=bytes.fromhex(digests.md5),
        sha1=bytes.fromhex(digests.sha1),
        sha256=bytes.fromhex(digests.sha256),
        reasons=(result.no_pdq.reason,) if result.no_pdq is not None else (),
    )
