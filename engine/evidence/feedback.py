"""Reviewers' feedback on matches: a match confirmed, or a false positive. A false positive can disable its
entry (a new list version without it, active at once) and is exportable, to send back to the list's source.
Who gave it is the caller's name (an API token, or the operating-system user of the CLI), kept with the
feedback and in the audit log."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any

from engine.audit.log import now
from engine.importers.records import ParsedRecord
from engine.importing import ImportMode, import_records
from engine.store import Store
from hashing.errors import HashmatchError, ReasonCode


class FeedbackKind(StrEnum):
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True)
class Feedback:
    id: int
    at: str
    actor: str
    list: str
    entry_id: int
    signal_type: str
    hash: str
    external_id: str | None
    kind: FeedbackKind
    note: str
    referral_id: str | None
    disabled_version: int | None  # the version that no longer holds the entry, when it was disabled

    def audit_data(self, viewed: bool) -> dict[str, Any]:
        return asdict(self) | {"kind": self.kind.value, "viewed": viewed}


COLUMNS = tuple(field.name for field in fields(Feedback))  # the feedback table's, in this order


class EntryNotFoundError(HashmatchError):
    def __init__(self, list_name: str, entry_id: int) -> None:
        super().__init__(ReasonCode.ENTRY_NOT_FOUND, f"list {list_name!r} holds no entry {entry_id}")


def give_feedback(
    store: Store,
    list_name: str,
    entry_id: int,
    kind: FeedbackKind,
    actor: str,
    note: str = "",
    disable: bool = False,
    referral_id: str | None = None,
) -> Feedback:
    """Record it; with `disable` (false positives only), first import a version of the list without the
    entry and activate it (the next lookup no longer matches it)."""
    if disable and kind is not FeedbackKind.FALSE_POSITIVE:
        raise HashmatchError(ReasonCode.USAGE, "only a false positive can disable its entry")
    store.get_list(list_name)  # LIST_NOT_FOUND before anything else
    entry = store.entries_by_id([entry_id]).get(entry_id)
    if entry is None or entry.list_name != list_name:
        raise EntryNotFoundError(list_name, entry_id)
    disabled: int | None = None
    if disable:
        store.check_not_rolled_back(list_name)  # the import checks again, inside its transaction
    if disable and entry.removed_version is None:
        report = import_records(
            store,
            list_name,
            [ParsedRecord(1, entry.text, entry.signal_type.value, entry.external_id, deleted=True)],
            mode=ImportMode.DELTA,
            source_file=f"(feedback: false positive, by {actor})",
            activate=True,
            note=f"entry {entry_id} disabled as a false positive" + (f": {note}" if note else ""),
        )
        disabled = report.version
    given = Feedback(
        0,
        now(),
        actor,
        list_name,
        entry_id,
        entry.signal_type.value,
        entry.text,
        entry.external_id,
        kind,
        note,
        referral_id,
        disabled,
    )
    columns = [name for name in COLUMNS if name != "id"]
    with store.transaction() as db:
        cursor = db.execute(
            f"INSERT INTO feedback ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [_value(given, name) for name in columns],
        )
        return replace(given, id=int(cursor.lastrowid or 0))


def feedback_since(
    store: Store, since: str | None = None, list_name: str | None = None, kind: FeedbackKind | None = None
) -> list[Feedback]:
    rows = store.db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM feedback "
        "WHERE at >= ? AND (? IS NULL OR list = ?) AND (? IS NULL OR kind = ?) ORDER BY id",
        (since or "", list_name, list_name, kind, kind),
    )
    return [_feedback(row) for row in rows]


def _feedback(row: tuple[Any, ...]) -> Feedback:
    row_id, at, actor, name, entry_id, signal, value, external_id, kind, note, referral_id, disabled = row
    return Feedback(
        int(row_id),
        str(at),
        str(actor),
        str(name),
        int(entry_id),
        str(signal),
        str(value),
        external_id,
        FeedbackKind(kind),
        str(note),
        referral_id,
        None if disabled is None else int(disabled),
    )


# What goes back to a list's source: the entry as the source knows it, and why; not who reviewed it.
EXPORT_FIELDS = ("list", "external_id", "signal_type", "hash", "kind", "note", "at", "disabled_version")


def exported(rows: list[Feedback]) -> list[dict[str, Any]]:
    """Feedback as it goes back to a list's source (EXPORT_FIELDS)."""
    return [{name: _value(row, name) for name in EXPORT_FIELDS} for row in rows]


def feedback_to_json(rows: list[dict[str, Any]]) -> str:
    """JSON lines of exported rows."""
    return "".join(json.dumps(row) + "\n" for row in rows)


def feedback_to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name in EXPORT_FIELDS])
    return out.getvalue()


def _value(row: Feedback, name: str) -> Any:
    value = getattr(row, name)
    return value.value if isinstance(value, FeedbackKind) else value
