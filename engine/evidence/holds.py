"""Entries held for review by the flood guard, kept in the store so that a hold outlives a restart and every
process serving the store sees it."""

from __future__ import annotations

from dataclasses import dataclass

from engine.audit.log import now
from engine.store import Store


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
