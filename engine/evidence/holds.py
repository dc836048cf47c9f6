"""Entries held for review by the flood guard, kept in the store so that a hold outlives a restart and every
process serving the store sees it; and a server's book of the holds it takes, written off the match path."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from engine.audit.log import AuditLog, now
from engine.evidence.flood import FloodGuard, Hold
from engine.store import Store

log = logging.getLogger("hashmatch.server")


@dataclass(frozen=True)
class HeldEntry:
    entry_id: int
    list_name: str
    since: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"entry_id": self.entry_id, "list": self.list_name, "since": self.since, "detail": self.detail}


def held_entries(store: Store) -> list[HeldEntry]:
    rows = store.db.execute("SELECT entry_id, list, since, detail FROM quarantine ORDER BY since, entry_id")
    return [HeldEntry(int(entry_id), str(name), str(since), str(detail)) for entry_id, name, since, detail in rows]


def hold(store: Store, entry_id: int, list_name: str, detail: str) -> HeldEntry:
    """The entry held (as the store has it: an entry already held keeps its first time and detail)."""
    with store.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO quarantine (entry_id, list, since, detail) VALUES (?, ?, ?, ?)",
            (entry_id, list_name, now(), detail),
        )
        row = db.execute("SELECT list, since, detail FROM quarantine WHERE entry_id = ?", (entry_id,)).fetchone()
    return HeldEntry(entry_id, str(row[0]), str(row[1]), str(row[2]))


def release(store: Store, entry_id: int) -> HeldEntry | None:
    """The hold taken off, or None when the entry was not held."""
    with store.transaction() as db:
        row = db.execute("SELECT entry_id, list, since, detail FROM quarantine WHERE entry_id = ?", (entry_id,))
        found = row.fetchone()
        if found is None:
            return None
        db.execute("DELETE FROM quarantine WHERE entry_id = ?", (entry_id,))
    return HeldEntry(int(found[0]), str(found[1]), str(found[2]), str(found[3]))


class HoldBook:
    """The holds a server's flood guard takes, written to the store and audited off the match path: a store
    busy with an import must not stall lookups, and a failed write must not fail them. A hold the store
    cannot take yet stays queued (and is listed, and releasable) until the next `save`."""

    def __init__(self, store: Store, guard: FloodGuard, audit: AuditLog | None) -> None:
        self.store = store
        self.guard = guard
        self.audit = audit
        self._unsaved: list[tuple[Hold, str]] = []
        self._lock = threading.Lock()
        self._saving = threading.Lock()  # one writer at a time, and a release waits for a write in flight

    def add(self, hold: Hold, list_name: str) -> None:
        with self._lock:
            self._unsaved.append((hold, list_name))

    def save(self) -> bool:
        """Writes the holds taken since the last call (a restart, and every server of the store, then sees
        them), audits and logs them. One that cannot be written now stays queued for the next call; False
        when any is left. Never raises: the watcher thread that calls it must live on."""
        with self._saving:
            with self._lock:
                pending, self._unsaved = self._unsaved, []
            for n, (taken, list_name) in enumerate(pending):
                try:
                    held = hold(self.store, taken.entry_id, list_name, taken.detail)
                except Exception:
                    log.exception("a flood hold could not be written to the store; it stays queued")
                    with self._lock:
                        self._unsaved[:0] = pending[n:]
                    return False
                self.guard.written(taken.entry_id)
                log.warning(json.dumps({"event": "entry_held", **held.to_dict()}))
                try:
                    if self.audit is not None:
                        self.audit.append("system:flood-guard", "entry_held", held.to_dict())
                except Exception:  # the hold is in the store; the log reports its own failure
                    log.exception("the audit record of a flood hold could not be queued")
            return True

    def release(self, entry_id: int, actor: str) -> HeldEntry | None:
        """An admin's release: automatic action again for the entry (None when it was not held). A hold still
        queued is dropped with it; a write in flight finishes first."""
        with self._saving:
            with self._lock:
                queued = [pending for pending in self._unsaved if pending[0].entry_id == entry_id]
                self._unsaved = [pending for pending in self._unsaved if pending[0].entry_id != entry_id]
            released = release(self.store, entry_id)
            if released is None and queued:  # never written: released before it reached the store
                taken, list_name = queued[0]
                released = HeldEntry(entry_id, list_name, now(), taken.detail)
            if released is None:
                return None
            self.guard.release(entry_id)
        if self.audit is not None:
            self.audit.append(f"token:{actor}", "entry_released", released.to_dict(), wait=True)
        return released

    def listed(self) -> list[HeldEntry]:
        """The store's holds, and those not written yet."""
        self.save()
        with self._lock:
            queued = [
                HeldEntry(taken.entry_id, name, "", f"{taken.detail} (not yet written to the store)")
                for taken, name in self._unsaved
            ]
        return held_entries(self.store) + queued

    def save_at_stop(self) -> None:
        """The last writes before the store closes: a few tries, then every hold still unsaved is named in the
        log and in the audit log (a restart would otherwise forget it)."""
        for attempt in range(3):
            if self.save():
                return
            time.sleep(0.5 * (attempt + 1))
        with self._lock:
            lost = [{"entry_id": h.entry_id, "list": name, "detail": h.detail} for h, name in self._unsaved]
        log.error(json.dumps({"event": "holds_not_saved", "holds": lost}))
        try:
            if self.audit is not None:
                self.audit.append("system:flood-guard", "holds_not_saved", {"holds": lost})
        except Exception:  # stopping goes on: the log line above names them
            log.exception("the audit record of unsaved holds could not be queued")
