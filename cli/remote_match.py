"""`hashmatch match --server`: the same inputs, options and output as the local command, answered by a server.

Scripts cannot tell the two apart: every option of `match` is sent with each request (--list, --no-dihedral,
--quality-gate) or refused when it only makes sense locally; files are read with the same checks and limits
(a dangling link or a FIFO is its own error line, and the run goes on); verdicts print in input order, in the
local format, text or --json. Media goes to the server over one MatchStream; hashes go in MatchHashes
batches. A file too large to send whole (over the byte limit or the message size) is hashed here, as the
local command would, and its hashes are matched by the server.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import grpc

from cli.common import EXIT_FAILED, EXIT_OK, error_line
from cli.hash_command import iter_files
from cli.match_io import format_verdict, hash_text_inputs
from cli.remote import connected
from cli.variant_options import dihedral_mode, variant_families
from engine.matcher import QueryHashes, Verdict
from engine.signal_types.vpdq import DEFAULT_OPTIONS
from grpc_api.client import DEFAULT_MESSAGE_BYTES, HashmatchClient
from grpc_api.convert import verdict_from_proto
from grpc_api.errors import reason_of_error
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.decode import DecodeLimits, open_media_file
from hashing.errors import HashmatchError, MediaError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode
from hashing.video import DEFAULT_SECONDS_PER_HASH, is_video_file

BATCH = 256  # hash queries per MatchHashes call
MESSAGE_HEADROOM = 64 << 10  # request fields besides the media


@dataclass(frozen=True)
class Answer:
    """One input's outcome, printed in input order: a verdict, an error, or both (matched on its digests)."""

    label: str
    verdict: Verdict | None = None
    error: HashmatchError | None = None


class OrderedPrinter:
    """Prints answers in input order whatever order they arrive in; counts the failed inputs."""

    def __init__(self, as_json: bool, out: TextIO, err: TextIO) -> None:
        self.as_json = as_json
        self.out = out
        self.err = err
        self.failed = 0
        self._waiting: dict[int, Answer] = {}
        self._next = 0
        self._lock = threading.Lock()

    def put(self, sequence: int, answer: Answer) -> None:
        with self._lock:
            self._waiting[sequence] = answer
            while self._next in self._waiting:
                self._print(self._waiting.pop(self._next))
                self._next += 1

    def _print(self, answer: Answer) -> None:
        if answer.verdict is not None:
            self.out.write(format_verdict(answer.label, answer.verdict, self.as_json) + "\n")
            self.out.flush()
        if answer.error is not None:
            self.failed += 1
            self.err.write(error_line(answer.error.reason, answer.label, answer.error.detail) + "\n")


def options_of(args: argparse.Namespace) -> pb.MatchOptions:
    """The video rule and percentages go only where given: otherwise the server's own apply."""
    options = pb.MatchOptions(
        lists=args.lists,
        no_dihedral=args.no_dihedral,
        quality_gate=args.quality_gate,
        nearest=args.nearest or 0,
        no_content_box=args.no_content_box,
        no_crops=args.no_crops,
    )
    if args.dihedral_threshold is not None:
        options.dihedral_threshold = args.dihedral_threshold
    if args.video_rule is not None:
        options.video_rule = args.video_rule
    if args.video_query_percent is not None:
        options.video_query_percent = args.video_query_percent
    if args.video_compared_percent is not None:
        options.video_compared_percent = args.video_compared_percent
    return options


def local_only_options(args: argparse.Namespace) -> list[str]:
    """Options that choose how this machine matches: meaningless against a server, so refused, not ignored."""
    given = [
        ("--index", args.index != "auto"),
        ("--workers", args.workers is not None),
        ("--db", args.db is not None),
        ("--device", args.device is not None),
        ("--video-quality", args.video_quality != DEFAULT_OPTIONS.quality),
        ("--seconds-per-hash", args.seconds_per_hash != DEFAULT_SECONDS_PER_HASH),
        ("--dihedral-mode", args.dihedral_mode != DihedralMode.PIXELS.value),  # the server hashes with its own
    ]
    return [name for name, present in given if present]


def run_remote(args: argparse.Namespace, texts: Iterator[str], out: TextIO, err: TextIO) -> int:
    printer = OrderedPrinter(args.json, out, err)
    options = options_of(args)
    sequence = 0
    with connected(args) as client:
        batch: list[tuple[int, str, QueryHashes]] = []
        for prepared in hash_text_inputs(texts):
            if prepared.query is None:
                printer.put(sequence, Answer(prepared.label, error=prepared.error))
            else:
                batch.append((sequence, prepared.label, prepared.query))
                if len(batch) >= BATCH:
                    _match_hashes(client, batch, options, printer)
                    batch = []
            sequence += 1
        _match_hashes(client, batch, options, printer)
        walk_errors: list[OSError] = []
        # Files over the server's message size are hashed here, with the variants asked for, and sent as hashes.
        local = HashOptions(dihedral=dihedral_mode(args), variants=variant_families(args))
        _match_files(client, iter_files(args.paths, walk_errors), sequence, options, printer, local)
    for walk_error in walk_errors:
        printer.failed += 1
        err.write(error_line(ReasonCode.UNREADABLE, walk_error.filename, walk_error.strerror or "") + "\n")
    return EXIT_FAILED if printer.failed else EXIT_OK


