"""`hashmatch admin --server HOST:PORT ACTION`: the ListAdmin RPCs from the command line (an admin token).

    import FILE --list NAME [--format F] [--mode replace|delta] [--no-activate] [--allow-shrink] [new-list options]
    add FILE --list NAME      entries of a list file (any import format) added as a new version
    remove FILE --list NAME   entries of a list file removed (an entry given by id alone removes all its hashes)
    versions NAME | activate NAME VERSION | status
    settings NAME [--threshold BITS] [--action remove|refer|review] [--query-variants | --no-query-variants]
                                                                      a new version with these settings

The server applies the same guards as a local import (nothing accepted, a replace that would remove more
than half of a list) and serves an activated version at once. Output is text, or JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error_line, fail
from cli.remote import add_connection_arguments, connected
from engine.importers.formats import ImportFormat, read_records
from engine.importers.records import HexBatch, ParsedRecord, ParseResult
from engine.importing import ImportMode
from engine.lists import ListAction, SourceProgramme
from engine.signals import SignalType
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.errors import ReasonCode


def register(commands: Any) -> None:
    admin = commands.add_parser(
        "admin",
        help="administer the lists of a running server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_arguments(admin, required=True)
    admin.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    actions = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    load = actions.add_parser("import", help="import a list file as a new version")
    load.add_argument("file", type=Path)
    load.add_argument("--list", dest="name", required=True)
    load.add_argument("--format", choices=[f.value for f in ImportFormat], default=ImportFormat.AUTO.value)
    load.add_argument("--mode", choices=[m.value for m in ImportMode], default=ImportMode.REPLACE.value)
    load.add_argument("--no-activate", action="store_true")
    load.add_argument("--allow-shrink", action="store_true", help="allow removing more than half of the list")
    new_list = load.add_argument_group("for a list the import creates")
    new_list.add_argument("--source", choices=[s.value for s in SourceProgramme], default="")
    new_list.add_argument("--types", default="", help="signal types (comma-separated; default: all)")
    new_list.add_argument("--threshold", type=int, default=0, help="PDQ threshold (default 31)")
    new_list.add_argument("--action", choices=[a.value for a in ListAction], default="")
    new_list.add_argument("--negative", action="store_true")
    load.set_defaults(run=run_import)

    for name, deleted in (("add", False), ("remove", True)):
        change = actions.add_parser(name, help=f"{name} the entries of a list file (a new version, active at once)")
        change.add_argument("file", type=Path)
        change.add_argument("--list", dest="name", required=True)
        change.add_argument("--format", choices=[f.value for f in ImportFormat], default=ImportFormat.AUTO.value)
        change.set_defaults(run=run_entries, deleted=deleted)

    versions = actions.add_parser("versions", help="a list's versions")
    versions.add_argument("name")
    versions.set_defaults(run=run_versions)
    activate = actions.add_parser("activate", help="serve a version")
    activate.add_argument("name")
    activate.add_argument("version", type=int)
    activate.set_defaults(run=run_activate)
    settings = actions.add_parser(
        "settings", help="change a list's threshold, action or query variants (a new version, served at once)"
    )
    settings.add_argument("name")
    settings.add_argument("--threshold", type=int, help="PDQ threshold in bits (0..256)")
    settings.add_argument("--action", choices=[a.value for a in ListAction], default="")
    settings.add_argument(
        "--query-variants",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="match queries' rotations, content box and crops against the list (--no-query-variants: not)",
    )
    settings.set_defaults(run=run_settings)
    status = actions.add_parser("status", help="the lists, their active and served versions and sizes")
    status.set_defaults(run=run_status)
    health = actions.add_parser(
        "health", help="exit 0 if the server answers SERVING to a gRPC health check (no token needed; probes)"
    )
    health.set_defaults(run=run_health)


def _emit(record: dict[str, Any], args: argparse.Namespace, text: str) -> None:
    print(json.dumps(record) if args.json else text)


def _report(response: pb.ImportListResponse, args: argparse.Namespace) -> int:
    counts = {name: getattr(response, name) for name in ("added", "changed", "unchanged", "removed", "total")}
    rejects = [{"line": r.line, "reason": r.reason, "detail": r.detail} for r in response.rejects]
    record = {
        "list": response.list,
        "version": response.version,
        **counts,
        "rejected": len(rejects),
        "rejects": rejects,
    }
    text = (
        f"list {response.list!r} version {response.version}: {response.added} added, {response.changed} changed, "
        f"{response.unchanged} unchanged, {response.removed} removed, {response.total} total; "
        f"{len(rejects)} rejected"
    )
    _emit(record, args, text)
    for reject in response.rejects:
        print(error_line(reject.reason, f"line {reject.line}", reject.detail), file=sys.stderr)
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    content = args.file.read_bytes()
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    with connected(args) as client:
        response = client.import_list(
            args.name,
            content,
            activate=not args.no_activate,
            format=args.format,
            mode=args.mode,
            allow_shrink=args.allow_shrink,
            source=args.source,
            signal_types=types,
            threshold=args.threshold,
            action=args.action,
            negative=args.negative,
        )
    return _report(response, args)


def run_entries(args: argparse.Namespace) -> int:
    """The file is read here with the import formats' parsers; its entries travel as Entry messages."""
    entries: list[pb.Entry] = []
    failed = 0
    for item in read_records(args.file, ImportFormat(args.format)):
        for record in _records_of(item):
            if isinstance(record, ParsedRecord):
                entries.append(
                    pb.Entry(
                        hash=record.hash_text,
                        signal_type=record.signal_name or "",
                        external_id=record.external_id or "",
                        classification=record.classification or "",
                    )
                )
            else:
                failed += 1
                print(error_line(record.reason, f"line {record.line}", record.detail), file=sys.stderr)
    with connected(args) as client:
        call = client.remove_entries if args.deleted else client.add_entries
        status = _report(call(args.name, entries), args)
    return EXIT_FAILED if failed else status


