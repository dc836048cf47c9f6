"""What the audit log costs gRPC hash-only lookups: the same server, store and load (benchmarks.grpc_load,
MatchHashes in batches of 100, from a client process), with the audit log on and off, in interleaved rounds
(the host drifts between minutes); the ratio is taken per round, then the median. Bar (issue 13): with the
log on, at least 90% of the lookups/s with it off. Every verdict is one audit record; the test checks that
the log holds a verdict for every query answered (one `match` record per call) and that it verifies. Two variants:
queries that match nothing, and a `refer` list that one query in ten matches (a referral record each).

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
from engine.evidence.flood import FloodSettings
from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, ListAction, SourceProgramme
from engine.signals import SignalType
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.server import RunningServer, ServerConfig, start_server

ROWS = int(float(os.environ.get("HASHMATCH_BENCH_GRPC_ROWS", "1e4")))
REQUESTS = int(float(os.environ.get("HASHMATCH_BENCH_AUDIT_REQUESTS", "40")))
ROUNDS = int(os.environ.get("HASHMATCH_BENCH_AUDIT_ROUNDS", "3"))
CONCURRENCY = 4


# The load's queries are the same 100 random PDQ hashes in every call (benchmarks.grpc_load, seed 3). In the
# `referring` variant the list also holds the first tenth of them, with the action `refer`: every call then
# gives 10 verdicts that refer, and the log on writes a referral record for each (the flood guard is off there:
# it would rightly hold those 10 entries within seconds, and the referrals would stop).
REFERRING_SHARE = 10  # one query in this many matches in the referring variant


def load_digests() -> list[bytes]:
    rng = np.random.default_rng(3)
    return [rng.bytes(32) for _ in range(HASH_BATCH)]


@pytest.fixture(scope="module", params=["no-matches", "referring"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, bool]]:
    referring = request.param == "referring"
    directory = tmp_path_factory.mktemp("audit-bench")
    rng = np.random.default_rng(11)
    rows = [bytes(row).hex() for row in rng.integers(0, 256, (ROWS, 32), dtype=np.uint8)]
    if referring:
        rows[: HASH_BATCH // REFERRING_SHARE] = [d.hex() for d in load_digests()[: HASH_BATCH // REFERRING_SHARE]]
    with Store(directory / "h.db") as db:
        action = ListAction.REFER if referring else ListAction.REMOVE
        db.create_list(HashList("bench", SourceProgramme.LOCAL, frozenset({SignalType.PDQ}), action=action))
        import_records(db, "bench", records_from_text("\n".join(rows), ImportFormat.PLAIN))
    token = TokenStore.add(directory / "tokens.json", "load", Role.MATCHER)
    yield directory, token, referring


def lookups(directory: Path, token: str, audit: bool, answered: list[int], referring: bool) -> float:
    config = ServerConfig(
        db_path=directory / "h.db",
        address="127.0.0.1:0",
        tokens_path=directory / "tokens.json",
        workers=16,
        max_concurrent_rpcs=256,
        audit=audit,
        audit_path=directory / "audit.jsonl",
        flood=FloodSettings(enabled=not referring),
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


def test_audit_log_cost_on_hash_lookups(benchmark: Any, store: tuple[Path, str, bool]) -> None:
    directory, token, referring = store
    rates: dict[str, list[float]] = {"off": [], "on": []}
    answered: dict[str, list[int]] = {"off": [], "on": []}  # verdicts each server gave (its metric)

    def rounds() -> None:
        for n in range(ROUNDS):
            for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                rates[mode].append(lookups(directory, token, mode == "on", answered[mode], referring))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    ratios = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    benchmark.extra_info.update(
        kind="audit",
        referring=referring,
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
    records = list(export(log))
    audited = sum(r["data"]["count"] for r in records if r["kind"] == "match")
    assert audited == sum(answered["on"])  # every verdict served with the log on is in it
    referrals = sum(r["kind"] == "referral" for r in records)
    assert referrals == (sum(answered["on"]) // REFERRING_SHARE if referring else 0)
