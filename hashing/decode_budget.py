"""A budget for the memory that decoding takes: a server decodes at once only what fits.

An upload's cost is estimated from its header before any pixel is decoded (`hashing.decode.decode_cost`):
a 257 KB zero-filled PNG can claim 88 MP, and decoding six of those at once took a server from 290 MB to
7.2 GB. Callers reserve their cost; one that does not fit waits until it does, for at most `max_wait_s`,
then fails with OVERLOADED (the service answers RESOURCE_EXHAUSTED: retry later). A cost above the whole
budget can never fit and is TOO_LARGE. Whatever fits goes first: a queue of maximum-size images (the attack)
must not hold back the ordinary uploads of everyone else; a large image waits for room instead, and is
refused in words when there is none in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hashing.errors import HashmatchError, MediaError, ReasonCode


class OverloadedError(HashmatchError):
    """The budget stayed full for longer than the caller may wait."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.OVERLOADED, message)


class DecodeBudget:
    def __init__(self, capacity_bytes: int, max_wait_s: float = 10.0) -> None:
        if capacity_bytes < 1:
            raise ValueError("a decode budget is at least one byte")
        self.capacity = capacity_bytes
        self.max_wait_s = max_wait_s
        self._used = 0
        self._peak = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        """The most bytes ever reserved at once."""
        return self._peak

    @contextmanager
    def reserve(self, cost: int) -> Iterator[None]:
        if cost > self.capacity:
            raise MediaError(
                ReasonCode.TOO_LARGE,
                f"decoding it takes about {cost >> 20} MiB, more than this server's decode budget of "
                f"{self.capacity >> 20} MiB",
            )
        self._acquire(cost)
        try:
            yield
        finally:
            with self._changed:
                self._used -= cost
                self._changed.notify_all()

    def _acquire(self, cost: int) -> None:
        deadline = time.monotonic() + self.max_wait_s
        with self._changed:
            while self._used + cost > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OverloadedError(
                        f"the server's decode budget ({self.capacity >> 20} MiB) had no room for this input's "
                        f"{cost >> 20} MiB for {self.max_wait_s:g} s; retry later"
                    )
                self._changed.wait(left)
            self._used += cost
            self._peak = max(self._peak, self._used)
