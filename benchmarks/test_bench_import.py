"""Import of a plain list of HASHMATCH_BENCH_IMPORT_LINES lines (default 100,000; the README uses 1e7)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.importers.formats import ImportFormat, read_records
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.matcher import Matcher
from engine.signals import SignalType
from engine.store import Store

LINES = int(float(os.environ.get("HASHMATCH_BENCH_IMPORT_LINES", "1e5")))


def write_list(path: Path, lines: int) -> None:
    rng = np.random.default_rng(11)
    with path.open("w") as out:
        for start in range(0, lines, 1_000_000):
            block = rng.integers(0, 256, (min(1_000_000, lines - start), 32), dtype=np.uint8)
            out.write("\n".join(bytes(row).hex() for row in block) + "\n")


def test_import_plain_list(benchmark: Any, tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    write_list(path, LINES)
    store = Store(tmp_path / "h.db")
    store.create_list(HashList("bench", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
    benchmark.group = "import"

    def run() -> Any:
        return import_records(store, "bench", read_records(path, ImportFormat.PLAIN), source_file=str(path))

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    started = time.perf_counter()
    loaded = store.live_signals("bench", SignalType.PDQ)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    matcher = Matcher.from_store(store)  # what a server does at start-up: load the version, build the index
    startup_s = time.perf_counter() - started
    benchmark.extra_info.update(lines=LINES, load_s=load_s, startup_s=startup_s, added=report.added)
    assert report.added == LINES and loaded.values.shape == (LINES, 32)
    assert len(matcher.lists[0].pdq_ids) == LINES
