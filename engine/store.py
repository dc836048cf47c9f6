"""The SQLite store: lists, versions and entries with provenance, in one file (WAL mode, no server).

Entries are stored by column, in segments of up to 65,536 entries of one signal type: one row holds their
values as one BLOB and their source lines as another. Importing 10M hashes writes ~150 rows instead of 10M,
and loading a list for the index reads those BLOBs straight into NumPy. Per-entry rows exist only where
there is something per entry to keep: `entry_meta` (external id, classification) and `tombstones`.

Entry ids are global and increase with every import. Versions are linear per list: an entry is live in
version v when its segment's version <= v and it has no tombstone with `removed_version <= v`. The source
file and import time of an entry are those of the version that added it. Each import runs in one
transaction, so a crash part-way leaves the previous version exactly as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.lists import (
    HashList,
    ListAction,
    ListEntry,
    ListSettings,
    ListSettingsError,
    ListVersion,
    SourceProgramme,
    check_threshold,
)
from engine.signal_types.spec import LiveSignals
from engine.signals import SignalType, spec_of
from hashing.errors import HashmatchError, ReasonCode

__all__ = ["LiveSignals"]  # re-exported: it lived here before the signal-type interface

SCHEMA_VERSION = 5
SEGMENT_ENTRIES = 65_536
EVIDENCE_CHUNK = 50_000  # entry ids per evidence query (one JSON array parameter)

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE lists (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        signal_types TEXT NOT NULL,
        threshold INTEGER NOT NULL,
        action TEXT NOT NULL,
        negative INTEGER NOT NULL,
        active_version INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE versions (
        list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        source_file TEXT,
        added INTEGER NOT NULL,
        removed INTEGER NOT NULL,
        total INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (list_id, number)
    );
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        signal_type TEXT NOT NULL,
        first_entry INTEGER NOT NULL UNIQUE,
        count INTEGER NOT NULL,
        hash_values BLOB NOT NULL,
        source_lines BLOB NOT NULL
    );
    CREATE INDEX segments_by_list ON segments (list_id, signal_type, version);
    CREATE TABLE entry_meta (
        entry_id INTEGER PRIMARY KEY,
        external_id TEXT,
        classification TEXT
    );
    CREATE INDEX entry_meta_by_external_id ON entry_meta (external_id);
    CREATE TABLE tombstones (
        entry_id INTEGER PRIMARY KEY,
        list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
        removed_version INTEGER NOT NULL
    );
    CREATE INDEX tombstones_by_list ON tombstones (list_id, removed_version);
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('next_entry_id', 1);
    """,
    # Settings per version (activating an old version brings its settings back); per-entry provenance where
    # it differs from the adding version's (an export re-imported keeps each entry's original file and time).
    2: """
    ALTER TABLE versions ADD COLUMN threshold INTEGER;
    ALTER TABLE versions ADD COLUMN action TEXT;
    ALTER TABLE versions ADD COLUMN negative INTEGER;
    UPDATE versions SET
        threshold = (SELECT threshold FROM lists WHERE lists.id = versions.list_id),
        action = (SELECT action FROM lists WHERE lists.id = versions.list_id),
        negative = (SELECT negative FROM lists WHERE lists.id = versions.list_id);
    ALTER TABLE entry_meta ADD COLUMN source_file TEXT;
    ALTER TABLE entry_meta ADD COLUMN imported_at TEXT;
    """,
    # Values without a fixed size (a video's frame hashes), for the types that have them: the segment keeps a
    # fixed-width identity per entry, this table the whole value.
    3: """
    CREATE TABLE entry_payloads (
        entry_id INTEGER PRIMARY KEY,
        payload BLOB NOT NULL
    );
    """,
    # Evidence and safety controls (engine/evidence): prevalence counters (aggregates only: no upload or user
    # identifier has a column), entries held for review by the flood guard, and reviewers' feedback.
    4: """
    CREATE TABLE prevalence (
        day TEXT NOT NULL,
        list TEXT NOT NULL,
        classification TEXT NOT NULL,
        signal_type TEXT NOT NULL,
        decision TEXT NOT NULL,
        variant TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (day, list, classification, signal_type, decision, variant)
    );
    CREATE TABLE quarantine (
        entry_id INTEGER PRIMARY KEY,
        list TEXT NOT NULL,
        since TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        list TEXT NOT NULL,
        entry_id INTEGER NOT NULL,
        signal_type TEXT NOT NULL,
        hash TEXT NOT NULL,
        external_id TEXT,
        kind TEXT NOT NULL,
        note TEXT NOT NULL,
        referral_id TEXT,
        disabled_version INTEGER
    );
    CREATE INDEX feedback_by_time ON feedback (at);
    """,
    # Per-list opt-out of query variants (hashing.query_variants), kept per version like the other settings.
    5: """
    ALTER TABLE lists ADD COLUMN query_variants INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE versions ADD COLUMN query_variants INTEGER NOT NULL DEFAULT 1;
    """,
}


