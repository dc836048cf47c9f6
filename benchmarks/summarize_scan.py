"""The README's scan table from benchmarks/test_bench_scan.py's JSON, with the issue's bars.

    python -m benchmarks.summarize_scan bench-out/scan.json [--markdown OUT.md]

Single core, bare pool and scan come from interleaved rounds: their files/s are medians, and the scaling
ratio is the median of the per-round ratios (each round's scan against the same round's single core). Bars
(checked from 200 files on; smaller runs are smoke tests): the scan's files/s at least 90% of single-core
hashing files/s x cores, and at least 6x the naive loop's. Exit 1 if missed.
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

MIN_FILES = 200
SCALING_BAR = 0.9
NAIVE_BAR = 6.0
SCAN, SINGLE, BARE, NAIVE = "hashmatch scan", "single core", "bare process pool", "naive loop"
RAY_ROW = "hashmatch scan --ray (local)"


def rows_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """path -> {files, cores, throughput, rounds (files/s of each round, where there were rounds)}."""
    rows: dict[str, dict[str, Any]] = {}
    for bench in report["benchmarks"]:
        info = bench.get("extra_info", {})
        if info.get("kind") == "scan":
            rows[info["path"]] = info | {"rounds": [info["throughput"]]}
        elif info.get("kind") == "scan-rounds":
            for path, rates in info["rates"].items():
                rows[path] = {
                    "files": info["files"][path],
                    "cores": info["cores"],
                    "throughput": statistics.median(rates),
                    "rounds": rates,
                }
    return rows


def markdown(rows: dict[str, dict[str, Any]], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| path | files | cores | files/s (median) | rounds |",
        "|---|---:|---:|---:|---|",
    ]
    for path, row in rows.items():
        rounds = ", ".join(f"{rate:,.1f}" for rate in row["rounds"])
        lines.append(f"| {path} | {row['files']:,} | {row['cores']} | {row['throughput']:,.1f} | {rounds} |")
    ratios = _ratios(rows)
    if ratios:
        scaling, per_round, naive = ratios
        lines += [
            "",
            f"Scan / (single core x cores), per round: {', '.join(f'{r:.0%}' for r in per_round)}; median "
            f"{scaling:.0%} (bar {SCALING_BAR:.0%}). Scan / naive loop: {naive:.1f}x (bar {NAIVE_BAR:.0f}x).",
        ]
    scan = rows.get(SCAN)
    for path, words in ((BARE, "the bare process pool"), (RAY_ROW, "the scan on Ray")):
        if scan is not None and path in rows:
            lines.append(f"Scan / {words}: {_paired(rows[SCAN], rows[path]):.0%}.")
    return "\n".join(lines) + "\n"


def _paired(scan: dict[str, Any], other: dict[str, Any]) -> float:
    """Round by round where both have rounds; otherwise the medians."""
    if len(scan["rounds"]) == len(other["rounds"]) > 1:
        return float(statistics.median(a / b for a, b in zip(scan["rounds"], other["rounds"], strict=True)))
    return float(scan["throughput"] / other["throughput"])


def _ratios(rows: dict[str, dict[str, Any]]) -> tuple[float, list[float], float] | None:
    if not {SCAN, SINGLE, NAIVE} <= set(rows):
        return None
    scan, single = rows[SCAN], rows[SINGLE]
    cores = scan["cores"]
    if len(scan["rounds"]) == len(single["rounds"]):
        per_round = [s / (one * cores) for s, one in zip(scan["rounds"], single["rounds"], strict=True)]
    else:  # not from the same rounds: the medians
        per_round = [scan["throughput"] / (single["throughput"] * cores)]
    return statistics.median(per_round), per_round, scan["throughput"] / rows[NAIVE]["throughput"]


def failures(rows: dict[str, dict[str, Any]]) -> list[str]:
    ratios = _ratios(rows)
    if ratios is None:
        return ["expected the scan, single-core and naive-loop rows"]
    if rows[SCAN]["files"] < MIN_FILES:
        return []  # a smoke run: too few files for start-up not to dominate
    scaling, _, naive = ratios
    missed = []
    if scaling < SCALING_BAR:
        missed.append(f"scan at {scaling:.0%} of single core x cores (bar {SCALING_BAR:.0%})")
    if naive < NAIVE_BAR:
        missed.append(f"scan at {naive:.1f}x the naive loop (bar {NAIVE_BAR:.0f}x)")
    return missed


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    return markdown(rows, machine_line(report, "the same files and cores")), failures(rows)


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