def _records_of(item: ParseResult | HexBatch) -> list[ParseResult]:
    """A parse result, or the rows of a bulk HexBatch (untyped 64-hex-digit lines: PDQ)."""
    if isinstance(item, HexBatch):
        return [
            ParsedRecord(int(line), bytes(row).hex(), SignalType.PDQ.value)
            for line, row in zip(item.lines, item.values, strict=True)
        ]
    return [item]


def run_versions(args: argparse.Namespace) -> int:
    with connected(args) as client:
        response = client.list_versions(args.name)
    fields = ("version", "created_at", "kind", "added", "removed", "total", "rejected", "active")
    rows = [{name: getattr(v, name) for name in fields} for v in response.versions]
    lines = [
        f"{'*' if v.active else ' '} {v.version:>7} {v.created_at:25} {v.kind:8} {v.added:>9} {v.removed:>9} "
        f"{v.total:>10} {v.rejected:>8}"
        for v in response.versions
    ]
    _emit({"list": args.name, "versions": rows}, args, "\n".join(lines))
    return EXIT_OK


def run_activate(args: argparse.Namespace) -> int:
    with connected(args) as client:
        response = client.activate(args.name, args.version)
    serving = dict(response.serving_versions)
    text = f"list {args.name!r}: version {args.version} is active; serving " + ", ".join(
        f"{name} {version}" for name, version in sorted(serving.items())
    )
    _emit({"list": args.name, "active_version": args.version, "serving_versions": serving}, args, text)
    return EXIT_OK


def run_settings(args: argparse.Namespace) -> int:
    if args.threshold is None and not args.action and args.query_variants is None:
        return fail(ReasonCode.USAGE, "give --threshold, --action or --query-variants/--no-query-variants", EXIT_USAGE)
    with connected(args) as client:
        version = client.change_settings(args.name, args.threshold, args.action, args.query_variants)
    text = f"list {args.name!r}: version {version.version} ({version.kind}) is active and served"
    _emit({"list": args.name, "version": version.version, "kind": version.kind}, args, text)
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    with connected(args) as client:
        response = client.status()
    fields = ("name", "active_version", "serving_version", "entries")
    rows = [{name: getattr(listed, name) for name in fields} for listed in response.lists]
    lines = [f"{'name':24} {'active':>6} {'serving':>7} {'entries':>10}"]
    for listed in response.lists:
        active, serving = listed.active_version or "-", listed.serving_version or "-"
        lines.append(f"{listed.name:24} {active:>6} {serving:>7} {listed.entries:>10}")
    _emit({"lists": rows, "version": response.version}, args, "\n".join(lines))
    return EXIT_OK


def run_health(args: argparse.Namespace) -> int:
    with connected(args) as client:
        serving = client.serving()
    _emit({"serving": serving}, args, "SERVING" if serving else "NOT_SERVING")
    return EXIT_OK if serving else EXIT_FAILED