class StoreError(HashmatchError):
    """The store cannot do what was asked; `reason` says why (LIST_NOT_FOUND, VERSION_NOT_FOUND, ...)."""


class ListExistsError(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(ReasonCode.LIST_EXISTS, f"a list named {name!r} exists already")


class ListNotFoundError(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(ReasonCode.LIST_NOT_FOUND, f"no list named {name!r} (see 'hashmatch lists ls')")
        self.name = name


class StoreUnavailableError(StoreError):
    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.STORE_UNAVAILABLE, message)


def default_db_path() -> Path:
    """$HASHMATCH_DB, else $XDG_DATA_HOME/hashmatch/hashmatch.db (~/.local/share/... by default)."""
    explicit = os.environ.get("HASHMATCH_DB")
    if explicit:
        return Path(explicit)
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "hashmatch" / "hashmatch.db"


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, eq=False)
class Segment:
    first_entry: int
    version: int
    signal: SignalType
    values: np.ndarray  # (count, byte_length) uint8
    lines: np.ndarray  # (count,) int64

    @property
    def entry_ids(self) -> np.ndarray:
        return np.arange(self.first_entry, self.first_entry + self.values.shape[0], dtype=np.int64)


# A list with the settings of its active version (what is being matched), else the list's latest settings.
class EntryMeta(NamedTuple):
    """An entry's row in `entry_meta`: what the list file said of it beyond its hash. `source_file` and
    `imported_at` are set only where they differ from the adding version's (an export re-imported)."""

    external_id: str | None = None
    classification: str | None = None
    source_file: str | None = None
    imported_at: str | None = None


NO_META = EntryMeta()


@dataclass(frozen=True)
class ListDiff:
    added: list[ListEntry]
    removed: list[ListEntry]
    changed: list[tuple[ListEntry, ListEntry]]  # (before, after): same type, hash and id, new classification


_LIST_QUERY = (
    "SELECT l.name, l.source, l.signal_types, COALESCE(v.threshold, l.threshold), COALESCE(v.action, l.action), "
    "COALESCE(v.negative, l.negative), COALESCE(v.query_variants, l.query_variants), l.active_version, "
    "l.created_at FROM lists l "
    "LEFT JOIN versions v ON v.list_id = l.id AND v.number = l.active_version"
)
MAX_LIST_NAME = 200


