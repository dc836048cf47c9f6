"""Single-query latency of hashmatch's multi-index with the other core busy, and batched throughput.

A list of HASHMATCH_BENCH_LATENCY_ROWS random codes (default 1e5, CI's smoke run; the measured run uses 1e7)
is searched at radius 31 by single queries (p50, p99) and by batches of BATCH queries (queries/s), each once
with the machine idle and once with "the other core busy": a process spinning on one core, pinned there,
while this process stays unpinned on every core, as the server is beside its gRPC and hashing threads.
Queries are half near listed codes, half random. Each measurement counts the queries answered and holds a
sample of the answers to FAISS's exhaustive IndexBinaryFlat (exact answers only). It also records the CPU
that processes other than this one and its spinner took meanwhile (`other_cores`, hypervisor steal
included): on a shared machine that says whether "idle" was idle.

The path measured is "after" (small batches serial, large ones parallel) unless HASHMATCH_MIH_FORCE_PARALLEL=1
selects "before" (every batch parallel); `benchmarks.summarize_latency` compares the two reports. The batch-size
sweep, run on the "after" path only, times both kernels at each batch size: it is what the threshold between
them (`engine.index.multi_index.SERIAL_BELOW_QUERIES`) is chosen from.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.index_data import queries, random_codes
from benchmarks.test_bench_index import recall
from engine.index.faiss_flat import FaissFlatIndex
from engine.index.multi_index import FORCE_PARALLEL_ENV, MultiIndexHashIndex
from kernels.hamming import RangeHits

pytest.importorskip("faiss", reason="FAISS's exhaustive search is the reference the answers are checked against")

ROWS = int(float(os.environ.get("HASHMATCH_BENCH_LATENCY_ROWS", "1e5")))
PATH = "before" if os.environ.get(FORCE_PARALLEL_ENV) == "1" else "after"
RADIUS = 31
SINGLE_QUERIES = 1000
BATCH = 1000
BATCH_ROUNDS = 10
RECALL_SAMPLE = 200  # answers checked against the exhaustive reference, per measurement
SWEEP_SIZES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256, 1000)
SWEEP_QUERIES = 1000  # queries per kernel and batch size in the sweep (at least SWEEP_MIN_BATCHES batches)
SWEEP_MIN_BATCHES = 3
# Time for the scheduler to move this process's threads off the core the spinner was pinned to.
SETTLE_S = 0.5
BUSY = pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])

# One query's answer: its rows and their distances.
Answer = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Workload:
    index: MultiIndexHashIndex
    queries: np.ndarray  # (SINGLE_QUERIES, 32), near and random ones interleaved
    sample: np.ndarray  # positions in `queries` whose answers are checked
    truth: RangeHits  # the exhaustive reference's answers for queries[sample]


@pytest.fixture(scope="module")
def workload() -> Workload:
    codes = random_codes(ROWS)
    index = MultiIndexHashIndex(codes)
    mixed = queries(codes, SINGLE_QUERIES)[np.random.default_rng(2).permutation(SINGLE_QUERIES)]
    sample = np.linspace(0, SINGLE_QUERIES - 1, RECALL_SAMPLE).astype(np.int64)
    truth = FaissFlatIndex(codes).search(mixed[sample], RADIUS)
    # Warm both kernels (JIT cache load, thread pool start, page faults) outside every timed part.
    for size in (1, BATCH):
        index.search(mixed[:size], RADIUS)
    return Workload(index, mixed, sample, truth)


@dataclass
class MachineLoad:
    other_cores: float = 0.0  # cores' worth of CPU other processes took while the block ran


def machine_busy_s() -> float:
    """CPU seconds every core has spent on anything but idling (steal included), since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    return sum(int(v) for v in (user, nice, system, irq, softirq, steal)) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def others_cpu_s(spinner: subprocess.Popen[bytes] | None) -> float:
    """Machine CPU seconds so far less this process's and the spinner's: what other processes took."""
    ours = process_cpu_s(os.getpid()) + (process_cpu_s(spinner.pid) if spinner else 0.0)
    return machine_busy_s() - ours


