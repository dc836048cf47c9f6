"""The GPU benchmark's code runs here (on the emulated kernels at tiny sizes) and its bars can fail: a GPU machine
is lent rarely, so benchmarks/device_check.sh must not meet a broken benchmark for the first time there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import summarize_gpu

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = {
    ("single query", "gpu"),
    ("single query", "cpu"),
    ("batch", "gpu"),
    ("batch", "cpu"),
    ("file to hash", "gpu"),
    ("file to hash", "cpu"),
    ("file to hash, query variants", "gpu"),
    ("file to hash, query variants", "cpu"),
    ("device luma to hash", "gpu"),
}


def test_the_gpu_benchmark_runs_on_the_emulated_kernels(tmp_path: Path) -> None:
    report = tmp_path / "gpu-bench.json"
    env = {**os.environ, "HASHMATCH_BENCH_GPU_EMULATE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "benchmarks/test_bench_gpu.py",
         "--benchmark-enable", f"--benchmark-json={report}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    rows = summarize_gpu.rows_of(json.loads(report.read_text()))
    assert {(r["kind"], r["path"]) for r in rows} == MEASUREMENTS
    assert all(r["emulated"] for r in rows)
    assert summarize_gpu.main([str(report), "--markdown", str(tmp_path / "gpu.md")]) == 0
    assert "Emulated kernels at tiny sizes" in (tmp_path / "gpu.md").read_text()


def _measured(**overrides: float) -> list[dict[str, Any]]:
    """A GPU report that meets every bar, with the named figures replaced."""
    figures = {"single": 0.05, "batch": 10.0, "file_gpu": 9000.0, "file_cpu": 3000.0, "luma": 200_000.0} | overrides
    return [
        {"kind": "single query", "path": "gpu", "rows": 10_000_000, "p50_ms": figures["single"]},
        {"kind": "batch", "path": "gpu", "rows": 10_000_000, "batch_ms": figures["batch"]},
        {"kind": "file to hash", "path": "gpu", "throughput": figures["file_gpu"]},
        {"kind": "file to hash", "path": "cpu", "throughput": figures["file_cpu"]},
        {"kind": "device luma to hash", "path": "gpu", "throughput": figures["luma"]},
    ]


def test_each_bar_can_fail() -> None:
    assert summarize_gpu.failures(_measured()) == []
    assert summarize_gpu.failures([]) == ["no GPU figures in the report"]
    for figure, value, message in [
        ("single", 0.3, "single query over 10M"),
        ("batch", 41.0, "1,000 queries over 10M"),
        ("file_gpu", 4000.0, "file -> hash images/s"),
        ("file_cpu", 9500.0, "is not above the CPU"),
        ("luma", 90_000.0, "device luma -> hash"),
    ]:
        missed = summarize_gpu.failures(_measured(**{figure: value}))
        assert len(missed) == 1 and message in missed[0], (figure, missed)
    incomplete = [r for r in _measured() if r["kind"] != "batch"]
    assert summarize_gpu.failures(incomplete) == ["1,000 queries over 10M ms: not measured"]
