"""`hashmatch scan`: an investigator's batch scan of folders and archives into a results folder, resumable."""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.common import add_db_argument, audited, fail, open_store
from cli.variant_options import add_variant_arguments, dihedral_mode, variant_families, variant_scope
from engine.matcher import DEFAULT_QUALITY_GATE, Matcher
from engine.scan.journal import ScanJournal
from engine.scan.progress import ProgressReporter, ScanCounters
from engine.scan.ray_runner import RayScanRunner, RayTarget, ray_modules
from engine.scan.reports import ScanSummary, tool_version, write_reports
from engine.scan.runner import ScanRun, ScanRunner, ScanSettings
from engine.scan.sources import ArchiveLimits
from hashing.decode import DecodeLimits, DecodeOptions
from hashing.errors import HashmatchError, ReasonCode
from hashing.media_hasher import HashOptions
from kernels.optional import MissingDependencyError

EXIT_NO_MATCH, EXIT_MATCHES, EXIT_ERRORS, EXIT_INTERRUPTED = 0, 1, 2, 130
LOCAL_RAY = "local"
RAY_ADDRESS = re.compile(r"auto|(ray://)?[\w.\-]+:\d+|(ray://)?\[[0-9a-fA-F:.]+\]:\d+")


def register(commands: Any) -> None:
    scan = commands.add_parser(
        "scan",
        help="scan folders and archives into a results folder (resumable)",
        description="Walk PATHs (folders recursively; zip and tar members read as streams, never extracted), hash "
        "every input on every core, match it against the lists, and write results.jsonl, matches.csv, "
        "summary.json and report.html into --out. Rerun the same command to resume an interrupted scan. Exit "
        "status: 0 no match, 1 matches found, 2 errors (inputs that could not be read and no match, or a scan that "
        "could not run), 130 interrupted.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    scan.add_argument("--out", type=Path, required=True, help="results folder (also holds the state for resuming)")
    scan.add_argument("--list", dest="lists", action="append", default=[], metavar="NAME", help="repeatable")
    scan.add_argument(
        "--workers",
        type=int,
        default=None,
        help="hashing processes (default: the CPUs this process may use; 0: hash in this process)",
    )
    scan.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        default=None,
        metavar="ADDRESS",
        help="run on Ray (the 'distributed' extra): alone, a local Ray instance on this machine's CPUs; 'auto' or "
        "a head's address, that cluster (the inputs and --db must be at the same paths on every node)",
    )
    add_variant_arguments(scan)
    scan.add_argument("--quality-gate", type=int, default=DEFAULT_QUALITY_GATE)
    scan.add_argument("--max-archive-depth", type=int, default=ArchiveLimits.max_depth, help="archives in archives")
    scan.add_argument("--max-bytes", type=int, default=DecodeLimits.max_bytes, help="per input (and archive member)")
    scan.add_argument("--max-pixels", type=int, default=DecodeLimits.max_pixels)
    scan.add_argument(
        "--progress",
        choices=["auto", "live", "json", "none"],
        default="auto",
        help="on stderr: a live line on a terminal, JSON lines otherwise (auto)",
    )
    add_db_argument(scan)
    scan.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        return fail(ReasonCode.USAGE, problem, 2)
    if args.ray is not None:
        try:
            ray_modules()
        except MissingDependencyError as missing:
            return fail(ReasonCode.MISSING_DEPENDENCY, str(missing), EXIT_ERRORS)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with open_store(args) as store:
        matcher = Matcher.from_store(store, args.lists or None, quality_gate=args.quality_gate)
        if not matcher.lists:
            return fail(
                ReasonCode.NO_ACTIVE_LIST, "no list has an active version: import one with 'hashmatch lists import'"
            )
        settings = _settings(args)
        journal = ScanJournal(args.out)
        try:
            try:
                resumed = journal.claim_identity(_identity(args, matcher))
            except HashmatchError as error:
                return fail(error.reason, error.detail, EXIT_ERRORS)
            scan = {"out": os.fsdecode(args.out.resolve()), "paths": [os.fsdecode(p) for p in args.paths]}
            audited(store, "scan_started", scan | {"lists": matcher.list_versions, "resumed": resumed})
            run_id = journal.start_run(started)
            runner = _runner(args, store.path, matcher, journal, settings)
            try:
                outcome = runner.run(args.paths)
            except HashmatchError as error:  # the Ray job could not start or failed: what is done stays done
                journal.end_run(run_id, datetime.now(UTC).isoformat(timespec="seconds"), True, runner.counters.hashed)
                audited(store, "scan_failed", scan | {"reason": error.reason.value} | _counts(runner.counters))
                return fail(error.reason, f"{error.detail}; rerun the same command to resume", EXIT_ERRORS)
            ended = datetime.now(UTC).isoformat(timespec="seconds")
            journal.end_run(run_id, ended, outcome.interrupted, outcome.counters.hashed)
            audited(store, "scan_finished", scan | {"interrupted": outcome.interrupted} | _counts(outcome.counters))
            return _finish(args, journal, matcher, outcome, resumed, ended)
        finally:
            journal.close()


