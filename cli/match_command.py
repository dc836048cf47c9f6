"""`hashmatch match`: match local files, or hashes, against the active list versions, in-process.

Verdicts stream: each is printed as soon as its input is hashed and matched, in input order. Files are hashed
by a pool of threads (decoding and the PDQ kernel release the GIL) with a bounded window of files in flight,
so memory stays flat over any number of inputs, and each is matched on its own as soon as it is hashed (one
index search costs well under a millisecond, a file several); hashes given as text, all ready at once, are
matched in batches. A file that cannot be decoded is still matched on its exact digests: its verdict carries the reason
(e.g. UNDECODABLE) and an ERROR line on stderr says what went wrong; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_db_argument, error_line, fail, open_store
from cli.hash_command import iter_files
from engine.index.factory import IndexBackend
from engine.matcher import DEFAULT_QUALITY_GATE, Matcher, QueryHashes, Verdict
from engine.signals import SignalType, SignalValueError, infer_signal_type, parse_signal, signal_type_named
from hashing.errors import HashmatchError, MediaError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode

BATCH = 256  # hash queries matched per index search when they are all ready at once


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "match",
        help="match files or hashes against the lists",
        description="Print one verdict per input, in input order, as soon as it is ready: "
        "'decision,input,matches' (each match 'list:entry_id:distance', then [REASON]s), or one JSON object per "
        "line with --json. Inputs that fail are reported on stderr as 'ERROR,REASON,input,detail'; files that "
        "cannot be decoded are still matched on their exact digests. Exit status 1 if any input failed.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image files or directories")
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
    parser.add_argument("--no-dihedral", action="store_true", help="do not match rotated and flipped variants")
    parser.add_argument("--index", choices=[b.value for b in IndexBackend], default=IndexBackend.AUTO.value)
    parser.add_argument("--quality-gate", type=int, default=DEFAULT_QUALITY_GATE)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="threads hashing files (default: the CPU count)"
    )
    remote = parser.add_argument_group("remote matching (a 'hashmatch serve' server instead of the local store)")
    remote.add_argument("--server", metavar="HOST:PORT", help="send media or hashes to this server")
    remote.add_argument("--token", default=os.environ.get("HASHMATCH_TOKEN"), help="API token ($HASHMATCH_TOKEN)")
    remote.add_argument("--tls-ca", type=Path, help="CA certificate of the server (enables TLS)")
    remote.add_argument("--client-cert", type=Path, help="client certificate, for mutual TLS")
    remote.add_argument("--client-key", type=Path, help="client key, for mutual TLS")
    add_db_argument(parser)
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Prepared:
    """One input, ready to match: its query, or why it has none. An undecodable file has both a query (its
    digests) and an error (the reason it has no PDQ)."""

    label: str
    query: QueryHashes | None
    error: HashmatchError | None = None


def hash_text_inputs(texts: Iterable[str]) -> Iterator[Prepared]:
    """Queries from hash text: bare hex is typed by length (64 PDQ, 32 MD5, 40 SHA-1), 'sha256:HEX' names the
    type. Blank lines and '#' comments are skipped."""
    for text in texts:
        value = text.strip()
        if not value or value.startswith("#"):
            continue
        try:
            kind, _, digits = value.rpartition(":")
            signal = signal_type_named(kind) if kind else infer_signal_type(digits)
            raw = parse_signal(signal, digits)
        except SignalValueError as exc:
            # List files distinguish BAD_LENGTH, NOT_HEX, ...; a query is just an invalid hash.
            yield Prepared(value, None, HashmatchError(ReasonCode.INVALID_HASH, exc.detail))
            continue
        yield Prepared(value, _query_for(signal, raw))


def _query_for(signal: SignalType, raw: bytes) -> QueryHashes:
    """Bare PDQ hashes carry no quality, so the quality gate does not apply to them."""
    if signal is SignalType.PDQ:
        return QueryHashes(pdq=PdqHash(raw))
    if signal is SignalType.MD5:
        return QueryHashes(md5=raw)
    if signal is SignalType.SHA1:
        return QueryHashes(sha1=raw)
    return QueryHashes(sha256=raw)


def prepare_file(hasher: MediaHasher, path: Path) -> Prepared:
    try:
        outcome = hasher.outcome_of_file(path)
    except MediaError as exc:
        return Prepared(str(path), None, exc)
    return Prepared(str(path), QueryHashes.of_outcome(outcome), outcome.error)


def in_order(
    items: Iterable[Path], work: Callable[[Path], Prepared], workers: int, window: int
) -> Iterator[Future[Prepared]]:
    """Futures of `work(item)` in input order, at most `window` in flight: bounded memory, streamed output."""
    pending: deque[Future[Prepared]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hashmatch-match") as pool:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft()
        while pending:
            yield pending.popleft()


def read_hash_texts(args: argparse.Namespace) -> Iterator[str]:
    """--hash values, then the lines of --hashes (streamed, never read whole)."""
    yield from args.hashes
    if args.hash_file is None:
        return
    if str(args.hash_file) == "-":
        yield from sys.stdin
        return
    with args.hash_file.open(encoding="utf-8", errors="replace") as lines:
        yield from lines


def format_verdict(label: str, verdict: Verdict, as_json: bool) -> str:
    if as_json:
        return json.dumps({"input": label} | verdict.to_dict())
    matches = " ".join(f"{m.list_name}:{m.entry_id}:{m.distance}" for m in verdict.matches)
    reasons = "".join(f" [{r}]" for r in verdict.reasons)
    return f"{verdict.decision},{label},{matches}{reasons}"


class VerdictPrinter:
    """Prints verdicts in input order: queries that are all ready at once (hash text) matched in batches,
    files matched and printed one by one as soon as each is hashed."""

    def __init__(self, matcher: Matcher, as_json: bool, out: TextIO, err: TextIO) -> None:
        self.matcher = matcher
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
        verdicts = iter(self.matcher.match_many([p.query for p in inputs if p.query is not None]))
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
    if args.workers < 1:
        return fail(ReasonCode.USAGE, "--workers is at least 1", EXIT_USAGE)
    if args.server:
        return _run_remote(args)
    with open_store(args) as store:
        matcher = Matcher.from_store(store, args.lists or None, args.index, args.quality_gate)
        if not matcher.lists:
            return fail(
                ReasonCode.NO_ACTIVE_LIST, "no list has an active version: import one with 'hashmatch lists import'"
            )
        return _run_matches(args, matcher)


def _run_matches(args: argparse.Namespace, matcher: Matcher) -> int:
    dihedral = DihedralMode.NONE if args.no_dihedral else DihedralMode.DCT
    hasher = MediaHasher(HashOptions(dihedral=dihedral, exact_digests=True))
    walk_errors: list[OSError] = []

    printer = VerdictPrinter(matcher, args.json, sys.stdout, sys.stderr)
    printer.batched(hash_text_inputs(read_hash_texts(args)))
    files = iter_files(args.paths, walk_errors)
    printer.streamed(in_order(files, lambda path: prepare_file(hasher, path), args.workers, 2 * args.workers))
    failed = printer.failed
    for walk_error in walk_errors:
        failed += 1
        print(error_line(ReasonCode.UNREADABLE, walk_error.filename, walk_error.strerror or ""), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _run_remote(args: argparse.Namespace) -> int:
    """The same inputs and output, answered by a server: media goes over one MatchStream, hashes in batches."""
    import grpc

    from grpc_api.client import HashmatchClient

    failed = 0
    directory_errors: list[OSError] = []
    try:
        with HashmatchClient(args.server, args.token, args.tls_ca, args.client_cert, args.client_key) as client:
            queries: list[tuple[str, QueryHashes]] = []
            for prepared in hash_text_inputs(read_hash_texts(args)):
                if prepared.query is None:
                    assert prepared.error is not None
                    failed += 1
                    print(error_line(prepared.error.reason, prepared.label, prepared.error.detail), file=sys.stderr)
                else:
                    queries.append((prepared.label, prepared.query))
            for start in range(0, len(queries), BATCH):
                for result in client.match_hashes(queries[start : start + BATCH]).results:
                    print(_format_remote(result, args.json))
            files = [(str(path), path) for path in iter_files(args.paths, directory_errors)]
            for result in client.match_stream((label, path.read_bytes()) for label, path in files):
                if result.HasField("error"):
                    failed += 1
                    print(error_line(result.error.reason, result.client_id, result.error.detail), file=sys.stderr)
                else:
                    print(_format_remote(result, args.json))
    except grpc.RpcError as exc:
        return fail(ReasonCode.UNREADABLE, f"{args.server}: {exc.code().name}: {exc.details()}")
    except OSError as exc:
        return fail(ReasonCode.UNREADABLE, f"{exc.filename or args.server}: {exc.strerror}")
    for walk_error in directory_errors:
        failed += 1
        print(error_line(ReasonCode.UNREADABLE, walk_error.filename, walk_error.strerror or ""), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _format_remote(result: Any, as_json: bool) -> str:
    from google.protobuf.json_format import MessageToDict

    from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb

    verdict = result.verdict
    decision = pb.Decision.Name(verdict.decision).lower()  # the same words as local verdicts
    if as_json:
        record = MessageToDict(verdict, preserving_proto_field_name=True) | {"decision": decision}
        return json.dumps({"input": result.client_id} | record)
    matches = " ".join(f"{m.list}:{m.entry_id}:{m.distance}" for m in verdict.matches)
    reasons = "".join(f" [{r}]" for r in verdict.reasons)
    return f"{decision},{result.client_id},{matches}{reasons}"
