"""The README's gRPC table from a pytest-benchmark JSON file, with the issue's bars.

    python -m benchmarks.summarize_grpc bench-out/grpc.json [MORE.json ...] [--markdown OUT.md]

Bars: best gRPC media throughput >= 80% of the best in-process one; hash-only lookups >= 10,000/s (with a
1M-entry list); media p99 <= 50 ms when offered 80% of the peak gRPC media throughput. Exit 1 if missed.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [b["extra_info"] for b in report["benchmarks"] if "workload" in b.get("extra_info", {})]
    return sorted(rows, key=lambda r: (r["workload"], r["path"], r["concurrency"]))


def best(rows: list[dict[str, Any]], workload: str, path: str) -> float:
    return max((r["throughput"] for r in rows if r["workload"] == workload and r["path"] == path), default=0.0)


def failures(rows: list[dict[str, Any]]) -> list[str]:
    missed = []
    media_grpc = max(best(rows, "media", "grpc"), best(rows, "media", "grpc stream"))
    media_local = best(rows, "media", "in-process")
    if media_grpc < 0.8 * media_local:
        missed.append(f"gRPC media {media_grpc:.0f}/s is {media_grpc / media_local:.0%} of in-process")
    lookups = best(rows, "hashes", "grpc")
    rows_at = max((r["rows"] for r in rows), default=0)
    if rows_at >= 1_000_000 and lookups < 10_000:
        missed.append(f"hash-only lookups {lookups:.0f}/s")
    for r in rows:
        if r["path"].startswith("grpc at 80%") and r["p99_ms"] > 50:
            missed.append(f"media p99 {r['p99_ms']:.1f} ms at 80% of peak")
    return missed


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: a stream has no per-item latency here


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| workload | path | concurrency | per second | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        concurrency = f"open loop, {r['offered_rate']:.0f}/s offered" if "offered_rate" in r else r["concurrency"]
        unit = "lookups" if r["workload"] == "hashes" else "images"
        lines.append(
            f"| {r['workload']} ({r['rows']:,} entries) | {r['path']} | {concurrency} | "
            f"{r['throughput']:,.0f} {unit} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} |"
        )
    media_grpc = max(best(rows, "media", "grpc"), best(rows, "media", "grpc stream"))
    media_local = best(rows, "media", "in-process")
    if media_local:
        lines += ["", f"Best gRPC media throughput: {media_grpc / media_local:.0%} of in-process."]
    return "\n".join(lines) + "\n"


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    text = markdown(rows, machine_line(report, "server and load-generator processes on the same machine"))
    return text, failures(rows)


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
