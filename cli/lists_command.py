"""`hashmatch lists ...`: create, import, inspect, diff, activate, export and remove hash lists."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, EXIT_USAGE, add_db_argument, fail, open_store
from engine.exporters import ExportFormat, export_entries
from engine.importers.formats import ImportFormat, read_records
from engine.importers.records import ImportFormatError
from engine.importing import ImportMode, ImportReport, import_records
from engine.lists import DEFAULT_THRESHOLD, HashList, ListAction, SourceProgramme
from engine.signals import SignalType
from engine.store import ListNotFoundError, Store, StoreError

MAX_REJECTS_SHOWN = 20


def register(commands: Any) -> None:
    parser = commands.add_parser("lists", help="manage hash lists", description="Manage hash lists and versions.")
    sub = parser.add_subparsers(dest="lists_command", required=True, metavar="ACTION")

    create = sub.add_parser("create", help="create an empty list")
    _list_options(create)
    create.set_defaults(run=run_create)

    load = sub.add_parser("import", help="import a list file as a new version (creating the list if needed)")
    load.add_argument("file", type=Path)
    _list_options(load)
    load.add_argument("--format", choices=[f.value for f in ImportFormat], default=ImportFormat.AUTO.value)
    load.add_argument(
        "--mode",
        choices=[m.value for m in ImportMode],
        default=ImportMode.REPLACE.value,
        help="replace: the file is the whole list (default); delta: add entries and apply its tombstones",
    )
    load.add_argument("--no-activate", action="store_true", help="create the version without activating it")
    load.add_argument("--sha256", action="store_true", help="untyped 64-hex-digit lines are SHA-256, not PDQ")
    load.add_argument("--rejects", type=Path, help="write every rejected line as CSV (line,reason,detail)")
    load.add_argument("--note", default="", help="a note stored with the version")
    load.add_argument("--json", action="store_true", help="print the import report as JSON")
    load.set_defaults(run=run_import)

    listing = sub.add_parser("ls", help="list the lists")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_ls)

    show = sub.add_parser("show", help="a list's settings and versions")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)

    versions = sub.add_parser("versions", help="a list's versions")
    versions.add_argument("name")
    versions.add_argument("--json", action="store_true")
    versions.set_defaults(run=run_versions)

    diff = sub.add_parser("diff", help="entries added and removed between two versions")
    diff.add_argument("name")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int)
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(run=run_diff)

    activate = sub.add_parser("activate", help="make a version the one that is matched against")
    activate.add_argument("name")
    activate.add_argument("version", type=int)
    activate.set_defaults(run=run_activate)

    export = sub.add_parser("export", help="write a version's live entries")
    export.add_argument("name")
    export.add_argument("--version", type=int, help="default: the active version")
    export.add_argument("--format", choices=[f.value for f in ExportFormat], default=ExportFormat.CSV.value)
    export.add_argument("--out", type=Path, help="default: standard output")
    export.set_defaults(run=run_export)

    remove = sub.add_parser("rm", help="delete a list, its versions and entries")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="required: confirms the deletion")
    remove.set_defaults(run=run_rm)

    for command in (create, load, listing, show, versions, diff, activate, export, remove):
        add_db_argument(command)


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", dest="name", required=True, help="list name")
    parser.add_argument("--source", choices=[s.value for s in SourceProgramme], default=SourceProgramme.LOCAL.value)
    parser.add_argument("--types", default="pdq,md5,sha1,sha256", help="signal types the list holds (comma-separated)")
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, help="PDQ match threshold in bits")
    parser.add_argument("--action", choices=[a.value for a in ListAction], default=ListAction.REMOVE.value)
    parser.add_argument("--negative", action="store_true", help="a list of known false positives")


def _spec(args: argparse.Namespace) -> HashList:
    return HashList(
        name=args.name,
        source=SourceProgramme(args.source),
        signal_types=frozenset(SignalType(t.strip()) for t in args.types.split(",") if t.strip()),
        threshold=args.threshold,
        action=ListAction(args.action),
        negative=args.negative,
    )


def _guarded(run: Any) -> Any:
    """Store and input errors become one clear line on stderr and exit status 1, never a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            with open_store(args) as store:
                return int(run(store, args))
        except ListNotFoundError as exc:
            return fail(f"no list named {exc.name!r} (see 'hashmatch lists ls')")
        except (StoreError, ImportFormatError, ValueError, OSError) as exc:
            return fail(str(exc))

    return wrapper


