"""What the audit log costs gRPC hash-only lookups: the same server, store and load (benchmarks.grpc_load,
MatchHashes in batches of 100, from a client process), with the audit log on and off, in interleaved rounds
(the host drifts between minutes); the ratio is taken per round, then the median. Bar (issue 13): with the
log on, at least 90% of the lookups/s with it off. Every verdict is one audit record; the test checks that
the log holds a verdict for every query answered (one `match` record per call) and that it verifies.

HASHMATCH_BENCH_GRPC_ROWS (list size, default 1e4) and HASHMATCH_BENCH_AUDIT_REQUESTS (calls per round,
default 40) set the size.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.test_bench_grpc import HASH_BATCH, client_process
from engine.audit.log import Finding, export, verify
from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.signals import SignalType
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.server import RunningServer, ServerConfig, start_server

ROWS = int(float(os.environ.get("HASHMATCH_BENCH_GRPC_ROWS", "1e4")))
REQUESTS = int(float(os.environ.get("HASHMATCH_BENCH_AUDIT_REQUESTS", "40")))
ROUNDS = int(os.environ.get("HASHMATCH_BENCH_AUDIT_ROUNDS", "3"))
CONCURRENCY = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("audit-bench")
    rng = np.random.default_rng(11)
    text = "\n".join(bytes(row).hex() for row in rng.integers(0, 256, (ROWS, 32), dtype=np.uint8))
    with Store(directory / "h.db") as db:
        db.create_list(HashList("bench", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
        import_records(db, "bench", records_from_text(text, ImportFormat.PLAIN))
    token = TokenStore.add(directory / "tokens.json", "load", Role.MATCHER)
    yield directory, token


def lookups(directory: Path, token: str, audit: bool, answered: list[int]) -> float:
    config = ServerConfig(
        db_path=directory / "h.db",
        address="127.0.0.1:0",
        tokens_path=directory / "tokens.json",
        workers=16,
        max_concurrent_rpcs=256,
        audit=audit,
        audit_path=directory / "audit.jsonl",
    )
    running = start_server(config)
    try:
        args = ("--mode", "hashes", "--batch", str(HASH_BATCH), "--concurrency", str(CONCURRENCY))
        result = client_process(running, token, *args, "--requests", str(REQUESTS))
        answered.append(verdicts_served(running))
    finally:
        running.stop(1)
    assert result["errors"] == 0, result.get("first_error", result)
    return float(result["throughput"])


def verdicts_served(running: RunningServer) -> int:
    """The server's own count of the verdicts it gave (its Prometheus counter)."""
    samples = (s for metric in running.state.metrics.verdicts.collect() for s in metric.samples)
    return int(sum(s.value for s in samples if s.name.endswith("_total")))


def test_audit_log_cost_on_hash_lookups(benchmark: Any, store: tuple[Path, str]) -> None:
    directory, token = store
    rates: dict[str, list[float]] = {"off": [], "on": []}
    answered: dict[str, list[int]] = {"off": [], "on": []}  # verdicts each server gave (its metric)

    def rounds() -> None:
        for n in range(ROUNDS):
            for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                rates[mode].append(lookups(directory, token, mode == "on", answered[mode]))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    ratios = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    benchmark.extra_info.update(
        kind="audit",
        rows=ROWS,
        requests=REQUESTS,
        batch=HASH_BATCH,
        concurrency=CONCURRENCY,
        off=rates["off"],
        on=rates["on"],
        ratios=ratios,
        median_ratio=statistics.median(ratios),
    )
    log = directory / "audit.jsonl"
    assert verify(log).finding is Finding.OK
    audited = sum(r["data"]["count"] for r in export(log) if r["kind"] == "match")
    assert audited == sum(answered["on"])  # every verdict served with the log on is in it
