"""Micro-batching: calls that arrive together from many threads are answered by one batched call.

The window is a deadline set by the first arrival: a batch closes `max_wait_s` after its first item came,
or at `max_batch` items, whichever is first. Later arrivals never extend it, so under a steady trickle no
caller waits longer than the window plus one batch. Items with different keys in one batch are processed
apart (one call per key). After `close()`, queued and new items fail at once with ServerShuttingDownError
instead of waiting for a worker that is gone. With `workers` > 1, that many threads each gather and process
batches, so one batch can be prepared while another is processed (the GPU hasher's feeding threads).

Used for index lookups (grpc_api.batching) and for hashing on the GPU (hashing.pdq_gpu), where one launch
for 64 images costs about what one for a single image does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)


class ServerShuttingDownError(RuntimeError):
    """The batcher was closed: the server is shutting down."""


class MicroBatcher(Generic[Item, Key, Result]):
    def __init__(
        self,
        process: Callable[[list[Item], Key], list[Result]],
        max_batch: int = 256,
        max_wait_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
        name: str = "hashmatch-batcher",
        workers: int = 1,
    ) -> None:
        self._process = process
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._queue: queue.Queue[tuple[Item, Key, Future[Result]] | None] = queue.Queue()
        self._closed = threading.Event()
        self._workers = [
            threading.Thread(target=self._run, name=f"{name}-{number}", daemon=True) for number in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, item: Item, key: Key) -> Future[Result]:
        future: Future[Result] = Future()
        if self._closed.is_set():
            future.set_exception(ServerShuttingDownError("the server is shutting down"))
        else:
            self._queue.put((item, key, future))
        return future

    def close(self) -> None:
        self._closed.set()
        for _ in self._workers:
            self._queue.put(None)  # one stop for each worker
        for worker in self._workers:
            worker.join()
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return
            if entry is not None:
                entry[2].set_exception(ServerShuttingDownError("the server is shutting down"))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first, self._clock() + self.max_wait_s)
            self._answer(batch)
            if stop:
                return

    def _gather(
        self, first: tuple[Item, Key, Future[Result]], deadline: float
    ) -> tuple[list[tuple[Item, Key, Future[Result]]], bool]:
        """The batch that `first` opened: whatever arrives before its deadline, up to max_batch."""
        batch = [first]
        while len(batch) < self.max_batch:
            left = deadline - self._clock()
            try:
                entry = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if entry is None:
                return batch, True
            batch.append(entry)
        return batch, False

    def _answer(self, batch: list[tuple[Item, Key, Future[Result]]]) -> None:
        by_key: dict[Key, list[tuple[Item, Key, Future[Result]]]] = {}
        for entry in batch:
            by_key.setdefault(entry[1], []).append(entry)
        for key, entries in by_key.items():
            try:
                results = self._process([item for item, _, _ in entries], key)
            except Exception as exc:  # a failed batch fails its callers, never the worker
                for _, _, future in entries:
                    future.set_exception(exc)
                continue
            for (_, _, future), result in zip(entries, results, strict=True):
                future.set_result(result)