def start_spinner() -> subprocess.Popen[bytes]:
    """A process spinning on the last core this one may use; this process stays unpinned."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two cores: one kept busy and one free")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(spinner.pid, {cpus[-1]})
    time.sleep(SETTLE_S)
    return spinner


@contextlib.contextmanager
def machine(busy: bool) -> Iterator[MachineLoad]:
    """While the block runs, the other core is busy (if `busy`), and the load of other processes is measured.
    The spinner is stopped however the block ends, and must have spun throughout."""
    load = MachineLoad()
    spinner = start_spinner() if busy else None
    try:
        started, others = time.perf_counter(), others_cpu_s(spinner)
        yield load
        # Clamped: /proc/stat and /proc/PID/stat tick separately, so a quiet machine can read a hair below zero.
        load.other_cores = max(0.0, (others_cpu_s(spinner) - others) / (time.perf_counter() - started))
        assert spinner is None or spinner.poll() is None, "the spinner ended early: the core was not busy throughout"
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def per_query(hits: RangeHits) -> list[Answer]:
    return [hits.for_query(i) for i in range(hits.n_queries)]


def as_hits(answers: list[Answer]) -> RangeHits:
    offsets = np.zeros(len(answers) + 1, dtype=np.int64)
    np.cumsum([len(rows) for rows, _ in answers], out=offsets[1:])
    rows = np.concatenate([np.zeros(0, np.int64), *(rows for rows, _ in answers)])
    distances = np.concatenate([np.zeros(0, np.int16), *(distances for _, distances in answers)])
    return RangeHits(offsets, rows, distances)


def checked_recall(workload: Workload, answers: list[Answer]) -> float:
    """Recall on the sampled queries; `answers` must hold one answer for every query of the workload."""
    assert len(answers) == SINGLE_QUERIES, f"{len(answers)} of {SINGLE_QUERIES} queries answered"
    return recall(as_hits([answers[i] for i in workload.sample]), workload.truth, RECALL_SAMPLE)


def timed(index: MultiIndexHashIndex, batch: np.ndarray) -> tuple[float, list[Answer]]:
    """Seconds one search of the batch took, and its answers."""
    started = time.perf_counter()
    hits = index.search(batch, RADIUS)
    return time.perf_counter() - started, per_query(hits)


def single_queries(workload: Workload) -> tuple[np.ndarray, list[Answer]]:
    """Every query searched alone: the seconds each took, and the answers."""
    index, batch = workload.index, workload.queries
    runs = [timed(index, batch[i : i + 1]) for i in range(len(batch))]
    return np.array([seconds for seconds, _ in runs]), [answer for _, answers in runs for answer in answers]


@contextlib.contextmanager
def forced_kernel(index: MultiIndexHashIndex, kernel: str) -> Iterator[None]:
    """Every batch through the named kernel, "serial" or "parallel", while the block runs."""
    chosen = index.serial_below_queries
    index.serial_below_queries = sys.maxsize if kernel == "serial" else 0
    try:
        yield
    finally:
        index.serial_below_queries = chosen


def record(benchmark: Any, kind: str, load: MachineLoad, busy: bool, seconds: np.ndarray, found: float) -> None:
    """The measurement's extra_info; `seconds` are per call, of 1 query ("single") or BATCH ("batch")."""
    queries_each = 1 if kind == "single" else BATCH
    benchmark.extra_info.update(
        path=PATH,
        kind=kind,
        busy=busy,
        rows=ROWS,
        queries_per_call=queries_each,
        calls=len(seconds),
        p50_ms=float(np.percentile(seconds, 50) * 1e3),
        p99_ms=float(np.percentile(seconds, 99) * 1e3),
        throughput=queries_each / float(np.median(seconds)),
        recall=found,
        other_cores=load.other_cores,
    )
    assert found == 1.0, f"recall {found:.6f}: answers must be exact"


@BUSY
def test_single_query_latency(benchmark: Any, workload: Workload, busy: bool) -> None:
    results: list[tuple[np.ndarray, list[Answer]]] = []
    benchmark.group = f"latency {ROWS:.0e} single"
    with machine(busy) as load:
        benchmark.pedantic(lambda: results.append(single_queries(workload)), rounds=1, iterations=1)
    seconds, answers = results[0]
    record(benchmark, "single", load, busy, seconds, checked_recall(workload, answers))


@BUSY
def test_batched_throughput(benchmark: Any, workload: Workload, busy: bool) -> None:
    results: list[tuple[float, list[Answer]]] = []
    benchmark.group = f"latency {ROWS:.0e} batch"
    batch = workload.queries[:BATCH]
    with machine(busy) as load:
        benchmark.pedantic(lambda: results.append(timed(workload.index, batch)), rounds=BATCH_ROUNDS, iterations=1)
    found = min(checked_recall(workload, answers) for _, answers in results)
    record(benchmark, "batch", load, busy, np.array([seconds for seconds, _ in results]), found)


def sweep_one_size(workload: Workload, size: int) -> dict[str, float]:
    """Batches of `size` queries through each kernel in turn, each kernel's median and p99 milliseconds per batch
    and queries/s. The kernels alternate (a drift in the machine's speed hits both alike) and take turns at going
    first (the second to search a batch would find its buckets in cache); their answers must agree."""
    index, batches = workload.index, max(SWEEP_MIN_BATCHES, SWEEP_QUERIES // size)
    seconds: dict[str, list[float]] = {"serial": [], "parallel": []}
    for b in range(batches):
        first = (b * size) % (SINGLE_QUERIES - size + 1)
        answers = {}
        for kernel in ("serial", "parallel") if b % 2 == 0 else ("parallel", "serial"):
            with forced_kernel(index, kernel):
                took, answers[kernel] = timed(index, workload.queries[first : first + size])
            seconds[kernel].append(took)
        assert len(answers["serial"]) == size
        assert all(np.array_equal(s[0], p[0]) for s, p in zip(answers["serial"], answers["parallel"], strict=True))
    result: dict[str, float] = {"size": size}
    for kernel, times in seconds.items():
        result[f"{kernel}_ms"] = float(np.median(times) * 1e3)
        result[f"{kernel}_p99_ms"] = float(np.percentile(times, 99) * 1e3)
        result[f"{kernel}_per_s"] = size / float(np.median(times))
    return result


@BUSY
def test_batch_size_sweep(benchmark: Any, workload: Workload, busy: bool) -> None:
    if PATH == "before":
        pytest.skip("the sweep times both kernels itself; it runs once, on the 'after' path")
    results: list[list[dict[str, float]]] = []
    benchmark.group = f"latency {ROWS:.0e} sweep"
    with machine(busy) as load:
        sweep = lambda: results.append([sweep_one_size(workload, size) for size in SWEEP_SIZES])  # noqa: E731
        benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info.update(
        path=PATH, kind="sweep", busy=busy, rows=ROWS, sweep=results[0], other_cores=load.other_cores
    )
