"""The README's index and import tables from a pytest-benchmark JSON file, with the issue's bars.

    python -m benchmarks.summarize_index bench-out/index.json [MORE.json ...] [--markdown OUT.md]

Exit status 1 when hashmatch misses a bar at 1e7 rows (>= 2,000 queries/s batched, single-query p50 <= 2 ms,
<= 120 bytes per hash) or the 1e7-line import takes over 60 s.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

OURS = "hashmatch-mih"
BAR_ROWS = 10_000_000
BARS = {"queries_per_s": 2000.0, "single_p50_ms": 2.0, "bytes_per_hash": 120.0, "import_s": 60.0}


def index_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for bench in report["benchmarks"]:
        info = bench.get("extra_info", {})
        if "backend" not in info:
            continue
        median = bench["stats"]["median"]
        rows.append(
            {
                "rows": info["rows"],
                "data": info["data"],
                "backend": info["backend"],
                "queries_per_s": info["batch_queries"] / median,
                "batch_queries": info["batch_queries"],
                "single_p50_ms": info["single_p50_ms"],
                "single_p99_ms": info["single_p99_ms"],
                "recall": info["recall"],
                "build_s": info["build_s"],
                "bytes_per_hash": info["index_bytes_per_hash"] or None,
            }
        )
    return sorted(rows, key=lambda r: (r["rows"], r["data"], r["backend"]))


def memory_rows(report: dict[str, Any]) -> dict[str, float]:
    """backend -> peak resident bytes per hash of codes + index while building (fresh process)."""
    return {
        b["extra_info"]["memory_backend"]: b["extra_info"]["peak_bytes_per_hash"]
        for b in report["benchmarks"]
        if "memory_backend" in b.get("extra_info", {})
    }


def import_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "lines": b["extra_info"]["lines"],
            "import_s": b["stats"]["median"],
            "load_s": b["extra_info"]["load_s"],
            "startup_s": b["extra_info"].get("startup_s"),
        }
        for b in report["benchmarks"]
        if b["group"] == "import"
    ]


def failures(index: list[dict[str, Any]], imports: list[dict[str, Any]], memory: dict[str, float]) -> list[str]:
    missed = []
    for row in index:
        if row["backend"] != OURS or row["rows"] < BAR_ROWS:
            continue
        where = f"{row['rows']:.0e} {row['data']}"
        if row["recall"] < 1.0:
            missed.append(f"{where}: recall {row['recall']:.4%} (answers must be exact)")
        if row["queries_per_s"] < BARS["queries_per_s"]:
            missed.append(f"{where}: {row['queries_per_s']:.0f} queries/s")
        if row["single_p50_ms"] > BARS["single_p50_ms"]:
            missed.append(f"{where}: single p50 {row['single_p50_ms']:.2f} ms")
        if row["bytes_per_hash"] is not None and row["bytes_per_hash"] > BARS["bytes_per_hash"]:
            missed.append(f"{where}: {row['bytes_per_hash']:.0f} B/hash")
    missed += [
        f"import of {r['lines']:.0e} lines: {r['import_s']:.1f} s"
        for r in imports
        if r["lines"] >= BAR_ROWS and r["import_s"] > BARS["import_s"]
    ]
    return missed


def markdown(index: list[dict[str, Any]], imports: list[dict[str, Any]], memory: dict[str, float], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| rows | data | backend | batch queries/s | single p50 ms | single p99 ms | recall | build s | index B/hash |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in index:
        size = "-" if r["bytes_per_hash"] is None else f"{r['bytes_per_hash']:.0f}"
        lines.append(
            f"| {r['rows']:.0e} | {r['data']} | {r['backend']} | {r['queries_per_s']:,.0f} "
            f"({r['batch_queries']} q) | {r['single_p50_ms']:.2f} | {r['single_p99_ms']:.2f} | "
            f"{r['recall']:.0%} | {r['build_s']:.1f} | {size} |"
        )
    if memory:
        title = "peak resident bytes per hash, codes + index, while building (largest random list)"
        lines += ["", f"| backend | {title} |", "|---|---:|"]
        lines += [f"| {name} | {value:.0f} |" for name, value in sorted(memory.items())]
    if imports:
        lines += [
            "",
            "| import: lines | seconds | load for the index, s | start-up (load + index), s |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['lines']:,} | {r['import_s']:.1f} | {r['load_s']:.1f} | "
            f"{'-' if r['startup_s'] is None else format(r['startup_s'], '.1f')} |"
            for r in imports
        ]
    return "\n".join(lines) + "\n"


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    index, imports, memory = index_rows(report), import_rows(report), memory_rows(report)
    text = markdown(index, imports, memory, machine_line(report, "both cores"))
    return text, failures(index, imports, memory)


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
