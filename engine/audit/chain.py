"""One audit record and the hash chain that links it to the one before.

A record is one JSON line: `seq` (1, 2, 3, ...), `time` (UTC, ISO 8601), `host`, `actor` (a token name or an
operating-system user), `kind`, `data` (what happened: list versions, hashes, verdicts; never media), `prev`
(the previous record's hash; 64 zeros for the first), and last `hash`: the SHA-256 of the line's own text
up to `hash` (closed with `}`), exactly as written. Hashing the bytes as written, not a re-serialisation,
keeps appends cheap and leaves nothing to canonicalise: any changed byte shows. Changing, deleting, inserting
or reordering a record breaks the sequence or the chain at that record, whatever is recomputed after it,
unless every later record and every copy of the head hash held elsewhere (an export) is rewritten too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
_HASH_FIELD = ',"hash":"'
_FIELDS = ("seq", "time", "host", "actor", "kind", "data", "prev", "hash")


def sealed_line(seq: int, time: str, host: str, actor: str, kind: str, data: Any, prev: str) -> tuple[str, str]:
    """(the record's line, its hash)."""
    body = json.dumps(
        {"seq": seq, "time": time, "host": host, "actor": actor, "kind": kind, "data": data, "prev": prev},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f'{body[:-1]}{_HASH_FIELD}{digest}"}}\n', digest


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    host: str
    actor: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str
    computed_hash: str  # of the line as read: equals `hash` unless the record was changed

    @classmethod
    def from_line(cls, text: str) -> AuditRecord:
        """ValueError (with why) for anything that is not a whole record."""
        line = text.rstrip("\n")
        at = line.rfind(_HASH_FIELD)
        if at < 0 or not line.endswith('"}'):
            raise ValueError("not an audit record (no hash last)")
        raw = json.loads(line)
        if not isinstance(raw, dict) or tuple(raw) != _FIELDS:
            raise ValueError("not an audit record (fields missing, extra or out of order)")
        if not isinstance(raw["seq"], int) or not isinstance(raw["data"], dict):
            raise ValueError("not an audit record (seq or data of the wrong type)")
        computed = hashlib.sha256((line[:at] + "}").encode()).hexdigest()
        return cls(**raw, computed_hash=computed)
