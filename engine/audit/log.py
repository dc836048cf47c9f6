"""The audit log file: appended by one writer (batched, fsync'd), verified and exported by anyone.

Appends are queued and written by a thread in batches, one `write` and one `fsync` per batch (group commit:
up to 50 ms of records): a verdict costs its caller a queue put, never a disk wait. A crash loses at most the
records of the last 50 ms that nobody waited for; `append(..., wait=True)` returns once the record is on disk
(admin actions, imports). The file is opened O_APPEND and owner-only (0600); a lock keeps writers' batches whole.

Several processes may write one log (a server, and `hashmatch lists` commands beside it): each batch is
written under an exclusive lock on the file, after reading the head the others may have moved.

A crash can leave a partial last line. `verify` reports it as a partial tail while every earlier record still
verifies. The next writer cuts it off (the file back to its last whole line) and appends a
`partial_tail_dropped` record holding the dropped bytes' length and SHA-256, so the chain says what was lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.audit.chain import GENESIS, AuditRecord, sealed_line
from engine.audit.checkpoints import Signer
from hashing.errors import HashmatchError, ReasonCode

BATCH_RECORDS = 1000  # records per write and fsync at most
GROUP_COMMIT_S = 0.05  # how long records nobody waits for may gather before they are written
_STOP = object()


class AuditUnavailableError(HashmatchError):
    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.AUDIT_UNAVAILABLE, message)


def default_audit_path(store: Path) -> Path:
    """Beside the store: hashmatch.db -> hashmatch.audit.jsonl."""
    return store.with_name(store.stem + ".audit.jsonl")


def default_actor() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"os:uid{os.getuid()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass
class _Pending:
    actor: str
    kind: str
    data: dict[str, Any]
    done: threading.Event | None


class AuditLog:
    """The writer. Use as a context manager, or call close(): it flushes what is queued."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.host = socket.gethostname()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise AuditUnavailableError(f"cannot open the audit log {self.path}: {exc.strerror}") from exc
        self._seq, self._head, self._size = 0, GENESIS, -1
        self._queue: queue.Queue[_Pending | object] = queue.Queue()
        self._failure: BaseException | None = None
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="hashmatch-audit", daemon=True)
        self._writer.start()
        self.flush()  # reads the head now: a damaged log is reported at start, not at the first event
        if self._failure is not None:
            failure = self._failure
            self.close()
            detail = failure.detail if isinstance(failure, HashmatchError) else getattr(failure, "strerror", "")
            raise AuditUnavailableError(f"the audit log {self.path}: {detail}")

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record written."""
        return self._seq, self._head

    def append(self, actor: str, kind: str, data: dict[str, Any], wait: bool = False) -> None:
        """Queue a record; with `wait`, return once it is on disk. Raises AuditUnavailableError once the
        writer has failed (a full disk, say): actions that must be audited then fail rather than go unrecorded."""
        if self._failure is not None or self.closed:
            raise AuditUnavailableError(f"the audit log {self.path} cannot be written" + (" (closed)" * self.closed))
        done = threading.Event() if wait else None
        self._queue.put(_Pending(actor, kind, data, done))
        if done is not None:
            self._wait(done)
            if self._failure is not None:
                raise AuditUnavailableError(f"the audit log {self.path} cannot be written")

    def _wait(self, done: threading.Event) -> None:
        """Until the writer has written it; never forever, should the writer be gone."""
        while not done.wait(1.0):
            if not self._writer.is_alive():
                raise AuditUnavailableError(f"the audit log {self.path} has no writer (closed)")

    def flush(self) -> None:
        """Return once everything queued so far is on disk."""
        done = threading.Event()
        self._queue.put(_Pending("", "", {}, done))  # a marker, not a record
        self._wait(done)

    def checkpoint(self, signer: Signer) -> None:
        """Append a signed checkpoint of the head as it is once everything queued is written."""
        self.flush()
        seq, head = self.head
        if seq:
            self.append("system", "checkpoint", signer.checkpoint(seq, head), wait=True)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Writes what is queued, then ends the writer; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        os.close(self._fd)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            stop = any(item is _STOP for item in batch)
            pending = [item for item in batch if isinstance(item, _Pending)]
            try:
                if self._failure is None:
                    self._write(pending)
            except (OSError, AuditUnavailableError) as failure:
                self._failure = failure
            for item in pending:
                if item.done is not None:
                    item.done.set()
            if stop:
                return

    def _next_batch(self) -> list[_Pending | object]:
        """Group commit: records that nobody waits for gather for up to GROUP_COMMIT_S, so a busy server
        writes and fsyncs a few times a second, not once per verdict; a record someone waits for (an admin
        action), or closing, ends the wait at once."""
        batch = [self._queue.get()]
        deadline = time.monotonic() + GROUP_COMMIT_S
        while len(batch) < BATCH_RECORDS:
            last = batch[-1]
            urgent = last is _STOP or (isinstance(last, _Pending) and last.done is not None)
            left = 0.0 if urgent else deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, pending: list[_Pending]) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._write_locked(pending)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _write_locked(self, pending: list[_Pending]) -> None:
        size = os.fstat(self._fd).st_size
        items = list(pending)
        if size != self._size:  # first batch, or another process appended (or crashed mid-append)
            self._seq, self._head, dropped = _tail_state(self._fd)
            if dropped is not None:
                items.insert(0, _Pending("system", "partial_tail_dropped", dropped, None))
        lines = []
        seq, head = self._seq, self._head
        for item in items:
            if not item.kind:
                continue  # a flush marker
            seq += 1
            line, head = sealed_line(seq, now(), self.host, item.actor, item.kind, item.data, head)
            lines.append(line)
        if lines:
            os.write(self._fd, "".join(lines).encode())
            os.fsync(self._fd)
        self._seq, self._head = seq, head
        self._size = os.fstat(self._fd).st_size


def _tail_state(fd: int) -> tuple[int, str, dict[str, Any] | None]:
    """The last whole record's (seq, hash), read backwards from the end; a partial last line is cut off and
    described."""
    size = os.fstat(fd).st_size
    end = _last_line_end(fd, size)
    dropped = None
    if end < size:
        tail = os.pread(fd, size - end, end)
        dropped = {"bytes": size - end, "sha256": hashlib.sha256(tail).hexdigest(), "after_byte": end}
        os.ftruncate(fd, end)
        os.fsync(fd)
    if end == 0:
        return 0, GENESIS, dropped
    start = _last_line_end(fd, end - 1)
    try:
        record = AuditRecord.from_line(os.pread(fd, end - 1 - start, start).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuditUnavailableError("its last record is damaged: run 'hashmatch audit verify'") from exc
    return record.seq, record.hash, dropped


def _last_line_end(fd: int, before: int) -> int:
    """The offset just past the last newline in the first `before` bytes (0 when there is none)."""
    position = before
    while position > 0:
        step = min(1 << 20, position)
        chunk = os.pread(fd, step, position - step)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return position - step + found + 1
        position -= step
    return 0


class Finding(StrEnum):
    OK = "ok"
    TAMPERED = "tampered"  # a record changed, deleted, inserted or moved
    PARTIAL_TAIL = "partial_tail"  # the last line is incomplete (a crash while appending)


@dataclass(frozen=True)
class Verification:
    finding: Finding
    records: int  # whole records that verified
    head: str  # the hash of the last record that verified
    line: int | None = None  # the first bad line (1-based)
    seq: int | None = None  # its sequence number, where it has one
    detail: str = ""


def records(path: str | os.PathLike[str]) -> Iterator[AuditRecord]:
    """The whole records of a log (a partial last line is left out); ValueError at a line that is not one."""
    with _open_for_reading(path) as lines:
        for raw in lines:
            if raw.endswith(b"\n"):
                yield AuditRecord.from_line(raw.decode())


def verify(path: str | os.PathLike[str]) -> Verification:
    """Check every record, streamed; name the first that breaks the sequence or the chain."""
    expected_seq, head = 1, GENESIS
    with _open_for_reading(path) as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.endswith(b"\n"):
                return Verification(
                    Finding.PARTIAL_TAIL, number - 1, head, number, None, f"{len(raw)} bytes without an end of line"
                )
            try:
                record = AuditRecord.from_line(raw.decode())
            except (ValueError, UnicodeDecodeError):
                return Verification(Finding.TAMPERED, number - 1, head, number, None, "not a valid audit record")
            problem = _problem(record, expected_seq, head)
            if problem:
                return Verification(Finding.TAMPERED, number - 1, head, number, record.seq, problem)
            expected_seq, head = record.seq + 1, record.hash
    return Verification(Finding.OK, expected_seq - 1, head)


def _problem(record: AuditRecord, expected_seq: int, head: str) -> str:
    if record.seq != expected_seq:
        return f"sequence {record.seq} where {expected_seq} was due (a record deleted, inserted or moved)"
    if record.prev != head:
        return "its link to the previous record is broken (a record before it deleted, inserted or changed)"
    if record.computed_hash != record.hash:
        return "its content does not match its hash (the record was changed)"
    return ""


def since_of(text: str | None) -> str | None:
    """A user's `--since` (an ISO 8601 time, or a date: its midnight; UTC unless it says otherwise) as the
    UTC time records are compared with; USAGE when it is neither."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HashmatchError(ReasonCode.USAGE, f"since {text!r} is not an ISO 8601 time or date") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def export(path: str | os.PathLike[str], since: str | None = None) -> Iterator[dict[str, Any]]:
    """Records (as dicts) with time >= `since` (ISO 8601, UTC; a date alone is its midnight)."""
    with _open_for_reading(path) as lines:
        for raw in lines:
            if not raw.endswith(b"\n"):
                return
            record: dict[str, Any] = json.loads(raw)
            if since is None or record["time"] >= since:
                yield record


@contextlib.contextmanager
def _open_for_reading(path: str | os.PathLike[str]) -> Iterator[Iterator[bytes]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise AuditUnavailableError(f"cannot read the audit log {path}: {exc.strerror}") from exc
    with handle:
        yield iter(handle)
