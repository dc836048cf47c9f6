"""Import parsed records into a new list version: validate, de-duplicate, diff against the latest version,
tombstone, and commit in one transaction.

One bad entry never aborts an import; every reject is reported with its line and reason. Whole imports that
would lose detection are refused instead, writing nothing (ImportRefusedError with a reason code):
* UNREADABLE_LIST: the file cannot be read to its end (broken XML or JSON); in `replace` mode the entries
  never read would otherwise all become tombstones;
* NOTHING_ACCEPTED: not one record was accepted (an empty download, a comment-only file, all lines rejected);
* DELTA_FILE: a `replace` import of a file with deletion records, which is a delta;
* LIST_WOULD_SHRINK: a `replace` import would remove more than `ImportGuard.max_shrink` of the live entries,
  or all of them, unless `allow_shrink` (a delta's deletion records name what they remove).
Within one file the last record about an entry wins: a deletion followed by a re-addition keeps the entry, an
addition followed by a deletion does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from engine.importers.records import HexBatch, ParsedRecord, ParseResult, RejectedLine
from engine.lists import HashList, ListSettings, ListSettingsError, ListVersion
from engine.signals import (
    SignalType,
    SignalValueError,
    infer_signal_type,
    parse_signal,
    parse_value,
    signal_type_named,
)
from engine.store import NO_META, SEGMENT_ENTRIES, EntryMeta, Store, now_utc
from hashing.errors import HashmatchError, ReasonCode

PROGRESS_EVERY = 100_000
_SIGNAL_TEXT = {signal: signal.value for signal in SignalType}


class ImportMode(StrEnum):
    REPLACE = "replace"  # the file is the whole list: live entries missing from it become tombstones
    DELTA = "delta"  # the file adds entries; its tombstones (deleted records) remove entries


@dataclass(frozen=True)
class ImportGuard:
    """How much of a list one import may remove before it is refused."""

    max_shrink: float = 0.5  # share of the live entries
    allow_shrink: bool = False  # the operator confirmed a large removal (or emptying the list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_shrink <= 1.0:
            raise ListSettingsError(f"the largest share an import may remove is within 0..1, not {self.max_shrink}")


@dataclass
class ImportReport:
    list_name: str
    version: int
    mode: ImportMode
    records_read: int = 0
    added: int = 0
    changed: int = 0  # same hash and id, new classification: the old entry is a tombstone, the new one live
    unchanged: int = 0
    removed: int = 0
    total: int = 0
    accepted: int = 0  # records taken: additions (new or already listed) and valid deletions
    rejects: list[RejectedLine] = field(default_factory=list)
    settings_changed: list[str] = field(default_factory=list)  # e.g. ["threshold 31 -> 24"]

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def reject_counts(self) -> dict[str, int]:
        return dict(Counter(r.reason.value for r in self.rejects))


class ImportRefusedError(HashmatchError):
    """The whole import was refused and nothing was written; `report` holds what was read up to then."""

    def __init__(self, reason: ReasonCode, message: str, report: ImportReport) -> None:
        super().__init__(reason, message)
        self.report = report


# An entry's identity within a list: the same hash under two external ids is two entries (two owners).
EntryKey = tuple[str, bytes, str]


class _LiveEntries:
    """Live entries of the base version: key -> (entry id, classification), plus lookups for tombstones."""

    def __init__(self, store: Store, list_name: str, version: int) -> None:
        self.by_key: dict[EntryKey, tuple[int, str | None]] = {}
        self._by_external_id: dict[str, list[EntryKey]] | None = None
        self._by_value: dict[tuple[str, bytes], list[EntryKey]] | None = None
        if version == 0:
            return
        removed = store.removed_ids(list_name, version)
        for segment in store.segments(list_name, version):
            ids = segment.entry_ids
            meta = store.meta_range(int(ids[0]), int(ids[-1]))
            signal = segment.signal.value
            blob = segment.values.tobytes()
            width = segment.signal.byte_length
            for i in np.flatnonzero(~np.isin(ids, removed)).tolist():
                entry_id = int(ids[i])
                external_id, classification = meta.get(entry_id, NO_META)[:2]
                self.by_key[(signal, blob[i * width : (i + 1) * width], external_id or "")] = (entry_id, classification)

    def keys_of_external_id(self, external_id: str) -> list[EntryKey]:
        if self._by_external_id is None:  # built on the first tombstone that needs it
            self._by_external_id = {}
            for key in self.by_key:
                if key[2]:
                    self._by_external_id.setdefault(key[2], []).append(key)
        return self._by_external_id.get(external_id, [])

    def keys_of_value(self, signal: str, value: bytes) -> list[EntryKey]:
        if self._by_value is None:
            self._by_value = {}
            for key in self.by_key:
                self._by_value.setdefault((key[0], key[1]), []).append(key)
        return self._by_value.get((signal, value), [])


@dataclass
class _PendingSegment:
    first_entry: int  # ids are reserved per segment, so an entry's id is known as soon as it is accepted
    values: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    meta: list[tuple[int, EntryMeta]] = field(default_factory=list)  # (index in the segment, its meta row)
    payloads: list[tuple[int, bytes]] = field(default_factory=list)  # (index in the segment, its payload)


class _VersionBuilder:
    """Accumulates one new version inside the import transaction."""

    def __init__(
        self,
        store: Store,
        hash_list: HashList,
        list_id: int,
        report: ImportReport,
        live: _LiveEntries,
        next_entry_id: int,
        default_64_hex: SignalType,
    ) -> None:
        self.store = store
        self.db = store.db
        self.hash_list = hash_list
        self.list_id = list_id
        self.report = report
        self.live = live
        self.next_entry_id = next_entry_id
        self.default_64_hex = default_64_hex
        self.seen: set[EntryKey] = set()  # keys this file asserts live (last record wins)
        self.new_ids: dict[EntryKey, int] = {}  # entries this import added, by key
        self.removed_ids: set[int] = set()  # tombstones this import writes (live and new entries)
        self.pending: dict[str, _PendingSegment] = {}

    def reject(self, line: int, reason: ReasonCode, detail: str) -> None:
        self.report.rejects.append(RejectedLine(line, reason, detail))

    def accept(
        self,
        line: int,
        signal: str,
        value: bytes,
        meta: EntryMeta = NO_META,
        source_line: int = 0,
        payload: bytes | None = None,
    ) -> None:
        """An addition from file line `line`; `source_line` (when the file carries one) is kept instead."""
        key = (signal, value, meta.external_id or "")
        if key in self.seen:
            self.reject(line, ReasonCode.DUPLICATE, "the same hash and id appear on an earlier line")
            return
        self.seen.add(key)
        self.report.accepted += 1
        live = self.live.by_key.get(key)
        if live is not None and live[1] == meta.classification:
            self.removed_ids.discard(live[0])  # re-asserted after an earlier deletion in this file
            return
        if live is not None:
            self.removed_ids.add(live[0])  # reclassified: the old entry becomes a tombstone
        self.new_ids[key] = self._add(signal, value, source_line or line, meta, payload)

    def _add(self, signal: str, value: bytes, line: int, meta: EntryMeta, payload: bytes | None) -> int:
        pending = self.pending.get(signal)
        if pending is None:
            pending = self.pending[signal] = _PendingSegment(self.next_entry_id)
            self.next_entry_id += SEGMENT_ENTRIES
        index = len(pending.values)
        if meta != NO_META:
            pending.meta.append((index, meta))
        if payload is not None:
            pending.payloads.append((index, payload))
        pending.values.append(value)
        pending.lines.append(line)
        if index + 1 >= SEGMENT_ENTRIES:
            self.flush(signal)
        return pending.first_entry + index

    def flush(self, signal: str) -> None:
        pending = self.pending.pop(signal, None)
        if pending is None or not pending.values:
            return
        first = pending.first_entry
        self.db.execute(
            "INSERT INTO segments (list_id, version, signal_type, first_entry, count, hash_values, source_lines) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.list_id,
                self.report.version,
                signal,
                first,
                len(pending.values),
                b"".join(pending.values),
                np.asarray(pending.lines, dtype="<i8").tobytes(),
            ),
        )
        self.db.executemany(
            "INSERT INTO entry_meta (entry_id, external_id, classification, source_file, imported_at) "
            "VALUES (?, ?, ?, ?, ?)",
            ((first + index, *meta) for index, meta in pending.meta),
        )
        self.db.executemany(
            "INSERT INTO entry_payloads (entry_id, payload) VALUES (?, ?)",
            ((first + index, payload) for index, payload in pending.payloads),
        )

    def record(self, record: ParsedRecord) -> None:
        if record.deleted:
            self._delete(record)
            return
        try:
            signal = self._signal_of(record)
            parsed = parse_value(signal, record.hash_text)
        except SignalValueError as exc:
            self.reject(record.line, exc.reason, exc.detail)
            return
        if signal not in self.hash_list.signal_types:
            self.reject(record.line, ReasonCode.TYPE_NOT_IN_LIST, f"list {self.hash_list.name!r} holds no {signal}")
            return
        meta = EntryMeta(record.external_id, record.classification, record.source_file, record.imported_at)
        self.accept(record.line, _SIGNAL_TEXT[signal], parsed.value, meta, record.source_line or 0, parsed.payload)

    def batch(self, batch: HexBatch) -> None:
        """Rows of a HexBatch, each exactly as `record(ParsedRecord(line, hex))` would treat it."""
        signal = self.default_64_hex
        lines = batch.lines.tolist()
        if signal not in self.hash_list.signal_types:
            for line in lines:
                self.reject(line, ReasonCode.TYPE_NOT_IN_LIST, f"list {self.hash_list.name!r} holds no {signal}")
            return
        zero = np.zeros(len(lines), dtype=bool)
        if signal is SignalType.PDQ:
            zero = np.logical_not(batch.values.any(axis=1))
        blob = batch.values.tobytes()
        text = _SIGNAL_TEXT[signal]
        width = signal.byte_length
        for i, (line, is_zero) in enumerate(zip(lines, zero.tolist(), strict=True)):
            if is_zero:
                self.reject(line, ReasonCode.ZERO_PDQ, "the all-zero PDQ hash (images under 5 px) matches nothing")
            else:
                self.accept(line, text, blob[i * width : (i + 1) * width])

    def _signal_of(self, record: ParsedRecord) -> SignalType:
        if record.signal_name:
            return signal_type_named(record.signal_name)
        return infer_signal_type(record.hash_text, self.default_64_hex)

    def _delete(self, record: ParsedRecord) -> None:
        """A tombstone: by hash (and id, when given), or every entry of its external id."""
        if not record.hash_text:
            external_id = record.external_id or ""
            keys = self.live.keys_of_external_id(external_id) + [k for k in self.new_ids if k[2] == external_id]
        else:
            try:
                signal = self._signal_of(record)
                value = parse_signal(signal, record.hash_text)
            except SignalValueError as exc:
                self.reject(record.line, exc.reason, exc.detail)
                return
            text = _SIGNAL_TEXT[signal]
            if record.external_id:
                keys = [(text, value, record.external_id)]
            else:
                keys = self.live.keys_of_value(text, value) + [k for k in self.new_ids if k[:2] == (text, value)]
        self.report.accepted += 1
        for key in keys:
            self.seen.discard(key)
            if key in self.new_ids:
                self.removed_ids.add(self.new_ids.pop(key))
            live = self.live.by_key.get(key)
            if live is not None:
                self.removed_ids.add(live[0])

    def tally(self, mode: ImportMode) -> None:
        """Fill in the report's counts: what the version will hold, before anything is decided."""
        live_ids = {entry_id for entry_id, _ in self.live.by_key.values()}
        if mode is ImportMode.REPLACE:
            self.removed_ids.update(entry_id for key, (entry_id, _) in self.live.by_key.items() if key not in self.seen)
        report = self.report
        report.changed = sum(1 for key in self.new_ids if key in self.live.by_key)
        report.added = len(self.new_ids) - report.changed
        report.removed = len(self.removed_ids & live_ids) - report.changed
        report.unchanged = len(self.live.by_key) - report.removed - report.changed
        report.total = len(self.live.by_key) - report.removed + report.added

    def write(self, mode: ImportMode, source_file: str | None, note: str, settings: ListSettings) -> int:
        """The remaining segments, the tombstones and the version row; returns the next free entry id."""
        for signal in list(self.pending):
            self.flush(signal)
        report = self.report
        self.db.executemany(
            "INSERT INTO tombstones (entry_id, list_id, removed_version) VALUES (?, ?, ?)",
            ((i, self.list_id, report.version) for i in sorted(self.removed_ids)),
        )
        self.store.insert_version(
            ListVersion(
                list_name=report.list_name,
                number=report.version,
                created_at=now_utc(),
                kind=mode.value,
                source_file=source_file,
                added=report.added + report.changed,
                removed=report.removed + report.changed,
                total=report.total,
                rejected=report.rejected,
                note="; ".join(filter(None, [note, *report.settings_changed])),
                settings=settings,
            )
        )
        return self.next_entry_id


