"""What `hashmatch match` reads and prints, locally and against a server alike: queries from hash text, and
the verdict line (or JSON object) of one input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from engine.matcher import QueryHashes, Verdict
from engine.signals import SignalValueError, infer_signal_type, parse_value, signal_type_named, spec_of
from hashing.errors import HashmatchError, ReasonCode


@dataclass(frozen=True)
class Prepared:
    """One input, ready to match: its query, or why it has none. An undecodable file has both a query (its
    digests) and an error (the reason it has no PDQ)."""

    label: str
    query: QueryHashes | None
    error: HashmatchError | None = None


def hash_text_inputs(texts: Iterable[str]) -> Iterator[Prepared]:
    """Queries from hash text: bare hex is typed by length (64 PDQ, 32 MD5, 40 SHA-1), 'TYPE:VALUE' names the
    type ('sha256:HEX', 'vpdq:["pdqHex,quality,time",...]'). Blank lines and '#' comments are skipped."""
    for text in texts:
        value = text.strip()
        if not value or value.startswith("#"):
            continue
        try:
            kind, _, digits = value.rpartition(":")
            signal = signal_type_named(kind) if kind else infer_signal_type(digits)
            parsed = parse_value(signal, digits)
        except SignalValueError as exc:
            # List files distinguish BAD_LENGTH, NOT_HEX, ...; a query is just an invalid hash.
            yield Prepared(value, None, HashmatchError(ReasonCode.INVALID_HASH, exc.detail))
            continue
        yield Prepared(value, spec_of(signal).query_of(parsed))


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
    line = f"{verdict.decision},{label},{matches}{reasons}"
    if verdict.nearest is None:
        return line
    return line + "," + " ".join(f"{m.list_name}:{m.entry_id}:{m.distance}" for m in verdict.nearest)
