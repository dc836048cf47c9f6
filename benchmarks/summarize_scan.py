"""The README's scan table from benchmarks/test_bench_scan.py's JSON, with the issue's bars.

    python -m benchmarks.summarize_scan bench-out/scan.json [--markdown OUT.md]

Bars (checked from 200 files on; smaller runs are smoke tests): the scan's files/s at least 90% of
single-core hashing files/s x cores, and at least 6x the naive loop's. Exit 1 if missed.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

MIN_FILES = 200
SCALING_BAR = 0.9
NAIVE_BAR = 6.0
RAY_ROW = "hashmatch scan --ray (local)"


def rows_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["extra_info"]["path"]: b["extra_info"] for b in report["benchmarks"] if "kind" in b.get("extra_info", {})}


def markdown(rows: dict[str, dict[str, Any]], machine: str) -> str:
    lines = [f"Machine: {machine}", "", "| path | files | cores | seconds | files/s |", "|---|---:|---:|---:|---:|"]
    for path, row in rows.items():
        lines.append(
            f"| {path} | {row['files']:,} | {row['cores']} | {row['seconds']:.1f} | {row['throughput']:,.1f} |"
        )
    ratios = _ratios(rows)
    if ratios:
        scaling, naive = ratios
        lines += [
            "",
            f"Scan / (single core x cores): {scaling:.0%} (bar {SCALING_BAR:.0%}); scan / naive loop: {naive:.1f}x "
            f"(bar {NAIVE_BAR:.0f}x).",
        ]
    scan = rows.get("hashmatch scan")
    for path, words in (("bare process pool", "the bare process pool"), (RAY_ROW, "the scan on Ray")):
        if scan is not None and path in rows:
            lines.append(f"Scan / {words}: {scan['throughput'] / rows[path]['throughput']:.0%}.")
    return "\n".join(lines) + "\n"


def _ratios(rows: dict[str, dict[str, Any]]) -> tuple[float, float] | None:
    if not {"hashmatch scan", "single core", "naive loop"} <= set(rows):
        return None
    scan = rows["hashmatch scan"]
    scaling = scan["throughput"] / (rows["single core"]["throughput"] * scan["cores"])
    return scaling, scan["throughput"] / rows["naive loop"]["throughput"]


def failures(rows: dict[str, dict[str, Any]]) -> list[str]:
    ratios = _ratios(rows)
    if ratios is None:
        return ["expected the scan, single-core and naive-loop rows"]
    if rows["hashmatch scan"]["files"] < MIN_FILES:
        return []  # a smoke run: too few files for start-up not to dominate
    scaling, naive = ratios
    missed = []
    if scaling < SCALING_BAR:
        missed.append(f"scan at {scaling:.0%} of single core x cores (bar {SCALING_BAR:.0%})")
    if naive < NAIVE_BAR:
        missed.append(f"scan at {naive:.1f}x the naive loop (bar {NAIVE_BAR:.0f}x)")
    return missed


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    return markdown(rows, machine_line(report, "one run each, the same files and cores")), failures(rows)


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
