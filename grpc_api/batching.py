"""Micro-batched index lookups: concurrent requests share one index search (hashing.micro_batching).

The multi-index answers a batch of 1,000 queries about as fast as a few dozen single ones, so requests that
arrive together are matched together: a batch closes 2 ms after its first lookup arrived, or at 256
lookups. Lookups with different scopes (lists, dihedral, quality gate) are searched per scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future

from engine.matcher import EVERYTHING, MatchScope, QueryHashes, Verdict
from hashing.micro_batching import MicroBatcher, ServerShuttingDownError

__all__ = ["MatchBatcher", "ServerShuttingDownError"]


class MatchBatcher(MicroBatcher[QueryHashes, MatchScope, Verdict]):
    def __init__(
        self,
        match_many: Callable[[list[QueryHashes], MatchScope], list[Verdict]],
        max_batch: int = 256,
        max_wait_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(match_many, max_batch, max_wait_s, clock, name="hashmatch-batcher")

    def submit(self, query: QueryHashes, key: MatchScope = EVERYTHING) -> Future[Verdict]:
        return super().submit(query, key)

    def match(self, query: QueryHashes, scope: MatchScope = EVERYTHING, timeout: float | None = None) -> Verdict:
        return self.submit(query, scope).result(timeout)
