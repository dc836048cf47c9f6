"""Per-client API tokens with roles, stored hashed, and the token file as a running server sees it.

Tokens travel as `authorization: Bearer <token>` metadata. The token file holds only SHA-256 digests of
the tokens (JSON: [{"name": ..., "sha256": ..., "role": "matcher" | "admin" | "auditor"}]), so reading it does not
reveal a token. Writes are atomic (a temporary file renamed over it, owner-only from the first byte), and a
running server reloads the file when it changes: a token added, rotated or removed takes effect within
`TokenSource.check_s` seconds, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

log = logging.getLogger("hashmatch.auth")


class Role(StrEnum):
    MATCHER = "matcher"
    ADMIN = "admin"  # everything a matcher may do, list administration, and reading the evidence
    AUDITOR = "auditor"  # reads the audit log, referrals, feedback and statistics; matches and changes nothing


@dataclass(frozen=True)
class TokenRecord:
    name: str
    sha256: str
    role: Role


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, records: list[TokenRecord]) -> None:
        self.records = records
        self._by_digest = {r.sha256: r for r in records}

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        """The tokens in `path`; none when it does not exist. ValueError when it is not a token file."""
        if not path.exists():
            return cls([])
        try:
            rows = json.loads(path.read_text())
            return cls([TokenRecord(str(r["name"]), str(r["sha256"]), Role(r["role"])) for r in rows])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a hashmatch token file") from exc

    @staticmethod
    def add(path: Path, name: str, role: Role) -> str:
        """Create a token (replacing one of the same name), store its digest, return the token (shown once)."""
        token = "hm_" + secrets.token_urlsafe(32)
        rows = [r for r in _rows(path) if r["name"] != name]
        _write(path, [*rows, {"name": name, "sha256": digest(token), "role": role.value}])
        return token

    @staticmethod
    def remove(path: Path, name: str) -> bool:
        """Revoke the token of that name; False when there is none."""
        rows = _rows(path)
        kept = [r for r in rows if r["name"] != name]
        if len(kept) == len(rows):
            return False
        _write(path, kept)
        return True

    def authenticate(self, token: str) -> TokenRecord | None:
        wanted = digest(token)
        for stored, record in self._by_digest.items():
            if hmac.compare_digest(stored, wanted):
                return record
        return None

    def __len__(self) -> int:
        return len(self._by_digest)


def _rows(path: Path) -> list[dict[str, str]]:
    return [{"name": r.name, "sha256": r.sha256, "role": r.role.value} for r in TokenStore.load(path).records]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the file with owner-only permissions from the start, then renamed over it: readers
    # (a running server) never see a half-written file, and it is never readable by others.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(rows, indent=2))
    os.replace(temporary, path)


class TokenSource:
    """The tokens of a file, reloaded when the file changes (checked at most every `check_s` seconds, on
    the next call). A file that becomes unreadable keeps the tokens last loaded, and says so in the log: a
    typo must not lock every client out; revocation goes through `hashmatch tokens rm`, which writes
    atomically."""

    def __init__(self, path: Path, check_s: float = 1.0) -> None:
        self.path = path
        self.check_s = check_s
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._store = TokenStore.load(path)
        self._checked = time.monotonic()

    def current(self) -> TokenStore:
        now = time.monotonic()
        if now - self._checked < self.check_s:
            return self._store
        with self._lock:
            if now - self._checked >= self.check_s:
                self._checked = now
                stamp = self._stat()
                if stamp != self._stamp:
                    self._reload(stamp)
        return self._store

    def _reload(self, stamp: tuple[int, int, int] | None) -> None:
        try:
            self._store = TokenStore.load(self.path)
        except (OSError, ValueError) as exc:
            log.error(json.dumps({"event": "token_file_unreadable", "path": str(self.path), "error": str(exc)}))
            return
        self._stamp = stamp
        log.info(json.dumps({"event": "tokens_reloaded", "path": str(self.path), "tokens": len(self._store)}))

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)