def _counts(counters: ScanCounters) -> dict[str, int]:
    """What a scan's audit record says it did (counts only: the results stay in --out)."""
    return {
        "done": counters.done,
        "skipped": counters.skipped,
        "hashed": counters.hashed,
        "matches": counters.matches,
        "errors": counters.errors,
    }


def _runner(
    args: argparse.Namespace, db_path: Path, matcher: Matcher, journal: ScanJournal, settings: ScanSettings
) -> ScanRunner | RayScanRunner:
    reporter = _reporter(args.progress)
    if args.ray is None:
        return ScanRunner(matcher, journal, settings, reporter)
    # Locally, as many actors as the CPUs this process may use; on a cluster, every CPU it offers.
    local = args.ray == LOCAL_RAY
    target = RayTarget(None if local else args.ray, settings.workers if local or args.workers else None)
    return RayScanRunner(db_path.resolve(), matcher, journal, settings, target, reporter)


def _check(args: argparse.Namespace) -> str | None:
    if args.workers is not None and args.workers < 0:
        return "--workers is at least 0 (0: hash in this process)"
    if args.ray not in (None, LOCAL_RAY) and not RAY_ADDRESS.fullmatch(args.ray):
        return (
            f"--ray took {args.ray!r} for the address of a Ray cluster: give auto, HOST:PORT or ray://HOST:PORT "
            "(--ray=ADDRESS), or put --ray after the paths for a local Ray instance"
        )
    if args.ray is not None and args.workers == 0:
        return "--workers 0 hashes in this process, which --ray does not: give the number of Ray actors"
    if args.max_archive_depth < 0 or args.max_bytes < 1 or args.max_pixels < 1:
        return "--max-archive-depth is at least 0, --max-bytes and --max-pixels at least 1"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out} exists and is not a folder"
    return _overlap(args.paths)


def _overlap(paths: list[Path]) -> str | None:
    """A path given twice, or inside another one, would be scanned twice under two names."""
    real = [Path(os.path.realpath(p)) for p in paths]
    for i, one in enumerate(real):
        for j, other in enumerate(real):
            if i != j and (one == other or other in one.parents):
                return (
                    f"{os.fsdecode(paths[i])} is {'the same as' if one == other else 'inside'} {os.fsdecode(paths[j])}"
                )
    return None


def _settings(args: argparse.Namespace) -> ScanSettings:
    limits = DecodeLimits(max_pixels=args.max_pixels, max_bytes=args.max_bytes)
    return ScanSettings(
        # The CPUs this process may run on (a container or taskset may allow fewer than the machine has).
        workers=len(os.sched_getaffinity(0)) if args.workers is None else args.workers,
        hash_options=HashOptions(
            dihedral=dihedral_mode(args), variants=variant_families(args), decode=DecodeOptions(limits=limits)
        ),
        limits=ArchiveLimits(max_member_bytes=args.max_bytes, max_depth=args.max_archive_depth),
        scope=variant_scope(args),
    )


def _identity(args: argparse.Namespace, matcher: Matcher) -> dict[str, Any]:
    """What must not change between a scan and its resumption: mixed list versions or options in one result
    set would not say what was matched against what."""
    return {
        # As typed, with the folder they are relative to: result lines name inputs as typed, so a resume
        # that spells a path differently would name every input anew.
        "paths": [os.fsdecode(p) for p in args.paths],
        "cwd": os.getcwd(),
        "lists": matcher.list_versions,
        "dihedral": not args.no_dihedral,
        "dihedral_mode": args.dihedral_mode,
        "dihedral_threshold": args.dihedral_threshold,
        "query_variants": sorted(f.value for f in variant_families(args)),
        "quality_gate": args.quality_gate,
        "max_archive_depth": args.max_archive_depth,
        "max_bytes": args.max_bytes,
        "max_pixels": args.max_pixels,
    }


def _reporter(mode: str) -> ProgressReporter | None:
    if mode == "none":
        return None
    live = sys.stderr.isatty() if mode == "auto" else mode == "live"
    return ProgressReporter(sys.stderr, live)


def _finish(
    args: argparse.Namespace, journal: ScanJournal, matcher: Matcher, outcome: ScanRun, resumed: bool, ended: str
) -> int:
    journal.write_results(args.out / "results.jsonl")
    done, hashed = journal.counts()
    first = journal.first_start() or ended
    seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(first)).total_seconds()
    summary = ScanSummary(
        started=first,
        ended=ended,
        seconds=seconds,
        tool_version=tool_version(),
        host=f"{socket.gethostname()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        command=[os.fsdecode(a) for a in sys.argv],
        list_versions=matcher.list_versions,
        interrupted=outcome.interrupted,
        progress=journal.progress(),
        hashed=hashed,
    )
    report = write_reports(args.out, journal.records(), summary)
    counts = report.get("by_decision", {})
    matches = int(counts.get("match", 0)) + int(counts.get("needs_review", 0))
    errors = int(counts.get("error", 0))
    resumed_text = f", resumed ({outcome.counters.skipped:,} done before)" if resumed else ""
    print(
        f"scanned {done:,} inputs{resumed_text}: {matches:,} matched, {errors:,} could not be read; "
        f"results in {args.out}",
        file=sys.stderr,
    )
    if outcome.interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_MATCHES if matches else EXIT_ERRORS if errors else EXIT_NO_MATCH
