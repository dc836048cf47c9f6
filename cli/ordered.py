"""Work on many inputs at once, answered in input order: a pool of threads with a bounded window in flight,
so output streams and memory stays flat over any number of inputs (hash and match share it)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Input = TypeVar("Input")
Output = TypeVar("Output")


def in_order(
    items: Iterable[Input], work: Callable[[Input], Output], workers: int, window: int
) -> Iterator[Future[Output]]:
    """Futures of `work(item)` in input order, at most `window` in flight."""
    pending: deque[Future[Output]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hashmatch-work") as pool:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
