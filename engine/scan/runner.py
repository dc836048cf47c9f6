"""The scan loop: the walker's inputs to worker processes, their answers matched in batches, each batch one
durable checkpoint in the journal.

The parent walks (reading archive members itself; plain files are opened only by the workers, which hand
archives on disk back to be expanded), keeps at most two inputs per worker in flight, and matches what comes
back in batches of `checkpoint_items` (one index search per list per batch). Inputs already in the journal
are skipped, so rerunning the command resumes the scan. An exact duplicate's line is written once the input
it duplicates has its own, with that input's result. Ctrl-C stops the walk, lets the inputs in flight
finish, and checkpoints: nothing done is lost.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, MutableMapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.matcher import EVERYTHING, Matcher, MatchScope
from engine.scan.census import Census
from engine.scan.committer import Committer, records_of
from engine.scan.journal import ScanJournal, label_key
from engine.scan.progress import ProgressReporter, ScanCounters
from engine.scan.records import ScanItem
from engine.scan.sources import ArchiveLimits, archive_members, walk
from engine.scan.workers import (
    ClaimsUnavailableError,
    ManagerClaims,
    WorkerResult,
    hash_item_or_internal,
    hash_task_in_worker,
    internal_result,
    start_worker,
    state_for,
)
from hashing.errors import HashmatchError, ReasonCode
from hashing.media_hasher import HashOptions

TASK_FILES = 4  # plain files per worker task


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
        self.committer = Committer(journal, self.counters, reporter)
        self._pending: list[WorkerResult] = []
        self._last_checkpoint = time.monotonic()
        self._stop = threading.Event()
        self._broken = False  # a worker process died: the pool must be replaced
        self._retry: list[ScanItem] = []  # inputs in flight when a worker died, to be tried again alone
        self._retried: set[str] = set()
        self._archives: deque[Iterator[ScanItem]] = deque()  # archives on disk whose members are still to come
        self._walker: Iterator[ScanItem] = iter(())
        self._done: set[bytes] = set()
        self._done_archives: set[bytes] = set()
        self._census: Census | None = None
        self._held: ScanItem | None = None  # an archive member that goes in the next task, alone
        self._top_level_sizes: dict[str, int] = {}  # files from the walk under way: label -> size

    def run(self, paths: Sequence[Path]) -> ScanRun:
        self._done = self.journal.done_labels()
        self._done_archives = self.journal.done_archives()
        # Plain files are not opened here: the workers read them anyway, sniff them, and hand archives back.
        self._walker = walk(paths, self.settings.limits, sniff=False)
        with stop_on_interrupt() as stop:
            self._stop = stop
            if self.reporter is not None:  # before the workers, while this process has one thread (fork is safe)
                self._census = Census(_process_context(), paths, self.settings.limits)
            try:
                if self.settings.workers == 0:
                    self._run_here()
                else:
                    self._run_in_workers()
            except KeyboardInterrupt:  # where no handler could be installed (not the main thread)
                stop.set()
            finally:
                if self._census is not None:
                    self._census.close()
        self._checkpoint(final=True)
        if self.reporter is not None:
            self.reporter.finish(self.counters)
        return ScanRun(stop.is_set(), self.counters)

    def _next_input(self) -> ScanItem | None:
        """The next input not done yet: members of the archives found so far first, then the walk. None when
        both are exhausted (more archives may still come back from inputs in flight)."""
        while True:
            top_level = not self._archives
            if self._archives:
                item = next(self._archives[0], None)
                if item is None:
                    self._archives.popleft()
                    continue
            else:
                item = next(self._walker, None)
                if item is None:
                    return None
            done = self._already(item)  # (a done archive on disk queues its members here)
            if top_level:  # the files the census counts (archive members are inside them)
                self.counters.skipped_bytes += (item.size or 0) if done else 0
                if not done:  # counted when its answer comes (_take): the ETA's rate is of inputs finished
                    self._top_level_sizes[item.label] = item.size or 0
            if not done:
                return item

    def _already(self, item: ScanItem) -> bool:
        key = label_key(item.label)
        if key not in self._done:
            return False
        self.counters.skipped += 1
        if key in self._done_archives and item.path is not None:  # done before: its members may not be
            self._archives.append(archive_members(item.path, self.settings.limits))
        return True

    def _run_here(self) -> None:
        state = state_for(self.settings.hash_options, self._claims_from_journal({}))
        while not self._stop.is_set() and (item := self._next_input()) is not None:
            self._take(hash_item_or_internal(item, state))

    def _next_task(self) -> list[ScanItem]:
        """Up to TASK_FILES plain files for one worker task; an archive member (its bytes already in memory)
        goes alone, so that the bytes in flight stay one member per task. Empty when nothing is left now."""
        task: list[ScanItem] = []
        while len(task) < TASK_FILES:
            item, self._held = (self._held, None) if self._held is not None else (self._next_input(), None)
            if item is None:
                break
            if item.data is not None:
                if task:
                    self._held = item  # the next task's
                else:
                    task.append(item)
                break
            task.append(item)
        return task

    def _run_in_workers(self) -> None:
        context = _process_context()
        with context.Manager() as manager:
            claims = self._claims_from_journal(ManagerClaims(manager.dict()))
            pool = self._pool(context, claims)
            in_flight: dict[Future[list[WorkerResult]], list[ScanItem]] = {}
            try:
                while not self._stop.is_set():
                    if len(in_flight) >= 2 * self.settings.workers:
                        self._collect(in_flight)
                        continue
                    task = self._next_task()
                    if not task:
                        if in_flight:
                            self._collect(in_flight)  # what is left may still hand back archives
                            continue
                        if not self._retry:
                            break
                        self._retry_alone(context, claims)
                        continue
                    if self._broken:  # a worker died: its pool is gone, a new one takes the rest
                        self._replace_pool(pool, in_flight, context, claims)
                        pool, self._broken = self._pool(context, claims), False
                    try:
                        future = pool.submit(hash_task_in_worker, task)
                    except BrokenProcessPool:  # it died after the last collect: the same, one step later
                        self._replace_pool(pool, in_flight, context, claims)
                        pool, self._broken = self._pool(context, claims), False
                        future = pool.submit(hash_task_in_worker, task)
                    in_flight[future] = task
            finally:
                # After Ctrl-C: the inputs in flight finish and are kept; the rest are the next run's.
                pool.shutdown(wait=True, cancel_futures=True)
                while in_flight:
                    self._collect(in_flight)

    def _replace_pool(
        self,
        pool: ProcessPoolExecutor,
        in_flight: dict[Future[list[WorkerResult]], list[ScanItem]],
        context: multiprocessing.context.BaseContext,
        claims: MutableMapping[str, str],
    ) -> None:
        """Finish with a pool: collect what is in flight, then retry alone what a dead worker took down."""
        while in_flight:
            self._collect(in_flight)
        pool.shutdown(wait=True, cancel_futures=True)
        self._retry_alone(context, claims)

    def _pool(
        self, context: multiprocessing.context.BaseContext, claims: MutableMapping[str, str], workers: int = 0
    ) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers or self.settings.workers,
            context,
            initializer=start_worker,
            initargs=(self.settings.hash_options, claims),
        )

    def _collect(self, in_flight: dict[Future[list[WorkerResult]], list[ScanItem]]) -> None:
        finished, _ = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
        for future in finished:
            task = in_flight.pop(future)
            if future.cancelled():
                continue  # never started (Ctrl-C): the next run does it
            for result in self._results_of(future, task):
                self._take(result)
        if not finished:
            self._checkpoint()  # a slow input must not hold back the results already in

    def _results_of(self, future: Future[list[WorkerResult]], task: list[ScanItem]) -> list[WorkerResult]:
        """The worker's answers. When a worker process dies (killed, out of memory, a crash in a decoder) every
        input in flight fails with it: each is retried on its own once (no answer now), and one that fails
        alone too gets an INTERNAL error line instead of ending the scan."""
        failure = future.exception()
        if failure is None:
            return future.result()
        if isinstance(failure, ClaimsUnavailableError):
            raise HashmatchError(
                ReasonCode.INTERNAL, "the process that shares the duplicate claims died; what was finished is kept"
            ) from failure
        if not isinstance(failure, BrokenProcessPool):
            return [
                internal_result(item, "an unexpected failure while hashing it (a bug: please report it)")
                for item in task
            ]
        self._broken = True
        self._retry += [item for item in task if item.label not in self._retried]
        died = "the process hashing it died (killed, out of memory, or a crash in a decoder)"
        return [internal_result(item, died) for item in task if item.label in self._retried]

    def _retry_alone(self, context: multiprocessing.context.BaseContext, claims: MutableMapping[str, str]) -> None:
        """The inputs a dead worker took down with it, one at a time, each in a fresh pool if need be."""
        # Claims made by the dead attempts, all of them before any retry: a retried input must not be taken
        # for a duplicate of another one that is still to be retried (and may die alone).
        stale = {item.label for item in self._retry}
        for sha256 in [key for key, label in claims.items() if label in stale]:
            del claims[sha256]
        while self._retry and not self._stop.is_set():
            item = self._retry.pop(0)
            self._retried.add(item.label)
            with self._pool(context, claims, workers=1) as pool:
                future = pool.submit(hash_task_in_worker, [item])
                wait([future])
                results = self._results_of(future, [item])
            for result in results:
                self._take(result)

    def _claims_from_journal(self, claims: MutableMapping[str, str]) -> MutableMapping[str, str]:
        claims.update(self.journal.hashed_digests())
        return claims

    def _take(self, result: WorkerResult) -> None:
        self.counters.input_bytes += self._top_level_sizes.pop(result.label, 0)
        if result.archive_on_disk:
            self._archives.append(archive_members(Path(result.label), self.settings.limits))
        self._pending.append(result)
        due = time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_seconds
        if due or len(self._pending) >= self.settings.checkpoint_items:
            self._checkpoint()

    def _checkpoint(self, final: bool = False) -> None:
        """Match the pending results and commit them (with the duplicates whose originals are now known)."""
        pending, self._pending = self._pending, []
        self._last_checkpoint = time.monotonic()
        if self._census is not None:
            self.counters.total_bytes = self._census.total_bytes()
        originals = [r for r in pending if r.duplicate_of is None]
        duplicates = [r for r in pending if r.duplicate_of is not None]
        finished = records_of(originals, self.matcher, self.settings.scope) if originals else []
        self.committer.commit(finished, duplicates, final)


def _process_context() -> multiprocessing.context.BaseContext:
    """fork starts workers in a fraction of a second (measured: the first result after 0.4 s against 1.3 s
    with forkserver, which re-imports everything in each worker), but forking a process that runs other
    threads can copy a lock held by one of them: then forkserver."""
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


@contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C sets a flag the loop checks between inputs, instead of raising wherever the main thread happens
    to be (in a commit, in the middle of a batch): the scan then stops at a clean point."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
