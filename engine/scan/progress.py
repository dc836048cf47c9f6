"""Progress of a long scan: a live line on a terminal, periodic JSON lines otherwise (a log, a pipeline)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class ScanCounters:
    done: int = 0  # inputs with a result line, this run
    skipped: int = 0  # already done by an earlier run of the same scan
    hashed: int = 0
    bytes: int = 0
    matches: int = 0  # inputs that matched (or need review)
    errors: int = 0  # inputs that could not be read at all
    total_bytes: int | None = None  # of the files under the paths (not archive members), once counted
    input_bytes: int = 0  # of those files done (or under way) in this run; their members are inside them
    skipped_bytes: int = 0  # of those files done by an earlier run
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return max(1e-9, time.monotonic() - self.started)

    def eta_seconds(self) -> float | None:
        """The bytes still ahead at this run's rate so far; None until both are known."""
        if self.total_bytes is None or self.input_bytes <= 0:
            return None
        remaining = max(0, self.total_bytes - self.input_bytes - self.skipped_bytes)
        return remaining / (self.input_bytes / self.elapsed())


class ProgressReporter:
    def __init__(self, stream: TextIO, live: bool, interval_s: float = 2.0) -> None:
        self.stream = stream
        self.live = live  # a terminal: one line rewritten in place
        self.interval_s = interval_s if not live else 0.2
        self._last = 0.0
        self._shown: tuple[int, int] | None = None  # (done, errors) last written: no repeated final line

    def update(self, counters: ScanCounters, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        if (counters.done, counters.errors) == self._shown:
            return
        self._last = now
        self._shown = (counters.done, counters.errors)
        seconds = counters.elapsed()
        eta = counters.eta_seconds()
        if self.live:
            self.stream.write(
                f"\r{counters.done:,} done ({counters.skipped:,} from before), {counters.done / seconds:,.0f}/s, "
                f"{counters.bytes / seconds / 1e6:,.1f} MB/s, {counters.matches:,} matches, "
                f"{counters.errors:,} errors, ETA {_duration(eta)}   "
            )
        else:
            event = {
                "event": "scan_progress",
                "done": counters.done,
                "skipped": counters.skipped,
                "hashed": counters.hashed,
                "inputs_per_s": round(counters.done / seconds, 1),
                "bytes_per_s": round(counters.bytes / seconds),
                "matches": counters.matches,
                "errors": counters.errors,
                "seconds": round(seconds, 1),
                "eta_s": None if eta is None else round(eta),
            }
            self.stream.write(json.dumps(event) + "\n")
        self.stream.flush()

    def finish(self, counters: ScanCounters) -> None:
        self.update(counters, force=True)
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "counting"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02}m" if hours else f"{rest // 60}m{rest % 60:02}s"
