"""Micro-batching: concurrent lookups wait a moment to share one index search.

The multi-index answers a batch of 1,000 queries about as fast as a few dozen single ones, so requests that
arrive together are matched together. The window is a deadline set by the first arrival: a batch closes
`max_wait_s` after its first lookup came, or at `max_batch` lookups, whichever is first. Later arrivals
never extend it, so under a steady trickle no caller waits longer than the window plus one search. Lookups
with different scopes (lists, dihedral, quality gate) in one batch are searched per scope. After
`close()`, queued and new lookups fail at once with ServerShuttingDownError instead of waiting for a worker
that is gone.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from engine.matcher import EVERYTHING, MatchScope, QueryHashes, Verdict

Lookup = tuple[QueryHashes, MatchScope, Future[Verdict]]


class ServerShuttingDownError(RuntimeError):
    """The batcher was closed: the server is shutting down."""


class MatchBatcher:
    def __init__(
        self,
        match_many: Callable[[list[QueryHashes], MatchScope], list[Verdict]],
        max_batch: int = 256,
        max_wait_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._match_many = match_many
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._queue: queue.Queue[Lookup | None] = queue.Queue()
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._run, name="hashmatch-batcher", daemon=True)
        self._worker.start()

    def submit(self, query: QueryHashes, scope: MatchScope = EVERYTHING) -> Future[Verdict]:
        future: Future[Verdict] = Future()
        if self._closed.is_set():
            future.set_exception(ServerShuttingDownError("the server is shutting down"))
        else:
            self._queue.put((query, scope, future))
        return future

    def match(self, query: QueryHashes, scope: MatchScope = EVERYTHING, timeout: float | None = None) -> Verdict:
        return self.submit(query, scope).result(timeout)

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)
        self._worker.join()
        self._fail_queued()

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[2].set_exception(ServerShuttingDownError("the server is shutting down"))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first, self._clock() + self.max_wait_s)
            self._answer(batch)
            if stop:
                return

    def _gather(self, first: Lookup, deadline: float) -> tuple[list[Lookup], bool]:
        """The batch that `first` opened: whatever arrives before its deadline, up to max_batch."""
        batch = [first]
        while len(batch) < self.max_batch:
            left = deadline - self._clock()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _answer(self, batch: list[Lookup]) -> None:
        by_scope: dict[MatchScope, list[Lookup]] = {}
        for lookup in batch:
            by_scope.setdefault(lookup[1], []).append(lookup)
        for scope, lookups in by_scope.items():
            try:
                verdicts = self._match_many([query for query, _, _ in lookups], scope)
            except Exception as exc:  # a failed batch fails its callers, never the worker
                for _, _, future in lookups:
                    future.set_exception(exc)
                continue
            for (_, _, future), verdict in zip(lookups, verdicts, strict=True):
                future.set_result(verdict)
