"""gRPC end to end on loopback, beside the same work in-process: media (0.8 MP JPEGs) and hash-only lookups.

The server runs in this process, the load in a separate client process (benchmarks/grpc_load.py); the
in-process rows call the server's own hasher and batcher from threads. HASHMATCH_BENCH_GRPC_ROWS sets the
list size (default 10,000 for CI's smoke run; the README uses 1e6) and HASHMATCH_BENCH_GRPC_REQUESTS the
media requests per measurement (default 40).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.matcher import QueryHashes
from engine.signals import SignalType
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.server import RunningServer, ServerConfig, start_server
from hashing.pdq_hash import PdqHash

ROWS = int(float(os.environ.get("HASHMATCH_BENCH_GRPC_ROWS", "1e4")))
MEDIA_REQUESTS = int(float(os.environ.get("HASHMATCH_BENCH_GRPC_REQUESTS", "40")))
CONCURRENCY = [1, 2, 4, 8]
HASH_BATCH = 100
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    directory = tmp_path_factory.mktemp("grpc-bench")
    rng = np.random.default_rng(9)
    text = "\n".join(bytes(row).hex() for row in rng.integers(0, 256, (ROWS, 32), dtype=np.uint8))
    with Store(directory / "h.db") as store:
        store.create_list(HashList("bench", SourceProgramme.LOCAL, frozenset(SignalType)))
        import_records(store, "bench", records_from_text(text, ImportFormat.PLAIN))
    tokens = directory / "tokens.json"
    token = TokenStore.add(tokens, "load", Role.MATCHER)
    running = start_server(
        ServerConfig(
            db_path=directory / "h.db", address="127.0.0.1:0", tokens_path=tokens, workers=16, max_concurrent_rpcs=256
        )
    )
    yield running, token
    running.stop(1)


def client_process(running: RunningServer, token: str, *args: str) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.grpc_load",
        "--target",
        f"127.0.0.1:{running.port}",
        "--token",
        token,
        *args,
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def closed_loop(call: Callable[[], object], concurrency: int, requests: int, per_call: int) -> dict[str, Any]:
    """`concurrency` threads each making their share of `requests` calls back to back: throughput, latency.
    A call that raises counts as an error (and not as answered); the first exception is kept for the report."""
    latencies: list[float] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            try:
                call()
            except Exception as exc:  # passed back: the record's errors and its assertion show it
                with lock:
                    failures.append(exc)
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(requests // concurrency,)) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "lookups": len(latencies) * per_call,
        "seconds": seconds,
        "throughput": len(latencies) * per_call / seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3) if latencies else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3) if latencies else float("nan"),
        "errors": len(failures),
        **({"first_error": repr(failures[0])} if failures else {}),
    }


def in_process_media(running: RunningServer, media: bytes, concurrency: int, requests: int) -> dict[str, Any]:
    """What Match does, minus gRPC: the server's own hasher and batcher."""
    state = running.state
    return closed_loop(
        lambda: state.batcher.match(QueryHashes.of_media(state.hasher.hash_bytes(media))), concurrency, requests, 1
    )


def in_process_hashes(running: RunningServer, concurrency: int, requests: int) -> dict[str, Any]:
    """What MatchHashes does with HASH_BATCH queries, minus gRPC."""
    rng = np.random.default_rng(3)
    batch = [QueryHashes(pdq=PdqHash(rng.bytes(32), 100)) for _ in range(HASH_BATCH)]
    matcher = running.state.matcher
    return closed_loop(lambda: matcher.match_many(batch), concurrency, requests, HASH_BATCH)


def media_load_args(mode: str, jpeg_files: dict[str, Path], concurrency: int, *extra: str) -> tuple[str, ...]:
    """Load-generator arguments for MEDIA_REQUESTS 0.8 MP JPEG uploads."""
    return (
        "--mode",
        mode,
        "--media",
        str(jpeg_files["1024x768"]),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(MEDIA_REQUESTS),
        *extra,
    )


def record(benchmark: Any, workload: str, path: str, concurrency: int, result: dict[str, Any]) -> None:
    benchmark.extra_info.update(workload=workload, path=path, concurrency=concurrency, rows=ROWS, **result)
    assert result["errors"] == 0, result.get("first_error", result)
    assert result["requests"] > 0


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_media_in_process(
    benchmark: Any, server: tuple[RunningServer, str], jpeg_files: dict[str, Path], concurrency: int
) -> None:
    running, _ = server
    media = jpeg_files["1024x768"].read_bytes()
    benchmark.group = "grpc media"
    result = benchmark.pedantic(in_process_media, args=(running, media, concurrency, MEDIA_REQUESTS), rounds=1)
    record(benchmark, "media", "in-process", concurrency, result)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_media_grpc(
    benchmark: Any, server: tuple[RunningServer, str], jpeg_files: dict[str, Path], concurrency: int
) -> None:
    running, token = server
    benchmark.group = "grpc media"
    args = media_load_args("media", jpeg_files, concurrency)
    result = benchmark.pedantic(client_process, args=(running, token, *args), rounds=1)
    record(benchmark, "media", "grpc", concurrency, result)


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_media_grpc_stream(
    benchmark: Any, server: tuple[RunningServer, str], jpeg_files: dict[str, Path], concurrency: int
) -> None:
    running, token = server
    benchmark.group = "grpc media"
    args = media_load_args("media-stream", jpeg_files, concurrency)
    result = benchmark.pedantic(client_process, args=(running, token, *args), rounds=1)
    record(benchmark, "media", "grpc stream", concurrency, result)


def test_media_grpc_at_80_percent_of_peak(
    benchmark: Any, server: tuple[RunningServer, str], jpeg_files: dict[str, Path]
) -> None:
    """The peak is measured here (closed loop, 8 callers), so this test stands on its own."""
    running, token = server
    peak = client_process(running, token, *media_load_args("media", jpeg_files, 8))
    assert peak["errors"] == 0 and peak["throughput"] > 0
    rate = 0.8 * peak["throughput"]
    benchmark.group = "grpc media"
    args = media_load_args("media", jpeg_files, 32, "--rate", f"{rate:.2f}")
    result = benchmark.pedantic(client_process, args=(running, token, *args), rounds=1)
    record(benchmark, "media", "grpc at 80% of peak", 0, result | {"offered_rate": rate, "peak": peak["throughput"]})


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_hash_lookups_in_process(benchmark: Any, server: tuple[RunningServer, str], concurrency: int) -> None:
    running, _ = server
    benchmark.group = "grpc hashes"
    result = benchmark.pedantic(in_process_hashes, args=(running, concurrency, 8 * MEDIA_REQUESTS), rounds=1)
    record(benchmark, "hashes", "in-process", concurrency, result)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_hash_lookups_grpc(benchmark: Any, server: tuple[RunningServer, str], concurrency: int) -> None:
    running, token = server
    benchmark.group = "grpc hashes"
    args = (
        "--mode",
        "hashes",
        "--batch",
        str(HASH_BATCH),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(8 * MEDIA_REQUESTS),
    )
    result = benchmark.pedantic(client_process, args=(running, token, *args), rounds=1)
    record(benchmark, "hashes", "grpc", concurrency, result)
