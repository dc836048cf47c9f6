"""`hashmatch lists ...`: create, import, set, inspect, diff, activate, export and remove hash lists."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, EXIT_USAGE, add_db_argument, audited, bits_argument, fail, fail_with, open_store
from engine.audit.records import import_record
from engine.exporters import ExportFormat, export_entries
from engine.importers.formats import ImportFormat, read_records
from engine.importing import ImportGuard, ImportMode, ImportRefusedError, ImportReport, import_records
from engine.lists import (
    DEFAULT_THRESHOLD,
    HashList,
    ListAction,
    ListEntry,
    ListSettings,
    ListSettingsError,
    SourceProgramme,
)
from engine.signals import DEFAULT_LIST_TYPES, SignalType
from engine.store import ListNotFoundError, Store
from hashing.errors import ReasonCode

MAX_REJECTS_SHOWN = 20
DEFAULT_MAX_SHRINK_PERCENT = 50.0


def register(commands: Any) -> None:
    parser = commands.add_parser("lists", help="manage hash lists", description="Manage hash lists and versions.")
    sub = parser.add_subparsers(dest="lists_command", required=True, metavar="ACTION")

    create = sub.add_parser("create", help="create an empty list")
    _list_options(create)
    create.set_defaults(run=run_create)

    load = sub.add_parser(
        "import",
        help="import a list file as a new version (creating the list if needed)",
        description="Import FILE as the next version of the list. Refused, writing nothing, when not one record "
        "is accepted, when the file is a delta (deletion records) imported as replace, when it cannot be read to "
        "its end, or when it would remove more than --max-shrink of the live entries (--allow-shrink allows it). "
        "--threshold, --action, --negative and --query-variants given here become the new version's settings.",
    )
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
    load.add_argument(
        "--max-shrink",
        type=_percent,
        default=DEFAULT_MAX_SHRINK_PERCENT,
        metavar="PERCENT",
        help=f"refuse an import that removes more than this share of the live entries (default "
        f"{DEFAULT_MAX_SHRINK_PERCENT:.0f})",
    )
    load.add_argument(
        "--allow-shrink", action="store_true", help="allow an import that removes more than --max-shrink, or all"
    )
    load.set_defaults(run=run_import)

    settings = sub.add_parser(
        "set",
        help="change a list's threshold, action, negative flag or query variants (a new version)",
        description="Create the next version with the latest version's entries and new settings. Activating an "
        "older version brings back the settings it was made with.",
    )
    settings.add_argument("name")
    _settings_options(settings)
    settings.add_argument("--no-activate", action="store_true", help="create the version without activating it")
    settings.set_defaults(run=run_set)

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

    diff = sub.add_parser(
        "diff",
        help="entries added, removed and reclassified between two versions",
        description="Compares content (type, hash, external id), not entry ids: an entry removed and imported "
        "again (a rollback) is no difference. Lines: '+' added, '-' removed, '~' new classification.",
    )
    diff.add_argument("name")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int)
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(run=run_diff)

    activate = sub.add_parser("activate", help="make a version the one that is matched against")
    activate.add_argument("name")
    activate.add_argument("version", type=int)
    activate.set_defaults(run=run_activate)

    export = sub.add_parser("export", help="write a version's live entries (CSV keeps their provenance)")
    export.add_argument("name")
    export.add_argument("--version", type=int, help="default: the active version")
    export.add_argument("--format", choices=[f.value for f in ExportFormat], default=ExportFormat.CSV.value)
    export.add_argument("--out", type=Path, help="default: standard output")
    export.set_defaults(run=run_export)

    remove = sub.add_parser("rm", help="delete a list, its versions and entries")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="required: confirms the deletion")
    remove.set_defaults(run=run_rm)

    for command in (create, load, settings, listing, show, versions, diff, activate, export, remove):
        add_db_argument(command)


def _signal_types(text: str) -> frozenset[SignalType]:
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in {s.value for s in SignalType}]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown signal type {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(s.value for s in SignalType)}"
        )
    return frozenset(SignalType(n) for n in names)


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"a percentage within 0..100, not {text!r}")
    return value


def _settings_options(parser: argparse.ArgumentParser) -> None:
    """Unset options are None, so that an import or `set` changes only what was asked for."""
    parser.add_argument(
        "--threshold",
        type=bits_argument,
        default=None,
        help=f"PDQ match threshold in bits (new lists: {DEFAULT_THRESHOLD})",
    )
    parser.add_argument("--action", choices=[a.value for a in ListAction], default=None, help="new lists: remove")
    parser.add_argument(
        "--negative",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a list of known false positives (--no-negative: an ordinary list)",
    )
    parser.add_argument(
        "--query-variants",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="match queries' rotations, flips, content box and crops against this list (new lists: on); "
        "--no-query-variants: the query's own PDQ alone",
    )


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", dest="name", required=True, help="list name")
    parser.add_argument("--source", choices=[s.value for s in SourceProgramme], default=None, help="new lists: local")
    parser.add_argument(
        "--types",
        type=_signal_types,
        default=None,
        help="signal types the list holds: pdq, md5, sha1, sha256, vpdq (new lists: pdq,md5,sha1,sha256)",
    )
    _settings_options(parser)


def _spec(args: argparse.Namespace) -> HashList:
    """A new list from the options, with the defaults for what was not given."""
    return HashList(
        name=args.name,
        source=SourceProgramme(args.source or SourceProgramme.LOCAL.value),
        signal_types=args.types or DEFAULT_LIST_TYPES,
        threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
        action=ListAction(args.action or ListAction.REMOVE.value),
        negative=bool(args.negative),
        query_variants=args.query_variants is not False,
    )


def _asked_settings(args: argparse.Namespace, current: ListSettings) -> ListSettings:
    return ListSettings(
        threshold=current.threshold if args.threshold is None else args.threshold,
        action=current.action if args.action is None else ListAction(args.action),
        negative=current.negative if args.negative is None else args.negative,
        query_variants=current.query_variants if args.query_variants is None else args.query_variants,
    )


def _with_store(run: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        with open_store(args) as store:
            return int(run(store, args))

    return wrapper


@_with_store
def run_create(store: Store, args: argparse.Namespace) -> int:
    created = store.create_list(_spec(args))
    audited(store, "list_create", {"list": created.name, "source": created.source.value})
    print(f"created list {created.name!r}")
    return EXIT_OK


def _existing_list_fits(store: Store, args: argparse.Namespace) -> None:
    """A list's source and signal types are fixed at creation: a different one asked for is an error, not
    something to ignore in silence."""
    existing = store.get_list(args.name)
    if args.source is not None and args.source != existing.source.value:
        raise ListSettingsError(f"list {args.name!r} comes from {existing.source.value!r}, not {args.source!r}")
    if args.types is not None and args.types != existing.signal_types:
        held = ",".join(sorted(s.value for s in existing.signal_types))
        raise ListSettingsError(f"list {args.name!r} holds {held}; its signal types cannot change on import")


@_with_store
def run_import(store: Store, args: argparse.Namespace) -> int:
    try:
        _existing_list_fits(store, args)
    except ListNotFoundError:
        store.create_list(_spec(args))
    progress = _progress_printer() if sys.stderr.isatty() else None
    try:
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
            guard=ImportGuard(max_shrink=args.max_shrink / 100.0, allow_shrink=args.allow_shrink),
            settings=_asked_settings(args, store.latest_settings(args.name)),
        )
    except ImportRefusedError as refused:
        if progress is not None:
            sys.stderr.write("\n")
        refusal = {"list": args.name, "source": str(args.file), "reason": refused.reason.value}
        audited(store, "list_import_refused", refusal)
        _write_rejects(args.rejects, refused.report)
        _print_reject_summary(refused.report)
        return fail_with(refused)
    if progress is not None:
        sys.stderr.write("\n")
    audited(store, "list_import", import_record(report, str(args.file)) | {"activated": not args.no_activate})
    _write_rejects(args.rejects, report)
    if args.json:
        print(json.dumps(_report_dict(report)))
    else:
        _print_report(report, activated=not args.no_activate)
    return EXIT_OK


def _write_rejects(path: Path | None, report: ImportReport) -> None:
    if path is None:
        return
    with path.open("w") as out:
        out.write("line,reason,detail\n")
        for reject in report.rejects:
            out.write(f"{reject.line},{reject.reason},{json.dumps(reject.detail)}\n")


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
        "accepted": report.accepted,
        "added": report.added,
        "changed": report.changed,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "total": report.total,
        "rejected": report.rejected,
        "rejected_by_reason": report.reject_counts(),
        "rejects": [{"line": r.line, "reason": r.reason.value, "detail": r.detail} for r in report.rejects],
        "settings_changed": report.settings_changed,
    }


def _print_report(report: ImportReport, activated: bool) -> None:
    state = "active" if activated else "not activated"
    print(
        f"list {report.list_name!r} version {report.version} ({report.mode}, {state}): "
        f"{report.added} added, {report.changed} changed, {report.unchanged} unchanged, {report.removed} removed, "
        f"{report.total} total; {report.rejected} rejected of {report.records_read} records"
    )
    for change in report.settings_changed:
        print(f"  settings: {change}")
    for reason, count in sorted(report.reject_counts().items()):
        print(f"  {reason}: {count}")
    _print_reject_lines(report)


def _print_reject_summary(report: ImportReport) -> None:
    for reason, count in sorted(report.reject_counts().items()):
        print(f"  {reason}: {count}", file=sys.stderr)
    _print_reject_lines(report)


def _print_reject_lines(report: ImportReport) -> None:
    for reject in report.rejects[:MAX_REJECTS_SHOWN]:
        print(f"  line {reject.line}: {reject.reason} {reject.detail}", file=sys.stderr)
    if report.rejected > MAX_REJECTS_SHOWN:
        print(f"  ... {report.rejected - MAX_REJECTS_SHOWN} more (--rejects FILE writes them all)", file=sys.stderr)


@_with_store
def run_set(store: Store, args: argparse.Namespace) -> int:
    if all(getattr(args, name) is None for name in ("threshold", "action", "negative", "query_variants")):
        return fail(
            ReasonCode.USAGE,
            "give --threshold, --action, --negative/--no-negative or --query-variants/--no-query-variants",
            EXIT_USAGE,
        )
    version = store.change_settings(
        args.name, _asked_settings(args, store.latest_settings(args.name)), activate=not args.no_activate
    )
    if version is None:
        latest, active = store.latest_version(args.name), store.get_list(args.name).active_version
        hint = (
            ""
            if latest == active
            else f" (version {active} is active: 'hashmatch lists activate {args.name} {latest}')"
        )
        print(f"list {args.name!r}: the latest version, {latest}, has these settings already; no new version{hint}")
        return EXIT_OK
    state = "active" if not args.no_activate else "not activated"
    audited(store, "list_settings", {"list": args.name, "version": version.number, "changes": version.note})
    print(f"list {args.name!r} version {version.number} ({state}): {version.note}")
    return EXIT_OK


def _list_dict(store: Store, hash_list: HashList) -> dict[str, Any]:
    active = next((v for v in store.versions(hash_list.name) if v.number == hash_list.active_version), None)
    return {
        "name": hash_list.name,
        "source": hash_list.source.value,
        "signal_types": sorted(s.value for s in hash_list.signal_types),
        "threshold": hash_list.threshold,
        "action": hash_list.action.value,
        "negative": hash_list.negative,
        "query_variants": hash_list.query_variants,
        "active_version": hash_list.active_version,
        "entries": active.total if active else 0,
        "created_at": hash_list.created_at,
    }


@_with_store
def run_ls(store: Store, args: argparse.Namespace) -> int:
    rows = [_list_dict(store, h) for h in store.lists()]
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    print(
        f"{'name':24} {'source':16} {'types':22} {'thr':>3} {'action':7} {'neg':3} {'var':3} {'active':>6} "
        f"{'entries':>10}"
    )
    for r in rows:
        print(
            f"{r['name']:24} {r['source']:16} {','.join(r['signal_types']):22} {r['threshold']:>3} "
            f"{r['action']:7} {_yes_no(r['negative'])} {_yes_no(r['query_variants'])} "
            f"{r['active_version'] or '-':>6} {r['entries']:>10}"
        )
    return EXIT_OK


def _yes_no(flag: bool) -> str:
    return f"{'yes' if flag else 'no':3}"


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
            "threshold": v.settings.threshold,
            "action": v.settings.action.value,
            "negative": v.settings.negative,
            "query_variants": v.settings.query_variants,
        }
        for v in store.versions(name)
    ]


@_with_store
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


@_with_store
def run_versions(store: Store, args: argparse.Namespace) -> int:
    rows = _versions_dicts(store, args.name)
    if args.json:
        print(json.dumps(rows))
    else:
        _print_versions(rows, store.get_list(args.name).active_version)
    return EXIT_OK


def _print_versions(rows: list[dict[str, Any]], active: int | None) -> None:
    header = (
        f"{'version':>7} {'created_at':25} {'kind':8} {'added':>9} {'removed':>9} {'total':>10} {'rejected':>8} "
        f"{'thr':>3} {'action':7} {'neg':3} {'var':3}"
    )
    print("  " + header)
    for r in rows:
        mark = "*" if r["version"] == active else " "
        print(
            f"{mark} {r['version']:>7} {r['created_at']:25} {r['kind']:8} {r['added']:>9} {r['removed']:>9} "
            f"{r['total']:>10} {r['rejected']:>8} {r['threshold']:>3} {r['action']:7} "
            f"{_yes_no(r['negative'])} {_yes_no(r['query_variants'])}  {r['source_file'] or r['note'] or ''}"
        )


@_with_store
def run_diff(store: Store, args: argparse.Namespace) -> int:
    for number in (args.old, args.new):
        store.resolve_version(args.name, number)
    diff = store.diff(args.name, args.old, args.new)
    if args.json:
        print(
            json.dumps(
                {
                    "added": [_entry_dict(e) for e in diff.added],
                    "removed": [_entry_dict(e) for e in diff.removed],
                    "changed": [{"before": _entry_dict(b), "after": _entry_dict(a)} for b, a in diff.changed],
                }
            )
        )
        return EXIT_OK
    for sign, entries in (("+", diff.added), ("-", diff.removed)):
        for e in entries:
            print(f"{sign} {_entry_text(e)}")
    for before, after in diff.changed:
        print(f"~ {_entry_text(after)} (was {before.classification or '-'})")
    print(
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} reclassified from version "
        f"{args.old} to {args.new}",
        file=sys.stderr,
    )
    return EXIT_OK


def _entry_text(entry: ListEntry) -> str:
    return f"{entry.signal_type.value} {entry.hex} {entry.external_id or ''} {entry.classification or ''}".rstrip()


def _entry_dict(entry: ListEntry) -> dict[str, Any]:
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


@_with_store
def run_activate(store: Store, args: argparse.Namespace) -> int:
    store.activate(args.name, args.version)
    audited(store, "list_activate", {"list": args.name, "version": args.version})
    print(f"list {args.name!r}: version {args.version} is active")
    return EXIT_OK


@_with_store
def run_export(store: Store, args: argparse.Namespace) -> int:
    entries = store.entries(args.name, args.version)
    fmt = ExportFormat(args.format)
    if args.out:
        with args.out.open("w", newline="") as out:
            count = export_entries(entries, out, fmt)
    else:
        count = export_entries(entries, sys.stdout, fmt)
    audited(store, "list_export", {"list": args.name, "version": args.version, "entries": count})
    print(f"{count} entries exported", file=sys.stderr)
    return EXIT_OK


@_with_store
def run_rm(store: Store, args: argparse.Namespace) -> int:
    if not args.yes:
        return fail(ReasonCode.USAGE, f"refusing to delete list {args.name!r} without --yes", EXIT_USAGE)
    store.delete_list(args.name)
    audited(store, "list_delete", {"list": args.name})
    print(f"deleted list {args.name!r}")
    return EXIT_OK
