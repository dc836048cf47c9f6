"""`hashmatch audit verify|export`: check the audit log's chain, and hand its records on."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, add_db_argument, fail, store_path
from cli.remote import add_connection_arguments, connected
from engine.audit.checkpoints import Signer, check_checkpoints, generate_key
from engine.audit.log import AuditLog, Finding, default_audit_path, export, records, since_of, verify
from hashing.errors import HashmatchError, ReasonCode
from kernels.optional import MissingDependencyError

EXIT_BAD = 1


def register(commands: Any) -> None:
    audit = commands.add_parser("audit", help="verify or export the tamper-evident audit log")
    actions = audit.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "verify",
        help="check every record's sequence and hash chain",
        description="Exit 0 when every record verifies; 1 with AUDIT_TAMPERED and the first bad record when a "
        "record was changed, deleted, inserted or moved; 1 with AUDIT_PARTIAL_TAIL when only the last line is "
        "incomplete (a crash while appending: every earlier record verified).",
    )
    check.add_argument("--json", action="store_true")
    check.add_argument(
        "--public-key",
        type=Path,
        help="also check every signed checkpoint in the log against this Ed25519 public key (audit keygen)",
    )
    keygen = actions.add_parser("keygen", help="a new Ed25519 key for signed checkpoints: KEY (0600) and KEY.pub")
    keygen.add_argument("--key", type=Path, required=True)
    keygen.set_defaults(run=run_keygen)
    sign = actions.add_parser("checkpoint", help="append a checkpoint of the log's head, signed with --key")
    sign.add_argument("--key", type=Path, required=True)
    sign.set_defaults(run=run_checkpoint)
    out = actions.add_parser("export", help="records as JSON lines, optionally from a time on")
    out.add_argument("--since", help="ISO 8601 time or date (UTC), e.g. 2026-12-01")
    for parser in (check, out, sign):
        parser.add_argument("--log", type=Path, help="the audit log (default: beside the store, NAME.audit.jsonl)")
        add_db_argument(parser)
    remote = out.add_argument_group("through a running server (an auditor or admin token)")
    add_connection_arguments(remote, required=False)
    check.set_defaults(run=run_verify)
    out.set_defaults(run=run_export)


def log_path(args: argparse.Namespace) -> Path:
    if args.log is not None:
        return Path(args.log)
    return default_audit_path(store_path(args))


def run_verify(args: argparse.Namespace) -> int:
    result = verify(log_path(args))
    if args.json:
        print(json.dumps({k: v for k, v in result.__dict__.items()} | {"finding": result.finding.value}))
    if result.finding is Finding.OK:
        signed = ""
        if args.public_key is not None:
            try:
                check = check_checkpoints(list(records(log_path(args))), args.public_key)
            except MissingDependencyError as missing:
                return fail(ReasonCode.MISSING_DEPENDENCY, str(missing), 2)
            except (OSError, ValueError):
                return fail(ReasonCode.USAGE, f"{args.public_key} is not a readable Ed25519 public key", 2)
            if check.problem:
                return fail(ReasonCode.AUDIT_TAMPERED, check.problem, EXIT_BAD)
            signed = f"; {check.checked} signed checkpoints verify, covering records 1-{check.covered}"
        if not args.json:
            print(f"ok: {result.records} records verified; head {result.head}{signed}")
        return EXIT_OK
    reason = ReasonCode.AUDIT_TAMPERED if result.finding is Finding.TAMPERED else ReasonCode.AUDIT_PARTIAL_TAIL
    where = f"line {result.line}" + (f" (seq {result.seq})" if result.seq is not None else "")
    return fail(reason, f"{where}: {result.detail}; the {result.records} records before it verify", EXIT_BAD)


def run_keygen(args: argparse.Namespace) -> int:
    try:
        public = generate_key(args.key)
    except MissingDependencyError as missing:
        return fail(ReasonCode.MISSING_DEPENDENCY, str(missing), 2)
    except FileExistsError:
        return fail(ReasonCode.USAGE, f"{args.key} exists: a key is never overwritten", 2)
    print(f"private key {args.key} (keep it away from the log's host if you can); public key {public}")
    return EXIT_OK


def run_checkpoint(args: argparse.Namespace) -> int:
    try:
        signer = Signer(args.key)
    except MissingDependencyError as missing:
        return fail(ReasonCode.MISSING_DEPENDENCY, str(missing), 2)
    except (OSError, ValueError):
        return fail(ReasonCode.USAGE, f"{args.key} is not a readable Ed25519 private key (audit keygen)", 2)
    with AuditLog(log_path(args)) as log:
        log.checkpoint(signer)
        seq, head = log.head
    print(f"checkpoint appended: seq {seq}, head {head}")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    try:
        since = since_of(args.since)
    except HashmatchError as refused:
        return fail(refused.reason, f"--{refused.detail}", 2)
    if args.server:
        with connected(args) as client:
            for line in client.export_audit(since or ""):
                sys.stdout.write(line + "\n")
        return EXIT_OK
    for record in export(log_path(args), since):
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    return EXIT_OK
