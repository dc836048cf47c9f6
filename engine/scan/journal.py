"""The scan's state in --out: what makes a scan resumable after Ctrl-C, `kill -9` or a power cut.

One SQLite file, `scan.sqlite`. Each finished input is one row (its result line, whether it was hashed);
rows are committed in small batches with synchronous=FULL, so a commit is on disk when it returns and an
interruption loses at most the inputs of the batch in flight, which the next run does again. The result
files (results.jsonl and the reports) are written from the journal, in the order inputs finished, so a
resumed scan's outputs hold every input exactly once. The scan's identity (its inputs, lists and options) is
stored too: resuming into a folder that holds another scan is refused rather than mixed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.scan.records import ScanRecord
from hashing.errors import HashmatchError, ReasonCode

JOURNAL_NAME = "scan.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    label BLOB NOT NULL UNIQUE,
    sha256 TEXT,
    hashed INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS progress (seconds REAL NOT NULL, done INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (started TEXT NOT NULL, ended TEXT, interrupted INTEGER, hashed INTEGER);
"""


class ScanJournal:
    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / JOURNAL_NAME
        # Labels are file names from seized media, any bytes: they are keyed as those bytes (label_key).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def claim_identity(self, identity: dict[str, Any]) -> bool:
        """Record what this scan is; True when it resumes an earlier run of the same scan. Refuses (USAGE) a
        folder that holds a different scan."""
        wanted = json.dumps(identity, sort_keys=True)
        row = self._db.execute("SELECT value FROM identity WHERE key = 'scan'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO identity VALUES ('scan', ?)", (wanted,))
            return False
        if row[0] != wanted:
            raise HashmatchError(
                ReasonCode.USAGE,
                f"{self.path.parent} holds the results of a different scan (other inputs, lists or options): "
                "give a new --out, or the same command to resume that one",
            )
        return True

    def done_labels(self) -> set[bytes]:
        """The label_key of every input with a result line."""
        return {bytes(label) for (label,) in self._db.execute("SELECT label FROM results")}

    def done_archives(self) -> set[bytes]:
        """The label_key of every input recorded as an archive: a resumed scan expands those on disk again,
        since their members may not all be done."""
        rows = self._db.execute("SELECT label FROM results WHERE json_extract(record, '$.type') = 'archive'")
        return {bytes(label) for (label,) in rows}

    def hashed_digests(self) -> dict[str, str]:
        """sha256 -> label of every input hashed so far: duplicates found after a resume point at these."""
        rows = self._db.execute("SELECT sha256, label FROM results WHERE hashed = 1 AND sha256 IS NOT NULL")
        return {sha256: label_of_key(bytes(key)) for sha256, key in rows}

    def record_of(self, label: str) -> ScanRecord | None:
        row = self._db.execute("SELECT record FROM results WHERE label = ?", (label_key(label),)).fetchone()
        return None if row is None else ScanRecord.from_json(row[0])

    def add(self, finished: Iterable[tuple[ScanRecord, bool]], progress: tuple[float, int] | None = None) -> None:
        """One checkpoint: these results (record, hashed), and a progress sample, in one durable commit."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO results (label, sha256, hashed, record) VALUES (?, ?, ?, ?)",
                [(label_key(r.path), r.sha256, int(hashed), r.to_json()) for r, hashed in finished],
            )
            if progress is not None:
                self._db.execute("INSERT INTO progress VALUES (?, ?)", progress)

    def start_run(self, started: str) -> int:
        with self._transaction():
            cursor = self._db.execute("INSERT INTO runs (started) VALUES (?)", (started,))
        return int(cursor.lastrowid or 0)

    def end_run(self, run: int, ended: str, interrupted: bool, hashed: int) -> None:
        """A run that ends (a killed one never does) records whether it was interrupted and how many inputs
        it hashed: across runs these add up to the inputs hashed, each once."""
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET ended = ?, interrupted = ?, hashed = ? WHERE rowid = ?",
                (ended, int(interrupted), hashed, run),
            )

    def first_start(self) -> str | None:
        row = self._db.execute("SELECT min(started) FROM runs").fetchone()
        return None if row is None else row[0]

    def records(self) -> Iterator[ScanRecord]:
        for (text,) in self._db.execute("SELECT record FROM results ORDER BY seq"):
            yield ScanRecord.from_json(text)

    def counts(self) -> tuple[int, int]:
        """(inputs done, inputs hashed) over every run of this scan."""
        row = self._db.execute("SELECT count(*), coalesce(sum(hashed), 0) FROM results").fetchone()
        return int(row[0]), int(row[1])

    def progress(self) -> tuple[tuple[float, int], ...]:
        return tuple(
            (float(s), int(d)) for s, d in self._db.execute("SELECT seconds, done FROM progress ORDER BY rowid")
        )

    def write_results(self, target: Path) -> int:
        """results.jsonl from the journal, replaced atomically (a reader never sees half a file)."""
        scratch = target.with_name(target.name + ".partial")
        count = 0
        with scratch.open("w", encoding="utf-8", errors="surrogateescape") as lines:
            for (text,) in self._db.execute("SELECT record FROM results ORDER BY seq"):
                lines.write(text + "\n")
                count += 1
            lines.flush()
            os.fsync(lines.fileno())
        os.replace(scratch, target)
        return count

    def _transaction(self) -> Any:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def label_key(label: str) -> bytes:
    """A label as the journal keys it: its bytes. File names that are not UTF-8 arrive surrogate-escaped, and
    no text form of them could be told apart from every name that is."""
    return label.encode("utf-8", "surrogateescape")


def label_of_key(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")