class Store:
    """One store file, shared safely between threads: each thread gets its own SQLite connection (readers
    never block in WAL mode; writers wait for each other up to `busy_timeout_s`)."""

    def __init__(
        self, path: str | os.PathLike[str], busy_timeout_s: float = 60.0, create_parents: bool = False
    ) -> None:
        """Open the store at `path`, creating the file (owner-only, 0600) when it does not exist.

        A missing parent directory is refused unless `create_parents` (then created 0700): a typo in a path
        must not quietly start an empty store that matches nothing.
        """
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        if str(path) == ":memory:":
            # Every thread's connection must see the same in-memory database.
            self._target, self._uri = f"file:hashmatch-{uuid.uuid4().hex}?mode=memory&cache=shared", True
        else:
            _prepare_store_file(self.path, create_parents)
            self._target, self._uri = str(path), False
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            self._keeper = self.db  # an in-memory database lives as long as one connection to it
            self.db.execute("PRAGMA journal_mode = WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreUnavailableError(f"{self.path} is not a hashmatch store (not an SQLite database)") from exc

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._target,
                uri=self._uri,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout_s,
            )
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- schema and transactions -----

    def _migrate(self) -> None:
        current = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"{self.path} has schema {current}, newer than this hashmatch ({SCHEMA_VERSION}): upgrade hashmatch"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (a crash rolls back by itself)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ----- lists -----

    def create_list(self, spec: HashList) -> HashList:
        if not spec.name or spec.name != spec.name.strip():
            raise ListSettingsError("a list name is non-empty, without surrounding spaces")
        if len(spec.name) > MAX_LIST_NAME:
            raise ListSettingsError(f"a list name has at most {MAX_LIST_NAME} characters")
        if not spec.signal_types:
            raise ListSettingsError("a list holds at least one signal type")
        check_threshold(spec.threshold)
        try:
            with self.transaction():
                self.db.execute(
                    "INSERT INTO lists (name, source, signal_types, threshold, action, negative, query_variants, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        spec.name,
                        spec.source.value,
                        ",".join(sorted(s.value for s in spec.signal_types)),
                        spec.threshold,
                        spec.action.value,
                        int(spec.negative),
                        int(spec.query_variants),
                        now_utc(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise ListExistsError(spec.name) from exc
        return self.get_list(spec.name)

    def get_list(self, name: str) -> HashList:
        """The list with the settings of its active version (what is matched), or its latest settings."""
        row = self.db.execute(f"{_LIST_QUERY} WHERE l.name = ?", (name,)).fetchone()
        if row is None:
            raise ListNotFoundError(name)
        return _hash_list(row)

    def lists(self) -> list[HashList]:
        rows = self.db.execute(f"{_LIST_QUERY} ORDER BY l.name").fetchall()
        return [_hash_list(row) for row in rows]

    def latest_settings(self, name: str) -> ListSettings:
        """The settings of the latest version (or of the new list): what the next version starts from."""
        row = self.db.execute(
            "SELECT threshold, action, negative, query_variants FROM lists WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise ListNotFoundError(name)
        return _settings(row)

    def delete_list(self, name: str) -> None:
        list_id = self.list_id(name)
        with self.transaction():
            ranges = self.db.execute("SELECT first_entry, count FROM segments WHERE list_id = ?", (list_id,))
            spans = [(first, first + count - 1) for first, count in ranges.fetchall()]
            for table in ("entry_meta", "entry_payloads"):
                self.db.executemany(f"DELETE FROM {table} WHERE entry_id BETWEEN ? AND ?", spans)
            for table in ("tombstones", "segments", "versions"):
                self.db.execute(f"DELETE FROM {table} WHERE list_id = ?", (list_id,))
            self.db.execute("DELETE FROM lists WHERE id = ?", (list_id,))

    def list_id(self, name: str) -> int:
        row = self.db.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ListNotFoundError(name)
        return int(row[0])

    # ----- versions -----

    def versions(self, name: str) -> list[ListVersion]:
        rows = self.db.execute(
            "SELECT number, created_at, kind, source_file, added, removed, total, rejected, note, "
            "threshold, action, negative, query_variants FROM versions WHERE list_id = ? ORDER BY number",
            (self.list_id(name),),
        ).fetchall()
        return [
            ListVersion(
                list_name=name,
                number=int(number),
                created_at=str(created_at),
                kind=str(kind),
                source_file=source_file,
                added=int(added),
                removed=int(removed),
                total=int(total),
                rejected=int(rejected),
                note=str(note),
                settings=_settings(settings),
            )
            for number, created_at, kind, source_file, added, removed, total, rejected, note, *settings in rows
        ]

    def version_settings(self, name: str, number: int) -> ListSettings:
        row = self.db.execute(
            "SELECT threshold, action, negative, query_variants FROM versions WHERE list_id = ? AND number = ?",
            (self.list_id(name), number),
        ).fetchone()
        if row is None:
            raise _no_version(name, number)
        return _settings(row)

    def insert_version(self, version: ListVersion) -> None:
        """Inside a transaction: the version row, and its settings as the list's latest."""
        list_id = self.list_id(version.list_name)
        settings = version.settings
        self.db.execute(
            "INSERT INTO versions (list_id, number, created_at, kind, source_file, added, removed, total, rejected, "
            "note, threshold, action, negative, query_variants) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                list_id,
                version.number,
                version.created_at,
                version.kind,
                version.source_file,
                version.added,
                version.removed,
                version.total,
                version.rejected,
                version.note,
                settings.threshold,
                settings.action.value,
                int(settings.negative),
                int(settings.query_variants),
            ),
        )
        self.db.execute(
            "UPDATE lists SET threshold = ?, action = ?, negative = ?, query_variants = ? WHERE id = ?",
            (settings.threshold, settings.action.value, int(settings.negative), int(settings.query_variants), list_id),
        )

    def check_not_rolled_back(self, name: str) -> None:
        """ROLLED_BACK when an older version than the latest is active: a change built on the latest version
        and activated would bring back what the rollback took away."""
        active, latest = self.get_list(name).active_version, self.latest_version(name)
        if active is not None and active != latest:
            raise StoreError(
                ReasonCode.ROLLED_BACK,
                f"list {name!r} serves version {active}, but its latest is {latest}: a change builds on the latest "
                f"and would undo the rollback; activate {latest}, or import the list as it should be, first",
            )

    def change_settings(self, name: str, settings: ListSettings, activate: bool = True) -> ListVersion | None:
        """A new version with the latest version's entries and new settings; None when nothing changes.
        ROLLED_BACK (with `activate`) when an older version is active."""
        with self.transaction():
            changes = settings.changes_from(self.latest_settings(name))
            if not changes:
                return None
            if activate:
                self.check_not_rolled_back(name)
            latest = self.latest_version(name)
            total = self.db.execute(
                "SELECT total FROM versions WHERE list_id = ? AND number = ?", (self.list_id(name), latest)
            ).fetchone()
            version = ListVersion(
                list_name=name,
                number=latest + 1,
                created_at=now_utc(),
                kind="settings",
                source_file=None,
                added=0,
                removed=0,
                total=int(total[0]) if total else 0,
                rejected=0,
                note="; ".join(changes),
                settings=settings,
            )
            self.insert_version(version)
            if activate:
                self.db.execute("UPDATE lists SET active_version = ? WHERE name = ?", (version.number, name))
        return version

    def latest_version(self, name: str) -> int:
        row = self.db.execute("SELECT MAX(number) FROM versions WHERE list_id = ?", (self.list_id(name),)).fetchone()
        return int(row[0] or 0)

    def activate(self, name: str, version: int) -> None:
        list_id = self.list_id(name)
        exists = self.db.execute("SELECT 1 FROM versions WHERE list_id = ? AND number = ?", (list_id, version))
        if exists.fetchone() is None:
            raise _no_version(name, version)
        with self.transaction():
            self.db.execute("UPDATE lists SET active_version = ? WHERE id = ?", (version, list_id))

    def resolve_version(self, name: str, version: int | None) -> int:
        """The given version, checked, or the active one."""
        if version is None:
            active = self.get_list(name).active_version
            if active is None:
                raise StoreError(
                    ReasonCode.NO_ACTIVE_LIST,
                    f"list {name!r} has no active version yet: import entries or activate one",
                )
            return active
        if not 1 <= version <= self.latest_version(name):
            raise _no_version(name, version)
        return version

    # ----- entries -----

    def next_entry_id(self) -> int:
        """Entry ids only grow, also across deleted lists: an id never names two entries."""
        return int(self.db.execute("SELECT value FROM counters WHERE name = 'next_entry_id'").fetchone()[0])

    def set_next_entry_id(self, value: int) -> None:
        """Inside an import's transaction: ids below `value` are taken."""
        self.db.execute("UPDATE counters SET value = MAX(value, ?) WHERE name = 'next_entry_id'", (value,))

    def segments(self, name: str, up_to: int, signal: SignalType | None = None, after: int = 0) -> Iterator[Segment]:
        """Segments added by versions in (after, up_to], in entry-id order."""
        query = (
            "SELECT first_entry, version, signal_type, hash_values, source_lines FROM segments "
            "WHERE list_id = ? AND version > ? AND version <= ?"
        )
        params: list[object] = [self.list_id(name), after, up_to]
        if signal is not None:
            query += " AND signal_type = ?"
            params.append(signal.value)
        for first, version, signal_text, blob, lines in self.db.execute(query + " ORDER BY first_entry", params):
            kind = SignalType(signal_text)
            values = np.frombuffer(blob, dtype=np.uint8).reshape(-1, spec_of(kind).value_width)
            yield Segment(int(first), int(version), kind, values, np.frombuffer(lines, dtype="<i8"))

    def removed_ids(self, name: str, up_to: int, after: int = 0) -> np.ndarray:
        """Entry ids tombstoned by versions in (after, up_to], ascending."""
        rows = self.db.execute(
            "SELECT entry_id FROM tombstones WHERE list_id = ? AND removed_version > ? AND removed_version <= ? "
            "ORDER BY entry_id",
            (self.list_id(name), after, up_to),
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def live_signals(self, name: str, signal: SignalType, version: int | None = None) -> LiveSignals:
        """Values and entry ids of one signal type live in a version (default: active), for the index."""
        number = self.resolve_version(name, version)
        parts = list(self.segments(name, number, signal))
        if not parts:
            return LiveSignals(np.zeros((0, spec_of(signal).value_width), np.uint8), np.zeros(0, np.int64))
        values = np.concatenate([p.values for p in parts])
        ids = np.concatenate([p.entry_ids for p in parts])
        live = ~np.isin(ids, self.removed_ids(name, number))
        live_ids = ids[live]
        payloads: tuple[bytes, ...] = ()
        if spec_of(signal).has_payload:
            found = self.payloads(live_ids.tolist())
            payloads = tuple(found[int(i)] for i in live_ids.tolist())
        return LiveSignals(np.ascontiguousarray(values[live]), live_ids, payloads)

    def payloads(self, entry_ids: Iterable[int]) -> dict[int, bytes]:
        """entry id -> its payload, for the ids that have one; one query per 50,000 ids."""
        found: dict[int, bytes] = {}
        for chunk in _id_chunks(entry_ids):
            rows = self.db.execute(
                "SELECT p.entry_id, p.payload FROM json_each(?) j JOIN entry_payloads p ON p.entry_id = j.value",
                (chunk,),
            )
            found.update((int(entry_id), bytes(payload)) for entry_id, payload in rows)
        return found

    def entries(self, name: str, version: int | None = None) -> Iterator[ListEntry]:
        """Live entries of a version (default: the active one), in entry-id order, streamed."""
        number = self.resolve_version(name, version)
        removed = self.removed_ids(name, number)
        yield from self._entries_of(name, self.segments(name, number), removed, keep_removed=False)

    def entries_by_id(self, entry_ids: Iterable[int]) -> dict[int, ListEntry]:
        """Entries (live or tombstoned) by id, with their list and provenance: one query per 50,000 ids."""
        found: dict[int, ListEntry] = {}
        provenances: dict[str, dict[int, tuple[str | None, str]]] = {}  # per list, read once per call
        for chunk in _id_chunks(entry_ids):
            rows = self.db.execute(
                "SELECT j.value, l.name, s.signal_type, s.version, "
                "substr(s.hash_values, (j.value - s.first_entry) * (length(s.hash_values) / s.count) + 1, "
                "length(s.hash_values) / s.count), substr(s.source_lines, (j.value - s.first_entry) * 8 + 1, 8), "
                "m.external_id, m.classification, m.source_file, m.imported_at, t.removed_version "
                "FROM json_each(?) j "
                "JOIN segments s ON s.first_entry = "
                "(SELECT MAX(first_entry) FROM segments WHERE first_entry <= j.value) "
                "AND j.value < s.first_entry + s.count "
                "JOIN lists l ON l.id = s.list_id "
                "LEFT JOIN entry_meta m ON m.entry_id = j.value "
                "LEFT JOIN tombstones t ON t.entry_id = j.value",
                (chunk,),
            )
            for entry_id, name, signal_text, version, value, line, *meta, removed in rows:
                if name not in provenances:
                    provenances[name] = self._provenance(str(name))
                found[int(entry_id)] = _entry(
                    int(entry_id),
                    str(name),
                    SignalType(signal_text),
                    bytes(value),
                    int(np.frombuffer(bytes(line), dtype="<i8")[0]),
                    int(version),
                    EntryMeta(*meta),
                    provenances[name][int(version)],
                    None if removed is None else int(removed),
                )
        with_payloads = [i for i, entry in found.items() if spec_of(entry.signal_type).has_payload]
        for entry_id, payload in self.payloads(with_payloads).items():
            found[entry_id] = replace(found[entry_id], payload=payload)
        return found

    def evidence(self, entry_ids: Iterable[int]) -> dict[int, tuple[str | None, str | None]]:
        """entry id -> (external id, classification), for the ids that have either; one query per 50,000
        ids, so a batch of verdicts costs the same few queries however many of its queries matched."""
        found: dict[int, tuple[str | None, str | None]] = {}
        for chunk in _id_chunks(entry_ids):
            rows = self.db.execute(
                "SELECT m.entry_id, m.external_id, m.classification FROM json_each(?) j "
                "JOIN entry_meta m ON m.entry_id = j.value",
                (chunk,),
            )
            found.update(
                (int(entry_id), (external_id, classification)) for entry_id, external_id, classification in rows
            )
        return found

    def diff(self, name: str, old: int, new: int) -> ListDiff:
        """What changed from version `old` to `new`, by content (type, hash, external id), not by entry id:
        an entry removed and later re-imported with the same content (a rollback, say) is no change."""
        by_id_added, by_id_removed = self._diff_by_id(name, old, new)
        gone = {entry.content_key: entry for entry in by_id_removed}
        added: list[ListEntry] = []
        changed: list[tuple[ListEntry, ListEntry]] = []
        for entry in by_id_added:
            before = gone.pop(entry.content_key, None)
            if before is None:
                added.append(entry)
            elif before.classification != entry.classification:
                changed.append((before, entry))
        return ListDiff(added, list(gone.values()), changed)

    def _diff_by_id(self, name: str, old: int, new: int) -> tuple[list[ListEntry], list[ListEntry]]:
        """(entries live in `new` but not in `old`, entries live in `old` but not in `new`), by entry id."""
        if old > new:
            added, removed = self._diff_by_id(name, new, old)
            return removed, added
        removed_by_new = self.removed_ids(name, new)
        added = list(self._entries_of(name, self.segments(name, new, after=old), removed_by_new, keep_removed=False))
        gone = set(self.removed_ids(name, new, after=old).tolist()) - set(self.removed_ids(name, old).tolist())
        removed = list(self._entries_of(name, self.segments(name, old), np.array(sorted(gone)), keep_removed=True))
        return added, removed

    # ----- helpers -----

    def _entries_of(
        self, name: str, segments: Iterable[Segment], marked: np.ndarray, keep_removed: bool
    ) -> Iterator[ListEntry]:
        """Entries of the segments; `marked` ids are skipped (keep_removed=False) or the only ones kept."""
        provenance = self._provenance(name)
        for segment in segments:
            ids = segment.entry_ids
            selected = np.isin(ids, marked)
            if not keep_removed:
                selected = ~selected
            chosen = np.flatnonzero(selected)
            if chosen.size == 0:
                continue
            meta = self.meta_range(int(ids[0]), int(ids[-1]))
            payloads = self.payload_range(int(ids[0]), int(ids[-1])) if spec_of(segment.signal).has_payload else {}
            for i in chosen.tolist():
                entry_id = int(ids[i])
                yield _entry(
                    entry_id,
                    name,
                    segment.signal,
                    segment.values[i].tobytes(),
                    int(segment.lines[i]),
                    segment.version,
                    meta.get(entry_id, NO_META),
                    provenance[segment.version],
                    None,
                    payloads.get(entry_id),
                )

    def payload_range(self, first: int, last: int) -> dict[int, bytes]:
        rows = self.db.execute(
            "SELECT entry_id, payload FROM entry_payloads WHERE entry_id BETWEEN ? AND ?", (first, last)
        )
        return {int(r[0]): bytes(r[1]) for r in rows}

    def meta_range(self, first: int, last: int) -> dict[int, EntryMeta]:
        """entry id -> its meta row, for ids in [first, last] that have one."""
        rows = self.db.execute(
            "SELECT entry_id, external_id, classification, source_file, imported_at FROM entry_meta "
            "WHERE entry_id BETWEEN ? AND ?",
            (first, last),
        )
        return {int(r[0]): EntryMeta(*r[1:]) for r in rows}

    def _provenance(self, name: str) -> dict[int, tuple[str | None, str]]:
        rows = self.db.execute(
            "SELECT number, source_file, created_at FROM versions WHERE list_id = ?", (self.list_id(name),)
        )
        return {int(number): (source_file, str(created)) for number, source_file, created in rows}


def _prepare_store_file(path: Path, create_parents: bool) -> None:
    if path.exists():
        return
    if not path.parent.is_dir():
        if not create_parents:
            raise StoreUnavailableError(
                f"no directory {path.parent} for the store {path}: check the path, or pass --create to make it"
            )
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create {path.parent}: {exc.strerror}") from exc
    try:
        # Hash lists are sensitive (they tell an offender what to alter): owner-only from the first byte.
        # SQLite gives the -wal and -shm files the database file's permissions.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # another process created it meanwhile
    except OSError as exc:
        raise StoreUnavailableError(f"cannot create the store {path}: {exc.strerror}") from exc


def _entry(
    entry_id: int,
    list_name: str,
    signal: SignalType,
    value: bytes,
    line: int,
    version: int,
    meta: EntryMeta,
    version_provenance: tuple[str | None, str],
    removed_version: int | None,
    payload: bytes | None = None,
) -> ListEntry:
    source_file, imported_at = version_provenance
    return ListEntry(
        entry_id=entry_id,
        list_name=list_name,
        signal_type=signal,
        value=value,
        external_id=meta.external_id,
        classification=meta.classification,
        source_file=meta.source_file or source_file,
        source_line=line,
        imported_at=meta.imported_at or imported_at,
        added_version=version,
        removed_version=removed_version,
        payload=payload,
    )


def _id_chunks(entry_ids: Iterable[int]) -> Iterator[str]:
    """Distinct ids as JSON arrays of at most EVIDENCE_CHUNK, for `json_each(?)`."""
    wanted = sorted({int(i) for i in entry_ids})
    for start in range(0, len(wanted), EVIDENCE_CHUNK):
        yield json.dumps(wanted[start : start + EVIDENCE_CHUNK])


def _no_version(name: str, number: int) -> StoreError:
    return StoreError(ReasonCode.VERSION_NOT_FOUND, f"list {name!r} has no version {number}")


def _settings(row: tuple[object, ...]) -> ListSettings:
    threshold, action, negative, query_variants = row
    return ListSettings(int(str(threshold)), ListAction(str(action)), bool(negative), bool(query_variants))


def _hash_list(row: tuple[object, ...]) -> HashList:
    name, source, signal_types, threshold, action, negative, query_variants, active_version, created_at = row
    return HashList(
        name=str(name),
        source=SourceProgramme(str(source)),
        signal_types=frozenset(SignalType(s) for s in str(signal_types).split(",")),
        threshold=int(str(threshold)),
        action=ListAction(str(action)),
        negative=bool(negative),
        query_variants=bool(query_variants),
        active_version=None if active_version is None else int(str(active_version)),
        created_at=str(created_at),
    )
