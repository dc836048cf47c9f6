"""`hashmatch match`: match local files, or hashes, against the active list versions, in-process.

Verdicts stream: each is printed as soon as its input is hashed and matched, in input order. Files are hashed
by a pool of threads (decoding and the PDQ kernel release the GIL) with a bounded window of files in flight,
so memory stays flat over any number of inputs, and each is matched on its own as soon as it is hashed (one
index search costs well under a millisecond, a file several); hashes given as text, all ready at once, are
matched in batches. A file that cannot be decoded is still matched on its exact digests: its verdict carries
the reason (e.g. UNDECODABLE) and an ERROR line on stderr says what went wrong; the exit status is then 1.
With --server the same inputs go to a server instead (cli/remote_match.py), with the same output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TextIO

from cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_db_argument,
    add_device_argument,
    error_line,
    fail,
    open_store,
)
from cli.hash_command import iter_files
from cli.match_io import Prepared, format_verdict, hash_text_inputs, read_hash_texts
from cli.ordered import in_order
from cli.remote import add_connection_arguments
from cli.remote_match import local_only_options, run_remote
from cli.variant_options import add_variant_arguments, dihedral_mode, variant_families, variant_scope
from cli.video_options import add_video_arguments, video_match_options
from engine.index.factory import IndexBackend
from engine.matcher import DEFAULT_QUALITY_GATE, EVERYTHING, MAX_NEAREST, Matcher, MatchScope, QueryHashes
from engine.media_query import MediaQueries
from engine.signals import SignalType
from hashing.device import Device, DeviceChoice, close_hasher, feeder_threads, image_hasher, select_device
from hashing.errors import MediaError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.video import VideoHasher, VideoOptions

BATCH = 256  # hash queries matched per index search when they are all ready at once


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "match",
        help="match files or hashes against the lists",
        description="Print one verdict per input, in input order, as soon as it is ready: "
        "'decision,input,matches' (each match 'list:entry_id:distance', then [REASON]s; with --nearest a fourth "
        "field of 'list:entry_id:distance' near entries), or one JSON object per line with --json. Inputs that "
        "fail are reported on stderr as 'ERROR,REASON,input,detail'; files that cannot be decoded "
        "are still matched on their exact digests. Exit status 1 if any input failed.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image and video files, or directories")
    parser.add_argument(
        "--hash",
        dest="hashes",
        action="append",
        default=[],
        metavar="HEX",
        help="a hash to match: 64 hex digits are PDQ, 32 MD5, 40 SHA-1; sha256:HEX names the type; repeatable",
    )
    parser.add_argument("--hashes", dest="hash_file", type=Path, help="a file with one hash per line ('-': stdin)")
    parser.add_argument(
        "--list",
        dest="lists",
        action="append",
        default=[],
        metavar="NAME",
        help="match against this list only; repeatable (default: every active list)",
    )
    parser.add_argument("--json", action="store_true")
    add_variant_arguments(parser)
    parser.add_argument("--index", choices=[b.value for b in IndexBackend], default=IndexBackend.AUTO.value)
    parser.add_argument("--quality-gate", type=int, default=DEFAULT_QUALITY_GATE)
    parser.add_argument(
        "--nearest",
        type=int,
        metavar="K",
        help=f"also name each list's K closest PDQ entries whatever the threshold (near misses for review; "
        f"they decide nothing); 1..{MAX_NEAREST}",
    )
    parser.add_argument("--workers", type=int, default=None, help="threads hashing files (default: the CPU count)")
    add_device_argument(parser)
    add_video_arguments(parser)
    remote = parser.add_argument_group(
        "remote matching: a 'hashmatch serve' server instead of the local store, with the same options and output"
    )
    add_connection_arguments(remote, required=False)
    add_db_argument(parser)
    parser.set_defaults(run=run)


def prepare_file(hasher: MediaHasher | MediaQueries, path: Path) -> Prepared:
    """Images and videos alike (a MediaHasher alone: images only)."""
    if isinstance(hasher, MediaQueries):
        found = hasher.of_file(path)
        return Prepared(str(path), found.query, found.error)
    try:
        outcome = hasher.outcome_of_file(path)
    except MediaError as exc:
        return Prepared(str(path), None, exc)
    return Prepared(str(path), QueryHashes.of_outcome(outcome), outcome.error)


class VerdictPrinter:
    """Prints verdicts in input order: queries that are all ready at once (hash text) matched in batches,
    files matched and printed one by one as soon as each is hashed."""

    def __init__(
        self, matcher: Matcher, as_json: bool, out: TextIO, err: TextIO, scope: MatchScope = EVERYTHING
    ) -> None:
        self.matcher = matcher
        self.scope = scope
        self.as_json = as_json
        self.out = out
        self.err = err
        self.failed = 0

    def batched(self, inputs: Iterable[Prepared]) -> None:
        pending: list[Prepared] = []
        for prepared in inputs:
            pending.append(prepared)
            if len(pending) >= BATCH:
                self._print(pending)
                pending = []
        self._print(pending)

    def streamed(self, inputs: Iterable[Future[Prepared]]) -> None:
        for future in inputs:
            self._print([future.result()])

    def _print(self, inputs: list[Prepared]) -> None:
        """Match the ones with a query in one batch; print everything in order, errors on stderr."""
        verdicts = iter(self.matcher.match_many([p.query for p in inputs if p.query is not None], self.scope))
        for prepared in inputs:
            if prepared.query is not None:
                self.out.write(format_verdict(prepared.label, next(verdicts), self.as_json) + "\n")
            if prepared.error is not None:  # no query at all, or matched on its digests without a PDQ
                self.failed += 1
                self.out.flush()  # the verdict before its error line, when both go to one terminal
                self.err.write(error_line(prepared.error.reason, prepared.label, prepared.error.detail) + "\n")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    if not (args.paths or args.hashes or args.hash_file):
        return fail(ReasonCode.USAGE, "give image paths, --hash HEX or --hashes FILE", EXIT_USAGE)
    if args.workers is not None and args.workers < 1:
        return fail(ReasonCode.USAGE, "--workers is at least 1", EXIT_USAGE)
    if args.nearest is not None and not 1 <= args.nearest <= MAX_NEAREST:
        return fail(ReasonCode.USAGE, f"--nearest takes 1..{MAX_NEAREST} entries per list", EXIT_USAGE)
    try:
        video_match_options(args)
        VideoOptions(seconds_per_hash=args.seconds_per_hash)
    except ValueError as exc:
        return fail(ReasonCode.USAGE, str(exc), EXIT_USAGE)
    if args.server:
        local_only = local_only_options(args)
        if local_only:
            return fail(
                ReasonCode.USAGE, f"{', '.join(local_only)}: for local matching only; a server uses its own", EXIT_USAGE
            )
        return run_remote(args, read_hash_texts(args), sys.stdout, sys.stderr)
    device = select_device(args.device or Device.AUTO)
    with open_store(args) as store:
        options = {SignalType.VPDQ: video_match_options(args)}
        matcher = Matcher.from_store(
            store, args.lists or None, args.index, args.quality_gate, gpu=device.runtime, signal_options=options
        )
        if not matcher.lists:
            return fail(
                ReasonCode.NO_ACTIVE_LIST, "no list has an active version: import one with 'hashmatch lists import'"
            )
        return _run_matches(args, matcher, device)


def _run_matches(args: argparse.Namespace, matcher: Matcher, device: DeviceChoice) -> int:
    pdq = image_hasher(device)
    videos = VideoHasher(VideoOptions(seconds_per_hash=args.seconds_per_hash), pdq)
    options = HashOptions(dihedral=dihedral_mode(args), variants=variant_families(args), exact_digests=True)
    hasher = MediaQueries(MediaHasher(options, pdq), videos)
    workers = feeder_threads(device, args.workers)
    walk_errors: list[OSError] = []
    printer = VerdictPrinter(matcher, args.json, sys.stdout, sys.stderr, variant_scope(args, args.nearest or 0))
    try:
        printer.batched(hash_text_inputs(read_hash_texts(args)))
        files = iter_files(args.paths, walk_errors)
        printer.streamed(in_order(files, lambda path: prepare_file(hasher, path), workers, 2 * workers))
    finally:
        close_hasher(pdq)
    failed = printer.failed
    for walk_error in walk_errors:
        failed += 1
        print(error_line(ReasonCode.UNREADABLE, walk_error.filename, walk_error.strerror or ""), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
