"""The GPU table (benchmarks/test_bench_gpu.py, run by benchmarks/device_check.sh), with the issue's bars.

    python -m benchmarks.summarize_gpu OUT/gpu-bench.json [--markdown OUT.md]

Bars on one H200: single query over 10M <= 0.2 ms (p50); 1,000 queries over 10M <= 40 ms; file -> hash
>= 5,000 images/s and above the CPU path on the same host; device-resident 1024 x 768 luma -> hash
>= 100,000 images/s. An emulated run (CI's smoke test) reports its figures and checks no bar. Exit 1 if a bar
is missed.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [b["extra_info"] for b in report["benchmarks"] if "kind" in b.get("extra_info", {})]


def _find(table: list[dict[str, Any]], kind: str, path: str, **match: Any) -> dict[str, Any] | None:
    for row in table:
        if row["kind"] == kind and row["path"] == path and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def failures(rows: list[dict[str, Any]]) -> list[str]:
    if not rows or any(r.get("emulated") for r in rows):
        return [] if rows else ["no GPU figures in the report"]
    missed = []
    checks = [
        (_find(rows, "single query", "gpu", rows=10_000_000), "p50_ms", 0.2, "single query over 10M p50 ms", False),
        (_find(rows, "batch", "gpu", rows=10_000_000), "batch_ms", 40.0, "1,000 queries over 10M ms", False),
        (_find(rows, "file to hash", "gpu"), "throughput", 5000.0, "file -> hash images/s", True),
        (_find(rows, "device luma to hash", "gpu"), "throughput", 100_000.0, "device luma -> hash images/s", True),
    ]
    for row, field, bar, what, at_least in checks:
        if row is None:
            missed.append(f"{what}: not measured")
        elif (row[field] < bar) if at_least else (row[field] > bar):
            missed.append(f"{what}: {row[field]:,.3f} against {bar:,}")
    gpu, cpu = _find(rows, "file to hash", "gpu"), _find(rows, "file to hash", "cpu")
    if gpu and cpu and gpu["throughput"] <= cpu["throughput"]:
        missed.append(
            f"file -> hash on the GPU ({gpu['throughput']:,.0f}/s) is not above the CPU ({cpu['throughput']:,.0f}/s)"
        )
    return missed


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| measurement | path | size | p50 ms | p99 ms | batch ms | per second |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r['rows']:,} codes" if "rows" in r else f"{r.get('files', r.get('images', 0)):,} images"

        def cell(name: str, r: dict[str, Any] = r) -> str:
            return f"{r[name]:,.3f}" if name in r else "-"

        lines.append(
            f"| {r['kind']} | {r['path']} | {size} | {cell('p50_ms')} | {cell('p99_ms')} | {cell('batch_ms')} "
            f"| {cell('throughput')} |"
        )
    if rows and rows[0].get("emulated"):
        lines += ["", "Emulated kernels at tiny sizes: a check that the code runs, not a measurement."]
    elif rows:
        lines += ["", f"Device: {rows[0].get('device', '?')}"]
    return "\n".join(lines) + "\n"


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    return markdown(rows, machine_line(report, "GPU and host")), failures(rows)


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