@_guarded
def run_create(store: Store, args: argparse.Namespace) -> int:
    created = store.create_list(_spec(args))
    print(f"created list {created.name!r}")
    return EXIT_OK


@_guarded
def run_import(store: Store, args: argparse.Namespace) -> int:
    try:
        store.get_list(args.name)
    except ListNotFoundError:
        store.create_list(_spec(args))
    progress = _progress_printer() if sys.stderr.isatty() else None
    report = import_records(
        store,
        args.name,
        read_records(args.file, ImportFormat(args.format)),
        mode=ImportMode(args.mode),
        source_file=str(args.file),
        activate=not args.no_activate,
        default_64_hex=SignalType.SHA256 if args.sha256 else SignalType.PDQ,
        progress=progress,
        note=args.note,
    )
    if args.rejects:
        with args.rejects.open("w") as out:
            out.write("line,reason,detail\n")
            for reject in report.rejects:
                out.write(f"{reject.line},{reject.reason},{json.dumps(reject.detail)}\n")
    if args.json:
        print(json.dumps(_report_dict(report)))
    else:
        _print_report(report, activated=not args.no_activate)
    return EXIT_OK


def _progress_printer() -> Any:
    def show(records: int) -> None:
        sys.stderr.write(f"\r{records:,} records read")
        sys.stderr.flush()

    return show


def _report_dict(report: ImportReport) -> dict[str, Any]:
    return {
        "list": report.list_name,
        "version": report.version,
        "mode": report.mode.value,
        "records_read": report.records_read,
        "added": report.added,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "total": report.total,
        "rejected": report.rejected,
        "rejected_by_reason": report.reject_counts(),
        "rejects": [{"line": r.line, "reason": r.reason.value, "detail": r.detail} for r in report.rejects],
    }


def _print_report(report: ImportReport, activated: bool) -> None:
    state = "active" if activated else "not activated"
    print(
        f"list {report.list_name!r} version {report.version} ({report.mode}, {state}): "
        f"{report.added} added, {report.unchanged} unchanged, {report.removed} removed, {report.total} total; "
        f"{report.rejected} rejected of {report.records_read} records"
    )
    for reason, count in sorted(report.reject_counts().items()):
        print(f"  {reason}: {count}")
    for reject in report.rejects[:MAX_REJECTS_SHOWN]:
        print(f"  line {reject.line}: {reject.reason} {reject.detail}", file=sys.stderr)
    if report.rejected > MAX_REJECTS_SHOWN:
        print(f"  ... {report.rejected - MAX_REJECTS_SHOWN} more (--rejects FILE writes them all)", file=sys.stderr)


def _list_dict(store: Store, hash_list: HashList) -> dict[str, Any]:
    active = next((v for v in store.versions(hash_list.name) if v.number == hash_list.active_version), None)
    return {
        "name": hash_list.name,
        "source": hash_list.source.value,
        "signal_types": sorted(s.value for s in hash_list.signal_types),
        "threshold": hash_list.threshold,
        "action": hash_list.action.value,
        "negative": hash_list.negative,
        "active_version": hash_list.active_version,
        "entries": active.total if active else 0,
        "created_at": hash_list.created_at,
    }


