"""A real process appending to an audit log until it is killed: 20 small records, then 64 MiB ones (a write
that takes long enough to be caught in the middle). Run as `python -m tests.audit_writer PATH`."""

from __future__ import annotations

import sys

from engine.audit.log import AuditLog

if __name__ == "__main__":
    with AuditLog(sys.argv[1]) as log:
        for n in range(20):
            log.append("token:test", "match", {"n": n}, wait=True)
        n = 0
        while True:
            log.append("token:test", "import", {"n": n, "note": "x" * (64 << 20)}, wait=True)
            n += 1
