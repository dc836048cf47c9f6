"""`hashmatch match`: match local files, or hashes, against the active list versions, in-process."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, add_db_argument, fail, open_store
from cli.hash_command import iter_files
from engine.index.factory import IndexBackend
from engine.matcher import DEFAULT_QUALITY_GATE, Matcher, QueryHashes, Verdict
from engine.signals import SignalType, SignalValueError, infer_signal_type, parse_signal, signal_type_named
from engine.store import ListNotFoundError, StoreError
from hashing.errors import HashmatchError
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode

BATCH = 256


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "match",
        help="match files or hashes against the lists",
        description="Print one verdict per input: 'decision,input,matches' (each match 'list:entry_id:distance'), "
        "or one JSON object per line with --json. Exit status 1 if any input failed.",
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
    parser.add_argument("--hashes", dest="hash_file", type=Path, help="a file with one hash per line")
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
    remote = parser.add_argument_group("remote matching (a 'hashmatch serve' server instead of the local store)")
    remote.add_argument("--server", metavar="HOST:PORT", help="send media or hashes to this server")
    remote.add_argument("--token", default=os.environ.get("HASHMATCH_TOKEN"), help="API token ($HASHMATCH_TOKEN)")
    remote.add_argument("--tls-ca", type=Path, help="CA certificate of the server (enables TLS)")
    remote.add_argument("--client-cert", type=Path, help="client certificate, for mutual TLS")
    remote.add_argument("--client-key", type=Path, help="client key, for mutual TLS")
    add_db_argument(parser)
    parser.set_defaults(run=run)


Labelled = tuple[str, QueryHashes | None, str]  # (input, query or None, error)


def _hash_queries(texts: list[str]) -> Iterator[Labelled]:
    for text in texts:
        value = text.strip()
        if not value or value.startswith("#"):
            continue
        try:
            kind, _, digits = value.rpartition(":")  # "sha256:HEX" names the type; bare hex is typed by length
            signal = signal_type_named(kind) if kind else infer_signal_type(digits)
            raw = parse_signal(signal, digits)
        except SignalValueError as exc:
            yield value, None, f"{exc.reason}: {exc.detail}"
            continue
        yield value, _query_for(signal, raw), ""


def _query_for(signal: SignalType, raw: bytes) -> QueryHashes:
    """Bare PDQ hashes carry no quality, so the quality gate does not apply to them."""
    if signal is SignalType.PDQ:
        return QueryHashes(pdq=PdqHash(raw))
    if signal is SignalType.MD5:
        return QueryHashes(md5=raw)
    if signal is SignalType.SHA1:
        return QueryHashes(sha1=raw)
    return QueryHashes(sha256=raw)


def _file_queries(paths: list[str], hasher: MediaHasher, failures: list[OSError]) -> Iterator[Labelled]:
    for path in iter_files(paths, failures):
        try:
            yield str(path), QueryHashes.of_media(hasher.hash_file(path)), ""
        except HashmatchError as exc:
            yield str(path), None, f"{exc.reason}: {exc.detail}"


def _format(label: str, verdict: Verdict, as_json: bool) -> str:
    if as_json:
        return json.dumps({"input": label} | verdict.to_dict())
    matches = " ".join(f"{m.list_name}:{m.entry_id}:{m.distance}" for m in verdict.matches)
    reasons = "".join(f" [{r}]" for r in verdict.reasons)
    return f"{verdict.decision},{label},{matches}{reasons}"


def run(args: argparse.Namespace) -> int:
    if not (args.paths or args.hashes or args.hash_file):
        return fail("give image paths, --hash HEX or --hashes FILE")
    if args.server:
        return _run_remote(args)
    try:
        with open_store(args) as store:
            matcher = Matcher.from_store(store, args.lists or None, args.index, args.quality_gate)
            if not matcher.lists:
                return fail("no list has an active version: import one with 'hashmatch lists import'")
            return _run_matches(args, matcher)
    except ListNotFoundError as exc:
        return fail(f"no list named {exc.name!r} (see 'hashmatch lists ls')")
    except (StoreError, OSError, ValueError) as exc:
        return fail(str(exc))


def _run_matches(args: argparse.Namespace, matcher: Matcher) -> int:
    dihedral = DihedralMode.NONE if args.no_dihedral else DihedralMode.DCT
    hasher = MediaHasher(HashOptions(dihedral=dihedral, exact_digests=True))
    texts = list(args.hashes)
    if args.hash_file:
        texts.extend(args.hash_file.read_text().splitlines())
    directory_errors: list[OSError] = []
    inputs = list(_hash_queries(texts)) if texts else []
    failed = 0
    pending: list[tuple[str, QueryHashes]] = []

    def flush() -> None:
        for (label, _), verdict in zip(pending, matcher.match_many([q for _, q in pending]), strict=True):
            print(_format(label, verdict, args.json))
        pending.clear()

    stream = list(inputs) + list(_file_queries(args.paths, hasher, directory_errors)) if args.paths else inputs
    for label, query, error in stream:
        if query is None:
            failed += 1
            print(f"ERROR,{label},{error}", file=sys.stderr)
            continue
        pending.append((label, query))
        if len(pending) >= BATCH:
            flush()
    flush()
    for walk_error in directory_errors:
        failed += 1
        print(f"ERROR,{walk_error.filename},UNREADABLE: {walk_error.strerror}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _run_remote(args: argparse.Namespace) -> int:
    """The same inputs and output, answered by a server: media goes over one MatchStream, hashes in batches."""
    import grpc

    from grpc_api.client import HashmatchClient

    texts = list(args.hashes) + (args.hash_file.read_text().splitlines() if args.hash_file else [])
    failed = 0
    directory_errors: list[OSError] = []
    try:
        with HashmatchClient(args.server, args.token, args.tls_ca, args.client_cert, args.client_key) as client:
            queries: list[tuple[str, QueryHashes]] = []
            for label, query, error in _hash_queries(texts):
                if query is None:
                    failed += 1
                    print(f"ERROR,{label},{error}", file=sys.stderr)
                else:
                    queries.append((label, query))
            for start in range(0, len(queries), BATCH):
                for result in client.match_hashes(queries[start : start + BATCH]).results:
                    print(_format_remote(result, args.json))
            files = [(str(path), path) for path in iter_files(args.paths, directory_errors)]
            for result in client.match_stream((label, path.read_bytes()) for label, path in files):
                if result.HasField("error"):
                    failed += 1
                    print(f"ERROR,{result.client_id},{result.error.reason}: {result.error.detail}", file=sys.stderr)
                else:
                    print(_format_remote(result, args.json))
    except grpc.RpcError as exc:
        return fail(f"{args.server}: {exc.code().name}: {exc.details()}")
    except OSError as exc:
        return fail(str(exc))
    for walk_error in directory_errors:
        failed += 1
        print(f"ERROR,{walk_error.filename},UNREADABLE: {walk_error.strerror}", file=sys.stderr)
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
