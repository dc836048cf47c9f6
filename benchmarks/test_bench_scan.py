"""`hashmatch scan` throughput: generated camera-like JPEGs of mixed sizes (0.3 to 12 MP, from scikit-image's
benign sample photos), scanned on every core, beside (a) hashmatch's single-core file -> hash throughput on
the same files, times the cores, and (b) a naive loop: Pillow decode + Meta's `pdqhash`, one process per core,
as python-threatexchange and HMA hash files. Two more rows put the scan in context: a bare process pool (the
same hasher in a plain multiprocessing pool: no walk, claims, matching or journal) shows what these cores give
any design that uses processes, and the same scan on a local Ray instance (when the 'distributed' extra is
installed) shows what Ray costs on one machine.

The host is shared and its speed drifts by 10% and more between minutes, more than the scaling bar's margin:
single core, bare pool and scan therefore run in three interleaved rounds (single core on every fifth file,
which covers every size), and the ratios are taken per round, then their median.

Each measurement checks what it counted: the scan's results.jsonl holds one line per file with a PDQ, the
pools and the naive loop return a hash per file. Files: HASHMATCH_BENCH_SCAN_FILES (default 24, CI's smoke
run; the README's table states its own count). summarize_scan.py checks the bars from 200 files on.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.conftest import pin_all_threads
from benchmarks.robustness import sample_photos
from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.matcher import Matcher
from engine.scan.journal import ScanJournal
from engine.scan.runner import ScanRunner, ScanSettings
from engine.signals import SignalType
from engine.store import Store
from hashing.errors import HashmatchError
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode

pdqhash = pytest.importorskip("pdqhash", reason="the naive loop's hasher is Meta's C++ reference")

FILES = int(float(os.environ.get("HASHMATCH_BENCH_SCAN_FILES", "24")))
# Camera-like sizes from 0.3 to 12 MP, in equal shares.
SIZES = [(640, 480), (1280, 960), (2048, 1536), (2592, 1944), (3264, 2448), (4000, 3000)]
CORES = len(os.sched_getaffinity(0))
ROUNDS = 3


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FILES distinct JPEGs (quality 85-95, random crops of the sample photos): no two share a SHA-256."""
    folder = tmp_path_factory.mktemp("seized")
    photos = [photo for _, photo in sample_photos()]
    rng = np.random.default_rng(0)
    for number in range(FILES):
        photo = photos[number % len(photos)]
        width, height = SIZES[number % len(SIZES)]
        left, top = int(rng.integers(0, photo.width // 8)), int(rng.integers(0, photo.height // 8))
        crop = photo.crop((left, top, photo.width - int(rng.integers(0, photo.width // 8)), photo.height))
        buffer = io.BytesIO()
        crop.resize((width, height), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=int(rng.integers(85, 96)))
        (folder / f"IMG_{number:05}.jpg").write_bytes(buffer.getvalue())
    return folder


def _record(benchmark: Any, path: str, files: int, seconds: float, **extra: Any) -> None:
    benchmark.extra_info.update(
        {
            "kind": "scan",
            "path": path,
            "files": files,
            "cores": CORES,
            "seconds": seconds,
            "throughput": files / seconds,
        }
        | extra
    )


def _single_core_rate(files: list[Path]) -> float:
    """hashmatch's file -> hash (PDQ with DCT dihedral variants and the exact digests) on one core."""
    hasher = MediaHasher(HashOptions(dihedral=DihedralMode.DCT))
    for warm in files[:6]:  # compiled kernels loaded for every size, as in a worker that has run a while
        hasher.hash_file(warm)
    everything = os.sched_getaffinity(0)
    pin_all_threads({sorted(everything)[0]})
    try:
        started = time.perf_counter()
        hashes = [hasher.hash_file(f) for f in files]
        seconds = time.perf_counter() - started
    finally:
        pin_all_threads(everything)
    assert len(hashes) == len(files)
    return len(files) / seconds


_BARE_HASHER: MediaHasher | None = None


def _start_bare() -> None:
    global _BARE_HASHER
    _BARE_HASHER = MediaHasher(HashOptions(dihedral=DihedralMode.DCT))


def _bare(path: Path) -> str:
    assert _BARE_HASHER is not None
    return _BARE_HASHER.hash_file(path).pdq.hex()


def _bare_pool_rate(files: list[Path]) -> float:
    """The same hasher on every core in a plain pool, its start-up included as the scan's is."""
    started = time.perf_counter()
    with ProcessPoolExecutor(CORES, multiprocessing.get_context("fork"), initializer=_start_bare) as pool:
        hashes = list(pool.map(_bare, files, chunksize=1))
    seconds = time.perf_counter() - started
    assert len(hashes) == len(files) and all(hashes)
    return len(files) / seconds


def _scan_rate(collection: Path, matcher: Matcher, out: Path) -> float:
    """The whole scan, worker start-up included: walk, hash on every core, match, journal, report lines."""
    journal = ScanJournal(out)
    settings = ScanSettings(workers=CORES, hash_options=HashOptions(dihedral=DihedralMode.DCT))
    started = time.perf_counter()
    outcome = ScanRunner(matcher, journal, settings).run([collection])
    seconds = time.perf_counter() - started
    journal.write_results(out / "results.jsonl")
    journal.close()
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert not outcome.interrupted and len(lines) == FILES and all(line["pdq"] for line in lines)
    assert outcome.counters.hashed == FILES
    return FILES / seconds


def test_scaling(benchmark: Any, collection: Path, matcher: Matcher, tmp_path: Path) -> None:
    """Three interleaved rounds of single core, bare pool and scan, on the same files and cores."""
    files = sorted(collection.iterdir())
    every_fifth = files[::5] or files
    rates: dict[str, list[float]] = {"single core": [], "bare process pool": [], "hashmatch scan": []}

    measures: list[tuple[str, Callable[[int], float]]] = [
        ("single core", lambda _: _single_core_rate(every_fifth)),
        ("bare process pool", lambda _: _bare_pool_rate(files)),
        ("hashmatch scan", lambda number: _scan_rate(collection, matcher, tmp_path / f"out{number}")),
    ]

    def one_round() -> None:
        number = len(rates["hashmatch scan"])
        for path, measure in measures[number % 3 :] + measures[: number % 3]:  # a drift favours none of them
            rates[path].append(measure(number))

    benchmark.pedantic(one_round, rounds=ROUNDS)
    benchmark.extra_info.update(
        {
            "kind": "scan-rounds",
            "cores": CORES,
            "files": {"single core": len(every_fifth), "bare process pool": FILES, "hashmatch scan": FILES},
            "rates": rates,
        }
    )


def _naive(path: Path) -> int:
    with Image.open(path) as image:
        _, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return int(quality)


def test_naive_loop(benchmark: Any, collection: Path) -> None:
    files = sorted(collection.iterdir())
    with ProcessPoolExecutor(CORES) as pool:
        list(pool.map(_naive, files[: CORES * 2]))  # workers started and warm
        started = time.perf_counter()
        qualities = benchmark.pedantic(lambda: list(pool.map(_naive, files, chunksize=4)), rounds=1)
        seconds = time.perf_counter() - started
    assert len(qualities) == len(files)
    _record(benchmark, "naive loop", len(files), seconds)


@pytest.fixture
def matcher(tmp_path: Path) -> Iterator[Matcher]:
    with Store(tmp_path / "h.db") as store:
        store.create_list(HashList("bench", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
        rng = np.random.default_rng(1)
        listed = "\n".join(bytes(row).hex() for row in rng.integers(0, 256, (10_000, 32), dtype=np.uint8))
        import_records(store, "bench", records_from_text(listed + "\n", ImportFormat.PLAIN))
        yield Matcher.from_store(store)


def test_scan_on_local_ray(benchmark: Any, collection: Path, matcher: Matcher, tmp_path: Path) -> None:
    """The same scan with --ray on a local Ray instance of CORES CPUs, Ray's start-up included."""
    pytest.importorskip("ray", reason="the 'distributed' extra is not installed")
    from engine.scan.ray_runner import RAY_LOG, RayScanRunner, RayTarget

    out = tmp_path / "out"
    journal = ScanJournal(out)
    settings = ScanSettings(workers=CORES, hash_options=HashOptions(dihedral=DihedralMode.DCT))
    runner = RayScanRunner(matcher.store.path, matcher, journal, settings, RayTarget(actors=CORES))
    started = time.perf_counter()
    try:
        outcome = benchmark.pedantic(lambda: runner.run([collection]), rounds=1)
    except HashmatchError as failure:  # what Ray said is in ray.log, which pytest's tmp_path would hide
        log = out / RAY_LOG
        said = log.read_text(errors="replace")[-4000:] if log.exists() else "(no ray.log)"
        pytest.fail(f"{failure.reason}: {failure.detail}\n--- end of {RAY_LOG} ---\n{said}")
    seconds = time.perf_counter() - started
    journal.write_results(out / "results.jsonl")
    journal.close()
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert not outcome.interrupted and len(lines) == FILES and all(line["pdq"] for line in lines)
    _record(benchmark, "hashmatch scan --ray (local)", FILES, seconds, hashed=outcome.counters.hashed)
