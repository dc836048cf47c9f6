"""The micro-batcher's window is a deadline set by the first arrival, never extended by later ones."""

from __future__ import annotations

import threading
import time

from engine.matcher import EVERYTHING, MatchScope, QueryHashes, Verdict
from grpc_api.batching import MatchBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[int, MatchScope]] = []

    def __call__(self, queries: list[QueryHashes], scope: MatchScope) -> list[Verdict]:
        self.batches.append((len(queries), scope))
        return [Verdict.__new__(Verdict) for _ in queries]  # the batcher only hands them back


def test_a_steady_trickle_does_not_hold_the_first_caller_back() -> None:
    """One lookup every 1.2 ms used to keep restarting a 2 ms wait: the first caller waited 274 ms."""
    recorder = Recorder()
    batcher = MatchBatcher(recorder, max_batch=256, max_wait_s=0.002)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            batcher.submit(QueryHashes())
            time.sleep(0.0012)

    feeder = threading.Thread(target=trickle)
    feeder.start()
    try:
        time.sleep(0.05)  # the trickle is flowing
        started = time.perf_counter()
        batcher.match(QueryHashes(), timeout=5)
        waited = time.perf_counter() - started
    finally:
        stop.set()
        feeder.join()
        batcher.close()
    assert waited < 0.05, f"the first caller waited {waited * 1e3:.0f} ms"
    assert max(size for size, _ in recorder.batches) < 64  # batches close on time, they do not grow to 256


def test_the_deadline_comes_from_the_first_arrival() -> None:
    now = [0.0]
    recorder = Recorder()
    batcher = MatchBatcher(recorder, max_batch=256, max_wait_s=0.002, clock=lambda: now[0])
    try:
        first = batcher.submit(QueryHashes())
        time.sleep(0.05)  # the worker gathers with the fake clock standing still: nothing closes the batch...
        now[0] = 0.003  # ...until the clock passes the first arrival's deadline
        batcher.submit(QueryHashes()).result(timeout=5)
        first.result(timeout=5)
    finally:
        batcher.close()
    assert sum(size for size, _ in recorder.batches) == 2


def test_lookups_with_different_scopes_are_searched_apart() -> None:
    recorder = Recorder()
    batcher = MatchBatcher(recorder, max_batch=256, max_wait_s=0.05)
    narrow = MatchScope(lists=frozenset({"a"}), dihedral=False, quality_gate=70)
    try:
        futures = [batcher.submit(QueryHashes(), narrow if i % 2 else EVERYTHING) for i in range(6)]
        for future in futures:
            future.result(timeout=5)
    finally:
        batcher.close()
    assert sorted(recorder.batches, key=lambda b: b[1] == narrow) == [(3, EVERYTHING), (3, narrow)]


def test_several_workers_each_take_batches_and_all_stop_on_close() -> None:
    from hashing.micro_batching import MicroBatcher, ServerShuttingDownError

    seen: set[str] = set()
    inside = threading.Barrier(2, timeout=5)  # both workers must hold a batch at the same time

    def double(items: list[int], key: str) -> list[int]:
        seen.add(threading.current_thread().name)
        inside.wait()
        return [2 * item for item in items]

    batcher: MicroBatcher[int, str, int] = MicroBatcher(double, max_batch=1, max_wait_s=0.0, workers=2)
    futures = [batcher.submit(number, "k") for number in range(2)]
    assert [f.result(timeout=10) for f in futures] == [0, 2]
    assert len(seen) == 2
    batcher.close()
    late = batcher.submit(3, "k")
    assert isinstance(late.exception(timeout=1), ServerShuttingDownError)
