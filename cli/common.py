"""Arguments and output shared by the `hashmatch` subcommands: the store option, and the two error formats.

Every error a user sees names a reason code from `hashing.errors.ReasonCode` and says what is wrong in plain
words, never in Python's:
* a failed input of a run that goes on (a file, a hash): `ERROR,REASON,input,detail` on stderr;
* a failed command: `hashmatch: error: REASON: detail` on stderr, exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from engine.audit.log import AuditLog, default_actor, default_audit_path
from engine.store import Store, default_db_path
from hashing.errors import HashmatchError, ReasonCode

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"SQLite store (default: $HASHMATCH_DB or {default_db_path()})",
    )
    parser.add_argument(
        "--create",
        action="store_true",
        help="create the store's directory if it is missing (the default location is always created)",
    )


def open_store(args: argparse.Namespace) -> Store:
    """The store named by --db or $HASHMATCH_DB, whose directory must exist (a typo must not start an empty
    store) unless --create; the default location is created when missing."""
    explicit = args.db or os.environ.get("HASHMATCH_DB")
    return Store(store_path(args), create_parents=bool(getattr(args, "create", False)) or not explicit)


def error_line(reason: ReasonCode | str, label: object, detail: str) -> str:
    """The one line format for an input that failed while the run goes on."""
    return f"ERROR,{reason},{label},{detail}"


def fail(reason: ReasonCode, message: str, status: int = EXIT_FAILED) -> int:
    sys.stderr.write(f"hashmatch: error: {reason}: {message}\n")
    return status


def fail_with(error: HashmatchError) -> int:
    """Exit 2 for a usage error (as argparse's own), 1 for anything else."""
    return fail(error.reason, error.detail, EXIT_USAGE if error.reason is ReasonCode.USAGE else EXIT_FAILED)


def os_error(exc: OSError) -> HashmatchError:
    """An OSError in plain words, with the reason the media layer uses for the same condition."""
    reason = ReasonCode.NOT_FOUND if isinstance(exc, FileNotFoundError) else ReasonCode.UNREADABLE
    where = f"{exc.filename}: " if exc.filename else ""
    return HashmatchError(reason, f"{where}{exc.strerror or 'input/output error'}")


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default=None,
        help="where to hash and search: auto (a GPU only after its self-test passed; the default), cpu, or gpu "
        "(an error when no GPU passes the self-test)",
    )


def audited(store: Store | Path, kind: str, data: dict[str, Any]) -> None:
    """On disk before the command reports success (the log beside the store, or beside the store path given;
    AUDIT_UNAVAILABLE if not), with the operating-system user as the actor."""
    with AuditLog(default_audit_path(store.path if isinstance(store, Store) else store)) as log:
        log.append(default_actor(), kind, data, wait=True)


def store_path(args: argparse.Namespace) -> Path:
    """The store --db or $HASHMATCH_DB names, or the per-user default (not opened)."""
    explicit = args.db or os.environ.get("HASHMATCH_DB")
    return Path(explicit) if explicit else default_db_path()


def bits_argument(text: str) -> int:
    """An argparse type: a whole number of bits within 0..256 (a PDQ threshold)."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"a whole number of bits within 0..256, not {text!r}")
    return int(text)
