"""Prevalence statistics: how many verdicts were served, by day, list, classification, signal type, decision
and dihedral variant, kept as counters in the store. There is no row per upload or per user and no column
that could hold an identifier: only these six dimensions and a count.

Each verdict counts once, under its closest match (a verdict that matched two lists counts under the closer
one), so the counts of a period add up to the verdicts served in it. A verdict with no match counts under
its decision with the other dimensions empty. Exports suppress small cells (fewer than `k` verdicts, 10 by
default), as public transparency reports do, so that a rare combination cannot single out an event.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from engine.audit.log import since_of
from engine.matcher import Decision, Verdict
from engine.store import Store
from hashing.errors import HashmatchError, ReasonCode

DIMENSIONS = ("day", "list", "classification", "signal_type", "decision", "variant")
DEFAULT_MIN_CELL = 10


class PrevalenceKey(NamedTuple):  # a tuple: hashed and compared in C, as every verdict is counted
    day: str
    list: str
    classification: str
    signal_type: str
    decision: str
    variant: str


def key_of(verdict: Verdict, day: str) -> PrevalenceKey:
    # StrEnum members stand for their values (as SQLite parameters and label values): `.value` is slow, and
    # this runs for every verdict served.
    if not verdict.matches:
        return PrevalenceKey(day, "", "", "", verdict.decision, "")
    best = verdict.matches[0]  # matches come closest first
    return PrevalenceKey(
        day,
        best.list_name,
        best.classification or "",
        best.signal_type,
        verdict.decision,
        best.dihedral_variant or "",
    )


def today() -> str:
    return datetime.now(UTC).date().isoformat()


class PrevalenceCounters:
    """Counts verdicts in memory and adds them to the store on `flush` (a server flushes every few seconds
    and at stop); `on_count` sees each key and its increment (the Prometheus counters)."""

    def __init__(
        self,
        store: Store,
        on_count: Callable[[PrevalenceKey, int], None] | None = None,
        day: Callable[[], str] = today,
    ) -> None:
        self.store = store
        self.on_count = on_count
        self.day = day
        self._pending: Counter[PrevalenceKey] = Counter()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def count(self, verdicts: Sequence[Verdict]) -> None:
        day = self.day()
        # Most verdicts match nothing and share one key: counted by their number, not one by one (this runs
        # on every call the server answers, and per-verdict keys cost a tenth of a hash lookup's time).
        matched = [verdict for verdict in verdicts if verdict.matches]
        keys = Counter(key_of(verdict, day) for verdict in matched)
        if len(matched) < len(verdicts):
            keys[PrevalenceKey(day, "", "", "", Decision.NO_MATCH, "")] += len(verdicts) - len(matched)
        with self._lock:
            self._pending.update(keys)
        if self.on_count is not None:
            for key, increment in keys.items():
                self.on_count(key, increment)

    def flush(self) -> int:
        """Adds what was counted since the last flush; the number of verdicts it added."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, Counter()
            if not pending:
                return 0
            try:
                with self.store.transaction() as db:
                    db.executemany(
                        "INSERT INTO prevalence (day, list, classification, signal_type, decision, variant, count) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, list, classification, signal_type, decision, "
                        "variant) DO UPDATE SET count = count + excluded.count",
                        [(*key, count) for key, count in pending.items()],
                    )
            except BaseException:
                with self._lock:  # nothing counted is lost: it waits for the next flush
                    self._pending.update(pending)
                raise
            return sum(pending.values())


@dataclass(frozen=True)
class Cell:
    key: dict[str, str]
    count: int | None  # None: suppressed (fewer than k)

    @property
    def suppressed(self) -> bool:
        return self.count is None


def parse_dimensions(text: str) -> tuple[str, ...]:
    wanted = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in wanted if name not in DIMENSIONS]
    if not wanted or unknown:
        said = f"unknown dimension {unknown[0]!r}; " if unknown else ""
        raise HashmatchError(ReasonCode.USAGE, said + f"--by takes some of {', '.join(DIMENSIONS)}")
    return wanted


def prevalence(
    store: Store, by: Sequence[str], since: str | None = None, until: str | None = None, k: int = DEFAULT_MIN_CELL
) -> list[Cell]:
    """Counts summed over the dimensions not in `by`, for days in [since, until]; cells under k suppressed."""
    if k < 1:
        raise HashmatchError(ReasonCode.USAGE, "the smallest cell shown (k) is at least 1")
    columns = ", ".join(parse_dimensions(",".join(by)))  # only known column names reach the SQL
    rows = store.db.execute(
        f"SELECT {columns}, SUM(count) FROM prevalence WHERE day >= ? AND day <= ? GROUP BY {columns} "
        f"ORDER BY {columns}",
        (since or "", until or "9999-12-31"),
    )
    cells = []
    for row in rows:
        *values, total = row
        cells.append(Cell(dict(zip(by, map(str, values), strict=True)), int(total) if total >= k else None))
    return cells


def first_day(since: str | None) -> str | None:
    """A user's `since` (a time or a date, any zone) as the UTC day counters are kept by; USAGE if neither."""
    moment = since_of(since)
    return None if moment is None else moment[:10]


def total_served(store: Store, since: str | None = None) -> int:
    """Every verdict counted since that day (for checks, never exported: it would undo the suppression)."""
    row = store.db.execute("SELECT COALESCE(SUM(count), 0) FROM prevalence WHERE day >= ?", (since or "",))
    return int(row.fetchone()[0])


def cells_to_json(cells: list[Cell], by: Sequence[str], k: int, since: str | None) -> str:
    return json.dumps(
        {
            "by": list(by),
            "since": since,
            "min_cell": k,
            "cells": [cell.key | {"count": cell.count, "suppressed": cell.suppressed} for cell in cells],
        },
        indent=2,
    )


def cells_to_csv(cells: list[Cell], by: Sequence[str], k: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*by, "count"])
    for cell in cells:
        writer.writerow([*(cell.key[name] for name in by), f"<{k}" if cell.count is None else cell.count])
    return out.getvalue()
