"""The evidence commands: referral records, prevalence statistics, reviewers' feedback, and entries held for
review by the flood guard. Each works on the local store (`--db`, the audit log beside it) or, with
`--server`, through a running server (an auditor token reads; feedback and releases need an admin token).

    hashmatch referrals export [--since T] [--format jsonl|json]
    hashmatch stats [--since DAY] [--by day,list] [--format csv|json] [--min-cell 10]
    hashmatch feedback give LIST ENTRY_ID --false-positive|--confirmed [--disable] [--note N] [--referral ID --viewed]
    hashmatch feedback export [--since T] [--list NAME] [--format csv|json]
    hashmatch held [ls | release ENTRY_ID]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.audit_command import log_path
from cli.common import EXIT_OK, add_db_argument, audited, open_store
from cli.remote import add_connection_arguments, connected
from engine.audit.log import default_actor, since_of
from engine.evidence import holds
from engine.evidence.feedback import (
    FeedbackKind,
    exported,
    feedback_since,
    feedback_to_csv,
    feedback_to_json,
    give_feedback,
)
from engine.evidence.prevalence import (
    DEFAULT_MIN_CELL,
    Cell,
    cells_to_csv,
    cells_to_json,
    first_day,
    parse_dimensions,
    prevalence,
)
from engine.evidence.referrals import referrals
from hashing.errors import HashmatchError, ReasonCode


def register(commands: Any) -> None:
    _register_referrals(commands)
    _register_stats(commands)
    _register_feedback(commands)
    _register_held(commands)


def _local_or_remote(parser: argparse.ArgumentParser, log: bool = False) -> None:
    add_db_argument(parser)
    if log:
        parser.add_argument("--log", type=Path, help="the audit log (default: beside the store, NAME.audit.jsonl)")
    remote = parser.add_argument_group("through a running server instead of the local store")
    add_connection_arguments(remote, required=False)


def _register_referrals(commands: Any) -> None:
    parser = commands.add_parser(
        "referrals",
        help="referral records of matches of 'refer' lists, for a person to review and file",
        description="Each record is shaped after the file fields of an NCMEC CyberTipline report. The server "
        "checks it against engine/evidence/referral.schema.json when it writes it, and the export checks every "
        "record again before it prints any (REFERRAL_INVALID: nothing is printed). hashmatch never files a "
        "report itself.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="the records, optionally from an incident time on")
    export.add_argument("--since", help="ISO 8601 time or date (UTC), e.g. 2026-12-01")
    export.add_argument("--format", choices=("jsonl", "json"), default="jsonl", help="JSON lines, or one JSON array")
    _local_or_remote(export, log=True)
    export.set_defaults(run=run_referrals_export)


def run_referrals_export(args: argparse.Namespace) -> int:
    since = since_of(args.since)
    if args.server:
        with connected(args) as client:
            records = [json.loads(line) for line in client.export_referrals(since or "")]
    else:
        records = referrals(log_path(args), since)
    _write_records(records, args.format)
    return EXIT_OK


def _write_records(records: list[dict[str, Any]], form: str) -> None:
    if form == "json":
        sys.stdout.write(json.dumps(records, indent=2, sort_keys=True) + "\n")
        return
    for record in records:
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")


def _register_stats(commands: Any) -> None:
    parser = commands.add_parser(
        "stats",
        help="prevalence statistics: verdicts by day, list, classification, signal type, decision, variant",
        description="Counts of verdicts served, never per upload or per user. Each verdict counts once, under "
        "its closest match. Cells with fewer than --min-cell verdicts are suppressed ('<K' in CSV, null in JSON).",
    )
    parser.add_argument("--since", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--by", default="day", help="comma-separated: day, list, classification, signal_type, ...")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--min-cell", type=int, default=DEFAULT_MIN_CELL, help="smallest count shown (default 10)")
    _local_or_remote(parser)
    parser.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    by = parse_dimensions(args.by)
    since = first_day(args.since)
    k = args.min_cell
    if args.server:
        with connected(args) as client:
            answer = client.stats(list(by), since or "", k)
        cells = [Cell(dict(c.key), None if c.suppressed else int(c.count)) for c in answer.cells]
        k = answer.min_cell  # the server's floor, where it is above what was asked
    else:
        with open_store(args) as store:
            cells = prevalence(store, by, since=since, k=k)
    if args.format == "json":
        sys.stdout.write(cells_to_json(cells, by, k, since) + "\n")
    else:
        sys.stdout.write(cells_to_csv(cells, by, k))
    return EXIT_OK


def _register_feedback(commands: Any) -> None:
    parser = commands.add_parser(
        "feedback", help="a reviewer's finding on a match, and the false positives to send back"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    give = actions.add_parser(
        "give",
        help="mark a match confirmed or a false positive (audited with who gave it)",
        description="ENTRY_ID is the entry_id a verdict names. --disable (false positives only) imports a new "
        "version of the list without the entry and activates it: the next lookup no longer matches it.",
    )
    give.add_argument("list")
    give.add_argument("entry_id", type=int)
    kind = give.add_mutually_exclusive_group(required=True)
    kind.add_argument("--confirmed", dest="kind", action="store_const", const=FeedbackKind.CONFIRMED.value)
    kind.add_argument("--false-positive", dest="kind", action="store_const", const=FeedbackKind.FALSE_POSITIVE.value)
    give.add_argument("--disable", action="store_true", help="a new list version without the entry, active at once")
    give.add_argument("--note", default="")
    give.add_argument("--referral", default="", help="the referral id this finding is about")
    give.add_argument("--viewed", action="store_true", help="you viewed the file (the referral then says so)")
    _local_or_remote(give)
    give.set_defaults(run=run_feedback_give)
    export = actions.add_parser("export", help="feedback to send back to a list's source (not who reviewed)")
    export.add_argument("--since", help="ISO 8601 time or date (UTC)")
    export.add_argument("--list", dest="list_name")
    export.add_argument("--false-positives", action="store_true", help="false positives only")
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="CSV, or JSON lines")
    _local_or_remote(export)
    export.set_defaults(run=run_feedback_export)


def run_feedback_give(args: argparse.Namespace) -> int:
    if args.viewed and not args.referral:
        raise HashmatchError(ReasonCode.USAGE, "--viewed says which referral's file you viewed: give --referral")
    if args.server:
        with connected(args) as client:
            answer = client.give_feedback(
                args.list,
                args.entry_id,
                args.kind,
                note=args.note,
                disable=args.disable,
                referral_id=args.referral,
                viewed=args.viewed,
            )
        feedback_id, disabled = answer.feedback_id, answer.disabled_version or None
    else:
        with open_store(args) as store:
            kind = FeedbackKind(args.kind)
            given = give_feedback(
                store, args.list, args.entry_id, kind, default_actor(), args.note, args.disable, args.referral or None
            )
            audited(store, "feedback", given.audit_data(args.viewed))
        feedback_id, disabled = given.id, given.disabled_version
    said = f"feedback {feedback_id}: entry {args.entry_id} of {args.list!r} marked {args.kind}"
    print(said + (f"; disabled in version {disabled}, now active" if disabled else ""))
    return EXIT_OK


def run_feedback_export(args: argparse.Namespace) -> int:
    since = since_of(args.since)
    kind = FeedbackKind.FALSE_POSITIVE if args.false_positives else None
    if args.server:
        with connected(args) as client:
            lines = [json.loads(line) for line in client.export_feedback(since or "")]
        rows = [r for r in lines if _wanted(r, args.list_name, kind)]
    else:
        with open_store(args) as store:
            rows = exported(feedback_since(store, since, args.list_name, kind))
    sys.stdout.write(feedback_to_json(rows) if args.format == "json" else feedback_to_csv(rows))
    return EXIT_OK


def _wanted(row: dict[str, Any], list_name: str | None, kind: FeedbackKind | None) -> bool:
    return (list_name is None or row["list"] == list_name) and (kind is None or row["kind"] == kind.value)


def _register_held(commands: Any) -> None:
    parser = commands.add_parser(
        "held",
        help="entries the flood guard holds for review (their matches say needs_review)",
        description="A running server holds an entry whose match rate jumps far above its baseline. Releasing "
        "it (an admin) restores its list's action; its current rate then counts as its normal rate.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("ls", help="the held entries")
    release = actions.add_parser("release", help="take the hold off an entry")
    release.add_argument("entry_id", type=int)
    for each in (listing, release):
        each.add_argument("--json", action="store_true")
        _local_or_remote(each)
    listing.set_defaults(run=run_held)
    release.set_defaults(run=run_release)


def run_held(args: argparse.Namespace) -> int:
    if args.server:
        with connected(args) as client:
            found = [holds.HeldEntry(e.entry_id, e.list, e.since, e.detail) for e in client.held_entries().entries]
    else:
        with open_store(args) as store:
            found = holds.held_entries(store)
    for entry in found:
        if args.json:
            print(json.dumps(entry.to_dict()))
        else:
            print(f"{entry.entry_id}\t{entry.list_name}\t{entry.since}\t{entry.detail}")
    if not found and not args.json:
        print("no entry is held", file=sys.stderr)
    return EXIT_OK


def run_release(args: argparse.Namespace) -> int:
    if args.server:
        with connected(args) as client:
            released = client.release_entry(args.entry_id)
        entry = holds.HeldEntry(released.entry_id, released.list, released.since, released.detail)
    else:
        with open_store(args) as store:
            found = holds.release(store, args.entry_id)
            if found is None:
                raise HashmatchError(ReasonCode.ENTRY_NOT_FOUND, f"entry {args.entry_id} is not held for review")
            audited(store, "entry_released", found.to_dict())
        entry = found
    print(json.dumps(entry.to_dict()) if args.json else f"entry {entry.entry_id} of {entry.list_name!r} released")
    return EXIT_OK
