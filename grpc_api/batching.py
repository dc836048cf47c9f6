"""Micro-batching: concurrent lookups wait a moment to share one index search.

The multi-index answers a batch of 1,000 queries about as fast as a few dozen single ones, so requests that
arrive together are matched together: the first waits at most `max_wait_s` for company, a batch holds at
most `max_batch` queries. After `close()`, queued and new lookups fail at once with
ServerShuttingDownError instead of waiting for a worker that is gone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from engine.matcher import QueryHashes, Verdict


class ServerShuttingDownError(RuntimeError):
    """The batcher was closed: the server is shutting down."""


class MatchBatcher:
    def __init__(
        self,
        match_many: Callable[[list[QueryHashes]], list[Verdict]],
        max_batch: int = 256,
        max_wait_s: float = 0.002,
    ) -> None:
        self._match_many = match_many
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[tuple[QueryHashes, Future[Verdict]] | None] = queue.Queue()
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._run, name="hashmatch-batcher", daemon=True)
        self._worker.start()

    def submit(self, query: QueryHashes) -> Future[Verdict]:
        future: Future[Verdict] = Future()
        if self._closed.is_set():
            future.set_exception(ServerShuttingDownError("the server is shutting down"))
        else:
            self._queue.put((query, future))
        return future

    def match(self, query: QueryHashes, timeout: float | None = None) -> Verdict:
        return self.submit(query).result(timeout)

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
                item[1].set_exception(ServerShuttingDownError("the server is shutting down"))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            try:
                while len(batch) < self.max_batch:
                    item = self._queue.get(timeout=self.max_wait_s)
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
            except queue.Empty:
                pass
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list[tuple[QueryHashes, Future[Verdict]]]) -> None:
        try:
            verdicts = self._match_many([query for query, _ in batch])
        except Exception as exc:  # a failed batch fails its callers, never the worker
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), verdict in zip(batch, verdicts, strict=True):
            future.set_result(verdict)
