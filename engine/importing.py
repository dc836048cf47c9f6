"""Import parsed records into a new list version: validate, de-duplicate, diff against the latest version,
tombstone, and commit in one transaction. One bad entry never aborts an import; every reject is reported
with its line and reason."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from engine.importers.records import HexBatch, ParsedRecord, ParseResult, RejectedLine
from engine.lists import HashList
from engine.signals import (
    RejectReason,
    SignalType,
    SignalValueError,
    infer_signal_type,
    parse_signal,
    signal_type_named,
)
from engine.store import SEGMENT_ENTRIES, Store, now_utc

PROGRESS_EVERY = 100_000
_SIGNAL_TEXT = {signal: signal.value for signal in SignalType}


class ImportMode(StrEnum):
    REPLACE = "replace"  # the file is the whole list: live entries missing from it become tombstones
    DELTA = "delta"  # the file adds entries; its tombstones (deleted records) remove entries


@dataclass
class ImportReport:
    list_name: str
    version: int
    mode: ImportMode
    records_read: int = 0
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    total: int = 0
    rejects: list[RejectedLine] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def reject_counts(self) -> dict[str, int]:
        return dict(Counter(r.reason.value for r in self.rejects))


# An entry's identity within a list: the same hash under two external ids is two entries (two owners).
EntryKey = tuple[str, bytes, str]


class _LiveEntries:
    """Live entries of the base version: key -> entry id, and external id -> keys, for diffs and tombstones."""

    def __init__(self, store: Store, list_name: str, version: int) -> None:
        self.by_key: dict[EntryKey, int] = {}
        self.by_external_id: dict[str, list[EntryKey]] = {}
        if version == 0:
            return
        removed = store.removed_ids(list_name, version)
        for segment in store.segments(list_name, version):
            ids = segment.entry_ids
            meta = store.meta_range(int(ids[0]), int(ids[-1]))
            signal = segment.signal.value
            blob = segment.values.tobytes()
            width = segment.signal.byte_length
            live = ~np.isin(ids, removed)
            for i in np.flatnonzero(live).tolist():
                entry_id = int(ids[i])
                external_id = meta.get(entry_id, (None, None))[0] or ""
                key = (signal, blob[i * width : (i + 1) * width], external_id)
                self.by_key[key] = entry_id
                if external_id:
                    self.by_external_id.setdefault(external_id, []).append(key)


@dataclass
class _PendingSegment:
    values: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    meta: list[tuple[int, str | None, str | None]] = field(default_factory=list)  # (index, external id, class)


class _VersionBuilder:
    """Accumulates one new version inside the import transaction."""

    def __init__(
        self,
        db: sqlite3.Connection,
        hash_list: HashList,
        list_id: int,
        report: ImportReport,
        live: _LiveEntries,
        next_entry_id: int,
        default_64_hex: SignalType,
    ) -> None:
        self.db = db
        self.hash_list = hash_list
        self.list_id = list_id
        self.report = report
        self.live = live
        self.next_entry_id = next_entry_id
        self.default_64_hex = default_64_hex
        self.seen: set[EntryKey] = set()
        self.kept: set[EntryKey] = set()
        self.removed_ids: set[int] = set()
        self.pending: dict[str, _PendingSegment] = {}

    def reject(self, line: int, reason: RejectReason, detail: str) -> None:
        self.report.rejects.append(RejectedLine(line, reason, detail))

    def accept(self, line: int, signal: str, value: bytes, external_id: str | None, classification: str | None) -> None:
        key = (signal, value, external_id or "")
        if key in self.seen:
            self.reject(line, RejectReason.DUPLICATE, "the same hash and id appear on another line")
            return
        self.seen.add(key)
        if key in self.live.by_key:
            self.kept.add(key)
            self.report.unchanged += 1
            return
        pending = self.pending.get(signal)
        if pending is None:
            pending = self.pending[signal] = _PendingSegment()
        if external_id is not None or classification is not None:
            pending.meta.append((len(pending.values), external_id, classification))
        pending.values.append(value)
        pending.lines.append(line)
        if len(pending.values) >= SEGMENT_ENTRIES:
            self.flush(signal)

    def flush(self, signal: str) -> None:
        pending = self.pending.pop(signal, None)
        if pending is None or not pending.values:
            return
        first = self.next_entry_id
        count = len(pending.values)
        self.db.execute(
            "INSERT INTO segments (list_id, version, signal_type, first_entry, count, hash_values, source_lines) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.list_id,
                self.report.version,
                signal,
                first,
                count,
                b"".join(pending.values),
                np.asarray(pending.lines, dtype="<i8").tobytes(),
            ),
        )
        self.db.executemany(
            "INSERT INTO entry_meta (entry_id, external_id, classification) VALUES (?, ?, ?)",
            ((first + index, external_id, classification) for index, external_id, classification in pending.meta),
        )
        self.next_entry_id += count
        self.report.added += count

    def record(self, record: ParsedRecord) -> None:
        if record.deleted:
            self.removed_ids.update(self._tombstoned(record))
            return
        try:
            signal = self._signal_of(record)
            value = parse_signal(signal, record.hash_text)
        except SignalValueError as exc:
            self.reject(record.line, exc.reason, exc.detail)
            return
        if signal not in self.hash_list.signal_types:
            self.reject(record.line, RejectReason.TYPE_NOT_IN_LIST, f"list {self.hash_list.name!r} holds no {signal}")
            return
        self.accept(record.line, _SIGNAL_TEXT[signal], value, record.external_id, record.classification)

    def batch(self, batch: HexBatch) -> None:
        """Rows of a HexBatch, each exactly as `record(ParsedRecord(line, hex))` would treat it."""
        signal = self.default_64_hex
        lines = batch.lines.tolist()
        if signal not in self.hash_list.signal_types:
            for line in lines:
                self.reject(line, RejectReason.TYPE_NOT_IN_LIST, f"list {self.hash_list.name!r} holds no {signal}")
            return
        zero = np.zeros(len(lines), dtype=bool)
        if signal is SignalType.PDQ:
            zero = np.logical_not(batch.values.any(axis=1))
        blob = batch.values.tobytes()
        text = _SIGNAL_TEXT[signal]
        width = signal.byte_length
        for i, (line, is_zero) in enumerate(zip(lines, zero.tolist(), strict=True)):
            if is_zero:
                self.reject(line, RejectReason.ZERO_PDQ, "the all-zero PDQ hash (images under 5 px) matches nothing")
            else:
                self.accept(line, text, blob[i * width : (i + 1) * width], None, None)

    def _signal_of(self, record: ParsedRecord) -> SignalType:
        if record.signal_name:
            return signal_type_named(record.signal_name)
        return infer_signal_type(record.hash_text, self.default_64_hex)

    def _tombstoned(self, record: ParsedRecord) -> list[int]:
        """Entry ids a deleted record removes: by hash (and id, when given), or every entry of its id."""
        live = self.live
        if not record.hash_text:
            return [live.by_key[key] for key in live.by_external_id.get(record.external_id or "", [])]
        try:
            signal = self._signal_of(record)
            value = parse_signal(signal, record.hash_text)
        except SignalValueError as exc:
            self.reject(record.line, exc.reason, exc.detail)
            return []
        text = _SIGNAL_TEXT[signal]
        if record.external_id:
            entry = live.by_key.get((text, value, record.external_id))
            return [] if entry is None else [entry]
        return [entry_id for key, entry_id in live.by_key.items() if key[0] == text and key[1] == value]

    def finish(self, mode: ImportMode, source_file: str | None, note: str) -> None:
        for signal in list(self.pending):
            self.flush(signal)
        if mode is ImportMode.REPLACE:
            self.removed_ids.update(entry_id for key, entry_id in self.live.by_key.items() if key not in self.kept)
        version = self.report.version
        self.db.executemany(
            "INSERT INTO tombstones (entry_id, list_id, removed_version) VALUES (?, ?, ?)",
            ((i, self.list_id, version) for i in sorted(self.removed_ids)),
        )
        report = self.report
        report.removed = len(self.removed_ids)
        report.total = len(self.live.by_key) - report.removed + report.added
        self.db.execute(
            "INSERT INTO versions (list_id, number, created_at, kind, source_file, added, removed, total, rejected, "
            "note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.list_id,
                version,
                now_utc(),
                mode.value,
                source_file,
                report.added,
                report.removed,
                report.total,
                report.rejected,
                note,
            ),
        )


def import_records(
    store: Store,
    list_name: str,
    records: Iterable[ParseResult | HexBatch],
    mode: ImportMode = ImportMode.REPLACE,
    source_file: str | None = None,
    activate: bool = True,
    default_64_hex: SignalType = SignalType.PDQ,
    progress: Callable[[int], None] | None = None,
    note: str = "",
) -> ImportReport:
    """Create the next version of `list_name` from `records`; all or nothing."""
    hash_list = store.get_list(list_name)
    list_id = store.list_id(list_name)
    with store.transaction() as db:
        base = store.latest_version(list_name)
        report = ImportReport(list_name, base + 1, mode)
        live = _LiveEntries(store, list_name, base)
        builder = _VersionBuilder(db, hash_list, list_id, report, live, store.next_entry_id(), default_64_hex)
        next_progress = PROGRESS_EVERY
        for item in records:
            if isinstance(item, HexBatch):
                builder.batch(item)
                report.records_read += len(item.lines)
            else:
                report.records_read += 1
                if isinstance(item, RejectedLine):
                    report.rejects.append(item)
                else:
                    builder.record(item)
            if progress is not None and report.records_read >= next_progress:
                progress(report.records_read)
                next_progress += PROGRESS_EVERY
        builder.finish(mode, source_file, note)
        if activate:
            db.execute("UPDATE lists SET active_version = ? WHERE id = ?", (report.version, list_id))
    return report
