"""The README's "verdicts with matches" table from a pytest-benchmark JSON file, with the issue's bar.

    python -m benchmarks.summarize_verdicts bench-out/verdicts.json [--markdown OUT.md]

Bar: on each path (in-process, gRPC MatchHashes), the throughput when every query matches is at least 50% of
the throughput when none does. Exit 1 if missed.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

BAR = 0.5


def rows_of(report: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """path -> kind -> extra_info."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in report["benchmarks"]:
        info = bench.get("extra_info", {})
        if "kind" in info:
            rows.setdefault(info["path"], {})[info["kind"]] = info
    return rows


def ratios(rows: dict[str, dict[str, dict[str, Any]]]) -> dict[str, float]:
    return {
        path: kinds["all-matching"]["throughput"] / kinds["none-matching"]["throughput"]
        for path, kinds in rows.items()
        if {"all-matching", "none-matching"} <= set(kinds)
    }


def markdown(rows: dict[str, dict[str, dict[str, Any]]], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| path | list entries | queries | none match: queries/s | all match: queries/s | all / none | bar >= 50% |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for path, ratio in sorted(ratios(rows).items()):
        none, every = rows[path]["none-matching"], rows[path]["all-matching"]
        lines.append(
            f"| {path} | {none['rows']:,} | {none['queries']:,} | {none['throughput']:,.0f} | "
            f"{every['throughput']:,.0f} | {ratio:.0%} | {'met' if ratio >= BAR else 'missed'} |"
        )
    return "\n".join(lines) + "\n"


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    found = ratios(rows)
    missed = [f"{path}: all-matching at {ratio:.0%} of none-matching" for path, ratio in found.items() if ratio < BAR]
    if len(found) < 2:
        missed.append(f"expected in-process and gRPC rows, found {sorted(found) or 'none'}")
    return markdown(rows, machine_line(report, "server and client processes on the same machine; medians")), missed


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
