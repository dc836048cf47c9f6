"""Verdicts with matches cost what verdicts without do: QUERIES PDQ queries against a ROWS-entry list whose
every entry carries an external id and a classification (as NCMEC entries do), once all matching (listed
hashes) and once none (random hashes), in-process (`Matcher.match_many`, 1,000 queries a call, as
MatchHashes chunks them) and over gRPC `MatchHashes` (1,000 queries a call, from a separate client process).

HASHMATCH_BENCH_VERDICT_ROWS (default 1e4, CI's smoke run; the README uses 1e6) and
HASHMATCH_BENCH_VERDICT_QUERIES (default 2,000; the README uses 20,000) set the sizes. Each measurement
counts what was answered and what matched, and fails when that is not every query, and all or none of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.test_bench_grpc import client_process
from engine.importers.records import ParsedRecord
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.matcher import Matcher, QueryHashes
from engine.signals import SignalType
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.server import RunningServer, ServerConfig, start_server
from hashing.pdq_hash import PdqHash

ROWS = int(float(os.environ.get("HASHMATCH_BENCH_VERDICT_ROWS", "1e4")))
QUERIES = int(float(os.environ.get("HASHMATCH_BENCH_VERDICT_QUERIES", "2e3")))
CALL = 1_000  # queries per match_many / MatchHashes call
ROUNDS = 3


def _codes() -> np.ndarray:
    return np.random.default_rng(21).integers(0, 256, (ROWS, 32), dtype=np.uint8)


def _queries(kind: str) -> list[bytes]:
    rng = np.random.default_rng(22)
    if kind == "all-matching":  # listed hashes, each a few bits off (as re-encoded uploads are), within 31
        codes = _codes()[rng.choice(ROWS, QUERIES, replace=QUERIES > ROWS)]
        bits = np.unpackbits(codes, axis=1)
        for row in bits:
            row[rng.choice(256, int(rng.integers(0, 9)), replace=False)] ^= 1
        return [bytes(row) for row in np.packbits(bits, axis=1)]
    return [bytes(row) for row in rng.integers(0, 256, (QUERIES, 32), dtype=np.uint8)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, Path]]:
    directory = tmp_path_factory.mktemp("verdict-bench")
    with Store(directory / "h.db") as store:
        store.create_list(HashList("ncmec", SourceProgramme.NCMEC, frozenset({SignalType.PDQ})))
        records = (
            ParsedRecord(i + 1, bytes(code).hex(), external_id=f"NCMEC-{i:09d}", classification="A1")
            for i, code in enumerate(_codes())
        )
        import_records(store, "ncmec", records)
    tokens = directory / "tokens.json"
    token = TokenStore.add(tokens, "load", Role.MATCHER)
    running = start_server(ServerConfig(db_path=directory / "h.db", address="127.0.0.1:0", tokens_path=tokens))
    yield running, token, directory
    running.stop(1)


def _in_process(matcher: Matcher, digests: list[bytes]) -> dict[str, float]:
    queries = [QueryHashes(pdq=PdqHash(d, 100)) for d in digests]
    matched = 0
    started = time.perf_counter()
    for start in range(0, len(queries), CALL):
        matched += sum(1 for v in matcher.match_many(queries[start : start + CALL]) if v.matches)
    return {"answered": len(queries), "matched": matched, "seconds": time.perf_counter() - started}


def _measure(benchmark: Any, run: Callable[[], dict[str, float]], kind: str, path: str) -> None:
    """ROUNDS runs (one when timing is off, as in CI's smoke run), each checked; the median goes on record."""
    results: list[dict[str, float]] = []
    benchmark.group = "verdicts"
    benchmark.pedantic(lambda: results.append(run()), rounds=ROUNDS)
    for result in results:
        _check(result, kind)
    seconds = float(np.median([r["seconds"] for r in results]))
    benchmark.extra_info.update(
        path=path, kind=kind, rows=ROWS, queries=QUERIES, seconds=seconds, throughput=QUERIES / seconds
    )


def _check(result: dict[str, float], kind: str) -> None:
    assert result.get("errors", 0) == 0
    assert result["answered"] == QUERIES
    assert result["matched"] == (QUERIES if kind == "all-matching" else 0)


@pytest.mark.parametrize("kind", ["none-matching", "all-matching"])
def test_verdicts_in_process(benchmark: Any, served: tuple[RunningServer, str, Path], kind: str) -> None:
    running, _, _ = served
    digests = _queries(kind)
    matcher = running.state.matcher
    _in_process(matcher, digests[:CALL])  # warm caches and the store's connection outside the timing
    _measure(benchmark, lambda: _in_process(matcher, digests), kind, "in-process")


@pytest.mark.parametrize("kind", ["none-matching", "all-matching"])
def test_verdicts_grpc_match_hashes(benchmark: Any, served: tuple[RunningServer, str, Path], kind: str) -> None:
    running, token, directory = served
    queries = directory / f"{kind}.txt"
    queries.write_text("\n".join(d.hex() for d in _queries(kind)))
    args = ("--mode", "query-file", "--queries", str(queries), "--batch", str(CALL))
    # The client's own timing, without its process start-up.
    _measure(benchmark, lambda: client_process(running, token, *args), kind, "grpc MatchHashes")