def _refuse_losses(report: ImportReport, live_before: int, guard: ImportGuard) -> None:
    """Raise ImportRefusedError when the import would silently lose detection."""
    if report.accepted == 0:
        counts = ", ".join(f"{reason} {count}" for reason, count in sorted(report.reject_counts().items()))
        what = f"all {report.records_read} records were rejected ({counts})" if report.records_read else "it is empty"
        raise ImportRefusedError(
            ReasonCode.NOTHING_ACCEPTED, f"nothing imported: not one record was accepted, {what}", report
        )
    # Deletion records (a delta) remove entries by name, on purpose; a replace removes whatever the file lacks,
    # which is everything a truncated or wrong file lacks.
    if report.mode is not ImportMode.REPLACE or guard.allow_shrink or live_before == 0:
        return
    if report.total == 0 or report.removed > guard.max_shrink * live_before:
        share = 100.0 * report.removed / live_before
        raise ImportRefusedError(
            ReasonCode.LIST_WOULD_SHRINK,
            f"nothing imported: this replace import would remove {report.removed:,} of the "
            f"{live_before:,} live entries of {report.list_name!r} ({share:.0f}%, more than the "
            f"{100 * guard.max_shrink:.0f}% allowed"
            + (", leaving it empty" if report.total == 0 else "")
            + "). Check the file (a partial download?), or pass --allow-shrink if the removal is intended",
            report,
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
    guard: ImportGuard = ImportGuard(),
    settings: ListSettings | None = None,
) -> ImportReport:
    """Create the next version of `list_name` from `records`; all or nothing.

    The new version builds on the latest version (not necessarily the active one), with `settings` (default:
    the latest version's). Raises ImportRefusedError, importing nothing, when the file cannot be read to its
    end, when it is a delta imported as `replace`, when not one record is accepted, or when the import would
    remove more of the list than `guard` allows. A delta that would be activated while an older version than
    the latest is active (a rollback) is refused with ROLLED_BACK: it builds on the latest version and would
    undo the rollback.
    """
    hash_list = store.get_list(list_name)
    list_id = store.list_id(list_name)
    with store.transaction() as db:
        if mode is ImportMode.DELTA and activate:
            store.check_not_rolled_back(list_name)
        base = store.latest_version(list_name)
        report = ImportReport(list_name, base + 1, mode)
        latest = store.latest_settings(list_name)
        settings = settings or latest
        report.settings_changed = settings.changes_from(latest)
        live = _LiveEntries(store, list_name, base)
        builder = _VersionBuilder(store, hash_list, list_id, report, live, store.next_entry_id(), default_64_hex)
        next_progress = PROGRESS_EVERY
        for item in records:
            if isinstance(item, HexBatch):
                builder.batch(item)
                report.records_read += len(item.lines)
            else:
                report.records_read += 1
                if isinstance(item, RejectedLine):
                    if item.fatal:
                        raise ImportRefusedError(
                            ReasonCode.UNREADABLE_LIST, f"nothing imported: record {item.line}: {item.detail}", report
                        )
                    report.rejects.append(item)
                elif item.deleted and mode is ImportMode.REPLACE:
                    raise ImportRefusedError(
                        ReasonCode.DELTA_FILE,
                        f"nothing imported: record {item.line} deletes an entry, so the file is a delta; "
                        "import it with --mode delta",
                        report,
                    )
                else:
                    builder.record(item)
            if progress is not None and report.records_read >= next_progress:
                progress(report.records_read)
                next_progress += PROGRESS_EVERY
        builder.tally(mode)
        _refuse_losses(report, len(live.by_key), guard)
        store.set_next_entry_id(builder.write(mode, source_file, note, settings))
        if activate:
            db.execute("UPDATE lists SET active_version = ? WHERE id = ?", (report.version, list_id))
    return report
