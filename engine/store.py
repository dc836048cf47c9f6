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

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.lists import HashList, ListAction, ListEntry, ListVersion, SourceProgramme
from engine.signals import SignalType

SCHEMA_VERSION = 1
SEGMENT_ENTRIES = 65_536

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
}


class StoreError(Exception):
    pass


class ListSettingsError(StoreError, ValueError):
    """A list's settings are invalid (name, signal types, threshold)."""


class ListExistsError(StoreError):
    pass


class ListNotFoundError(StoreError, KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no list named {name!r}")
        self.name = name


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
class LiveSignals:
    """The live values of one signal type in one list version, as arrays for the index and lookups."""

    values: np.ndarray  # (n, byte_length) uint8
    entry_ids: np.ndarray  # (n,) int64, ascending


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


_LIST_COLUMNS = "name, source, signal_types, threshold, action, negative, active_version, created_at"


class Store:
    """One store file, shared safely between threads: each thread gets its own SQLite connection (readers
    never block in WAL mode; writers wait for each other up to `busy_timeout_s`)."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        if str(path) == ":memory:":
            # Every thread's connection must see the same in-memory database.
            self._target, self._uri = f"file:hashmatch-{uuid.uuid4().hex}?mode=memory&cache=shared", True
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._target, self._uri = str(path), False
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._keeper = self.db  # an in-memory database lives as long as one connection to it
        self.db.execute("PRAGMA journal_mode = WAL")
        self._migrate()

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
            raise StoreError(f"{self.path} has schema {current}, newer than this hashmatch ({SCHEMA_VERSION})")
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
        if not spec.signal_types:
            raise ListSettingsError("a list holds at least one signal type")
        if not 0 <= spec.threshold <= 256:
            raise ListSettingsError("the PDQ threshold is within 0..256 bits")
        try:
            with self.transaction():
                self.db.execute(
                    "INSERT INTO lists (name, source, signal_types, threshold, action, negative, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        spec.name,
                        spec.source.value,
                        ",".join(sorted(s.value for s in spec.signal_types)),
                        spec.threshold,
                        spec.action.value,
                        int(spec.negative),
                        now_utc(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise ListExistsError(f"a list named {spec.name!r} exists already") from exc
        return self.get_list(spec.name)

    def get_list(self, name: str) -> HashList:
        row = self.db.execute(f"SELECT {_LIST_COLUMNS} FROM lists WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ListNotFoundError(name)
        return _hash_list(row)

    def lists(self) -> list[HashList]:
        rows = self.db.execute(f"SELECT {_LIST_COLUMNS} FROM lists ORDER BY name").fetchall()
        return [_hash_list(row) for row in rows]

    def delete_list(self, name: str) -> None:
        list_id = self.list_id(name)
        with self.transaction():
            ranges = self.db.execute("SELECT first_entry, count FROM segments WHERE list_id = ?", (list_id,))
            self.db.executemany(
                "DELETE FROM entry_meta WHERE entry_id BETWEEN ? AND ?",
                [(first, first + count - 1) for first, count in ranges.fetchall()],
            )
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
            "SELECT number, created_at, kind, source_file, added, removed, total, rejected, note "
            "FROM versions WHERE list_id = ? ORDER BY number",
            (self.list_id(name),),
        ).fetchall()
        return [ListVersion(name, *row) for row in rows]

    def latest_version(self, name: str) -> int:
        row = self.db.execute("SELECT MAX(number) FROM versions WHERE list_id = ?", (self.list_id(name),)).fetchone()
        return int(row[0] or 0)

    def activate(self, name: str, version: int) -> None:
        list_id = self.list_id(name)
        exists = self.db.execute("SELECT 1 FROM versions WHERE list_id = ? AND number = ?", (list_id, version))
        if exists.fetchone() is None:
            raise StoreError(f"list {name!r} has no version {version}")
        with self.transaction():
            self.db.execute("UPDATE lists SET active_version = ? WHERE id = ?", (version, list_id))

    def resolve_version(self, name: str, version: int | None) -> int:
        """The given version, checked, or the active one."""
        if version is None:
            active = self.get_list(name).active_version
            if active is None:
                raise StoreError(f"list {name!r} has no active version yet: import entries or activate one")
            return active
        if not 1 <= version <= self.latest_version(name):
            raise StoreError(f"list {name!r} has no version {version}")
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
            values = np.frombuffer(blob, dtype=np.uint8).reshape(-1, kind.byte_length)
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
            return LiveSignals(np.zeros((0, signal.byte_length), np.uint8), np.zeros(0, np.int64))
        values = np.concatenate([p.values for p in parts])
        ids = np.concatenate([p.entry_ids for p in parts])
        live = ~np.isin(ids, self.removed_ids(name, number))
        return LiveSignals(np.ascontiguousarray(values[live]), ids[live])

    def entries(self, name: str, version: int | None = None) -> Iterator[ListEntry]:
        """Live entries of a version (default: the active one), in entry-id order, streamed."""
        number = self.resolve_version(name, version)
        removed = self.removed_ids(name, number)
        yield from self._entries_of(name, self.segments(name, number), removed, keep_removed=False)

    def entries_by_id(self, entry_ids: Iterable[int]) -> dict[int, ListEntry]:
        """Entries (live or tombstoned) by id, with their list and provenance."""
        wanted = sorted({int(i) for i in entry_ids})
        found: dict[int, ListEntry] = {}
        provenances: dict[str, dict[int, tuple[str | None, str]]] = {}  # per list, read once per call
        for entry_id in wanted:
            row = self.db.execute(
                "SELECT l.name, s.signal_type, s.version, "
                "substr(s.hash_values, (? - s.first_entry) * length(s.hash_values) / s.count + 1, "
                "length(s.hash_values) / s.count), "
                "substr(s.source_lines, (? - s.first_entry) * 8 + 1, 8) "
                "FROM segments s JOIN lists l ON l.id = s.list_id "
                "WHERE s.first_entry <= ? AND ? < s.first_entry + s.count",
                (entry_id, entry_id, entry_id, entry_id),
            ).fetchone()
            if row is None:
                continue
            name, signal_text, version, value, line = row
            meta = self.meta_range(entry_id, entry_id).get(entry_id, (None, None))
            removed = self.db.execute(
                "SELECT removed_version FROM tombstones WHERE entry_id = ?", (entry_id,)
            ).fetchone()
            if name not in provenances:
                provenances[name] = self._provenance(str(name))
            provenance = provenances[name]
            found[entry_id] = ListEntry(
                entry_id=entry_id,
                list_name=str(name),
                signal_type=SignalType(signal_text),
                value=bytes(value),
                external_id=meta[0],
                classification=meta[1],
                source_file=provenance[int(version)][0],
                source_line=int(np.frombuffer(bytes(line), dtype="<i8")[0]),
                imported_at=provenance[int(version)][1],
                added_version=int(version),
                removed_version=None if removed is None else int(removed[0]),
            )
        return found

    def diff(self, name: str, old: int, new: int) -> tuple[list[ListEntry], list[ListEntry]]:
        """(entries live in `new` but not in `old`, entries live in `old` but not in `new`)."""
        if old > new:
            added, removed = self.diff(name, new, old)
            return removed, added
        removed_by_new = self.removed_ids(name, new)
        added = list(self._entries_of(name, self.segments(name, new, after=old), removed_by_new, keep_removed=False))
        gone = set(self.removed_ids(name, new, after=old).tolist()) - set(self.removed_ids(name, old).tolist())
        removed = [
            entry
            for entry in self._entries_of(name, self.segments(name, old), np.array(sorted(gone)), keep_removed=True)
        ]
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
            source_file, imported_at = provenance[segment.version]
            for i in chosen.tolist():
                entry_id = int(ids[i])
                external_id, classification = meta.get(entry_id, (None, None))
                yield ListEntry(
                    entry_id=entry_id,
                    list_name=name,
                    signal_type=segment.signal,
                    value=segment.values[i].tobytes(),
                    external_id=external_id,
                    classification=classification,
                    source_file=source_file,
                    source_line=int(segment.lines[i]),
                    imported_at=imported_at,
                    added_version=segment.version,
                    removed_version=None,
                )

    def meta_range(self, first: int, last: int) -> dict[int, tuple[str | None, str | None]]:
        """entry id -> (external id, classification) for ids in [first, last] that have either."""
        rows = self.db.execute(
            "SELECT entry_id, external_id, classification FROM entry_meta WHERE entry_id BETWEEN ? AND ?",
            (first, last),
        )
        return {int(r[0]): (r[1], r[2]) for r in rows}

    def _provenance(self, name: str) -> dict[int, tuple[str | None, str]]:
        rows = self.db.execute(
            "SELECT number, source_file, created_at FROM versions WHERE list_id = ?", (self.list_id(name),)
        )
        return {int(number): (source_file, str(created)) for number, source_file, created in rows}


def _hash_list(row: tuple[object, ...]) -> HashList:
    name, source, signal_types, threshold, action, negative, active_version, created_at = row
    return HashList(
        name=str(name),
        source=SourceProgramme(str(source)),
        signal_types=frozenset(SignalType(s) for s in str(signal_types).split(",")),
        threshold=int(str(threshold)),
        action=ListAction(str(action)),
        negative=bool(negative),
        active_version=None if active_version is None else int(str(active_version)),
        created_at=str(created_at),
    )