def _match_hashes(
    client: HashmatchClient,
    batch: list[tuple[int, str, QueryHashes]],
    options: pb.MatchOptions,
    printer: OrderedPrinter,
    errors: Mapping[int, HashmatchError] | None = None,
) -> None:
    """Match queries through MatchHashes; `errors` are local reasons an input has no PDQ (kept in its verdict)."""
    if not batch:
        return
    queries = [(str(sequence), query) for sequence, _, query in batch]
    response = client.match_hashes(queries, options=options)
    for (sequence, label, _), result in zip(batch, response.results, strict=True):
        verdict = verdict_from_proto(result.verdict, options.nearest > 0)
        local = (errors or {}).get(sequence)
        if local is not None:
            verdict = replace(verdict, reasons=(local.reason, *verdict.reasons))
        printer.put(sequence, Answer(label, verdict, local))


def _match_files(
    client: HashmatchClient,
    paths: Iterator[Path],
    first: int,
    options: pb.MatchOptions,
    printer: OrderedPrinter,
    local: HashOptions,
) -> None:
    """Media over one stream, read lazily as gRPC asks for it; other outcomes are printed in their place."""
    limits = DecodeLimits()
    sendable = min(limits.max_bytes, DEFAULT_MESSAGE_BYTES - MESSAGE_HEADROOM)
    labels: dict[int, str] = {}
    oversized: list[tuple[int, Path]] = []

    def items() -> Iterator[tuple[str, bytes]]:
        for sequence, path in enumerate(paths, start=first):
            try:
                with open_media_file(path) as handle:
                    data = handle.read(sendable + 1)
            except MediaError as exc:
                printer.put(sequence, Answer(str(path), error=exc))
                continue
            if len(data) > sendable:
                oversized.append((sequence, path))  # hashed here, after the stream
                continue
            labels[sequence] = str(path)
            yield str(sequence), data

    for response in client.match_stream(items(), options=options):
        sequence = int(response.client_id)
        label = labels.pop(sequence)
        if response.HasField("error"):
            printer.put(sequence, Answer(label, error=_error(response.error)))
        else:
            verdict = response.verdict
            error = _error(verdict.media_error) if verdict.HasField("media_error") else None
            printer.put(sequence, Answer(label, verdict_from_proto(verdict, options.nearest > 0), error))
    _match_oversized(client, oversized, options, printer, local)


def _match_oversized(
    client: HashmatchClient,
    files: list[tuple[int, Path]],
    options: pb.MatchOptions,
    printer: OrderedPrinter,
    local: HashOptions,
) -> None:
    hasher = MediaHasher(local)
    for sequence, path in files:
        if _is_video_file(path):  # uploaded in chunks (MatchVideo): the server hashes it as a video
            _match_video_upload(client, sequence, path, options, printer)
            continue
        try:
            outcome = hasher.outcome_of_file(path)
        except MediaError as exc:
            printer.put(sequence, Answer(str(path), error=exc))
            continue
        errors = {sequence: outcome.error} if outcome.error else {}
        _match_hashes(client, [(sequence, str(path), QueryHashes.of_outcome(outcome))], options, printer, errors)


UPLOAD_CHUNK_BYTES = 1 << 20


def _is_video_file(path: Path) -> bool:
    try:
        return is_video_file(path)
    except MediaError:
        return False  # the image path reports why it cannot be read


def _match_video_upload(
    client: HashmatchClient, sequence: int, path: Path, options: pb.MatchOptions, printer: OrderedPrinter
) -> None:
    def pieces() -> Iterator[bytes]:
        with open_media_file(path) as handle:
            while chunk := handle.read(UPLOAD_CHUNK_BYTES):
                yield chunk

    try:
        response = client.match_video(pieces(), client_id=str(sequence), options=options)
    except MediaError as exc:
        printer.put(sequence, Answer(str(path), error=exc))
        return
    except grpc.RpcError as exc:
        reason = reason_of_error(exc)
        if reason not in ReasonCode.__members__:
            raise  # the transport's failure, not this file's: it ends the run (connected() says why)
        detail = str(exc.details() or "the server refused the upload")
        printer.put(sequence, Answer(str(path), error=HashmatchError(ReasonCode(reason), detail)))
        return
    verdict = response.verdict
    error = _error(verdict.media_error) if verdict.HasField("media_error") else None
    printer.put(sequence, Answer(str(path), verdict_from_proto(verdict, options.nearest > 0), error))


def _error(message: pb.Error) -> HashmatchError:
    reason = ReasonCode(message.reason) if message.reason in ReasonCode.__members__ else ReasonCode.INTERNAL
    return HashmatchError(reason, message.detail)