@_guarded
def run_ls(store: Store, args: argparse.Namespace) -> int:
    rows = [_list_dict(store, h) for h in store.lists()]
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    print(f"{'name':24} {'source':16} {'types':22} {'thr':>3} {'action':7} {'neg':3} {'active':>6} {'entries':>10}")
    for r in rows:
        print(
            f"{r['name']:24} {r['source']:16} {','.join(r['signal_types']):22} {r['threshold']:>3} "
            f"{r['action']:7} {'yes' if r['negative'] else 'no':3} {r['active_version'] or '-':>6} {r['entries']:>10}"
        )
    return EXIT_OK


def _versions_dicts(store: Store, name: str) -> list[dict[str, Any]]:
    return [
        {
            "version": v.number,
            "created_at": v.created_at,
            "kind": v.kind,
            "source_file": v.source_file,
            "added": v.added,
            "removed": v.removed,
            "total": v.total,
            "rejected": v.rejected,
            "note": v.note,
        }
        for v in store.versions(name)
    ]


@_guarded
def run_show(store: Store, args: argparse.Namespace) -> int:
    record = _list_dict(store, store.get_list(args.name)) | {"versions": _versions_dicts(store, args.name)}
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            if key != "versions":
                print(f"{key}: {value}")
        _print_versions(record["versions"], record["active_version"])
    return EXIT_OK


@_guarded
def run_versions(store: Store, args: argparse.Namespace) -> int:
    rows = _versions_dicts(store, args.name)
    if args.json:
        print(json.dumps(rows))
    else:
        _print_versions(rows, store.get_list(args.name).active_version)
    return EXIT_OK


def _print_versions(rows: list[dict[str, Any]], active: int | None) -> None:
    header = f"{'version':>7} {'created_at':25} {'kind':8} {'added':>9} {'removed':>9} {'total':>10} {'rejected':>8}"
    print("  " + header)
    for r in rows:
        mark = "*" if r["version"] == active else " "
        print(
            f"{mark} {r['version']:>7} {r['created_at']:25} {r['kind']:8} {r['added']:>9} {r['removed']:>9} "
            f"{r['total']:>10} {r['rejected']:>8}  {r['source_file'] or ''}"
        )


@_guarded
def run_diff(store: Store, args: argparse.Namespace) -> int:
    for number in (args.old, args.new):
        store.resolve_version(args.name, number)
    added, removed = store.diff(args.name, args.old, args.new)
    if args.json:
        print(
            json.dumps(
                {
                    "added": [_entry_dict(e) for e in added],
                    "removed": [_entry_dict(e) for e in removed],
                }
            )
        )
        return EXIT_OK
    for sign, entries in (("+", added), ("-", removed)):
        for e in entries:
            print(f"{sign} {e.signal_type.value} {e.hex} {e.external_id or ''} {e.classification or ''}".rstrip())
    print(f"{len(added)} added, {len(removed)} removed from version {args.old} to {args.new}", file=sys.stderr)
    return EXIT_OK


def _entry_dict(entry: Any) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "signal_type": entry.signal_type.value,
        "hash": entry.hex,
        "external_id": entry.external_id,
        "classification": entry.classification,
        "source_file": entry.source_file,
        "source_line": entry.source_line,
        "added_version": entry.added_version,
    }


@_guarded
def run_activate(store: Store, args: argparse.Namespace) -> int:
    store.activate(args.name, args.version)
    print(f"list {args.name!r}: version {args.version} is active")
    return EXIT_OK


@_guarded
def run_export(store: Store, args: argparse.Namespace) -> int:
    entries = store.entries(args.name, args.version)
    fmt = ExportFormat(args.format)
    if args.out:
        with args.out.open("w", newline="") as out:
            count = export_entries(entries, out, fmt)
    else:
        count = export_entries(entries, sys.stdout, fmt)
    print(f"{count} entries exported", file=sys.stderr)
    return EXIT_OK


@_guarded
def run_rm(store: Store, args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"hashmatch: refusing to delete list {args.name!r} without --yes", file=sys.stderr)
        return EXIT_USAGE
    store.delete_list(args.name)
    print(f"deleted list {args.name!r}")
    return EXIT_OK
