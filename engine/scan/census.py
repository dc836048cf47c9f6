"""How many bytes a scan has ahead of it, counted in a separate process while the scan runs: the progress
display's ETA. A walk that only stats files is quick next to hashing, but on millions of files it still takes
a while, and the scan must not wait for it."""

from __future__ import annotations

import multiprocessing.connection
import multiprocessing.context
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from engine.scan.sources import ArchiveLimits, walk


class Census:
    def __init__(self, context: multiprocessing.context.BaseContext, paths: Sequence[Path], limits: ArchiveLimits):
        self._answer, sender = context.Pipe(duplex=False)
        self._process = context.Process(  # type: ignore[attr-defined]
            target=_count, args=(list(paths), limits, sender), name="hashmatch-census", daemon=True
        )
        self._process.start()
        sender.close()
        self._total: int | None = None

    def total_bytes(self) -> int | None:
        """The bytes of every plain file under the paths (archive members are inside those), once counted."""
        if self._total is None and not self._answer.closed and self._answer.poll():
            try:
                self._total = int(self._answer.recv())
            except (EOFError, OSError):  # the census died: the display goes without an ETA
                self._total = None
        return self._total

    def close(self) -> None:
        self.total_bytes()  # kept, if it came
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=2.0)  # stuck in the kernel on a hung mount: left to die on its own
        self._answer.close()


def _count(paths: list[Path], limits: ArchiveLimits, answer: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scan's to handle
    try:
        answer.send(sum(item.size or 0 for item in walk(paths, limits, sniff=False) if item.path is not None))
        answer.close()
    except BaseException:
        os._exit(1)
