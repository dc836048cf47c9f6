"""What the audit log says of each kind of event: hashes, decisions and versions, never media or user data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.importing import ImportReport
from engine.matcher import Verdict
from engine.signals import ParsedValue, SignalType


def match_record(verdicts: list[Verdict], method: str) -> dict[str, Any]:
    """Every verdict of one call, by column (a busy server writes one record per call, and a column of hashes
    as one hex string costs a fraction of a row per verdict). Row i of the call is: `decisions[i]`; its
    hashes at [i] of each hash column (`pdq`: 64 hex digits each, all zeros where the query had none, which no
    real PDQ is; a column is null when no query of the call had that hash); `quality[i]`; and the `matches`
    and `reasons` entries that start with i."""
    queries = [v.query for v in verdicts]
    return {
        "method": method,
        "count": len(verdicts),
        "decisions": [v.decision for v in verdicts],  # a StrEnum is its value in JSON (and `.value` is slow)
        "pdq": _column([q.pdq.digest if q.pdq else None for q in queries], 32),
        "quality": [q.pdq.quality if q.pdq else None for q in queries],
        "md5": _column([q.md5 for q in queries], 16),
        "sha1": _column([q.sha1 for q in queries], 20),
        "sha256": _column([q.sha256 for q in queries], 32),
        "vpdq": _column([_video_identity(q.others) if q.others else None for q in queries], 32),
        "matches": [
            [i, m.list_name, m.entry_id, m.signal_type.value, m.distance]
            for i, v in enumerate(verdicts)
            for m in v.matches
        ],
        "reasons": [[i, *(r.value for r in v.reasons)] for i, v in enumerate(verdicts) if v.reasons],
        "list_versions": verdicts[0].list_versions if verdicts else {},
    }


def match_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A match record's verdicts one by one (for readers and tests): the inverse of its columns."""
    rows: list[dict[str, Any]] = []
    for i in range(data["count"]):
        row: dict[str, Any] = {"decision": data["decisions"][i], "quality": data["quality"][i]}
        for name, width in (("pdq", 32), ("md5", 16), ("sha1", 20), ("sha256", 32), ("vpdq", 32)):
            column = data[name]
            value = column[2 * width * i : 2 * width * (i + 1)] if column else None
            row[name] = None if value is None or value == "0" * 2 * width else value
        row["matches"] = [m[1:] for m in data["matches"] if m[0] == i]
        row["reasons"] = [r for entry in data["reasons"] if entry[0] == i for r in entry[1:]]
        rows.append(row)
    return rows


def _column(values: list[bytes | None], width: int) -> str | None:
    if all(v is None for v in values):
        return None
    zero = bytes(width)
    return b"".join(zero if v is None else v for v in values).hex()


def _video_identity(others: Mapping[SignalType, ParsedValue]) -> bytes | None:
    video = others.get(SignalType.VPDQ)
    return video.value if video is not None else None


def import_record(report: ImportReport, source: str | None) -> dict[str, Any]:
    return {
        "list": report.list_name,
        "version": report.version,
        "mode": report.mode.value,
        "source": source,
        "added": report.added,
        "changed": report.changed,
        "removed": report.removed,
        "total": report.total,
        "rejected": report.rejected,
        "settings_changed": report.settings_changed,
    }
