"""The README's audit-cost table from benchmarks/test_bench_audit.py's JSON, with the issue's bar.

    python -m benchmarks.summarize_audit bench-out/audit.json [--markdown OUT.md]

Bar (issue 13): gRPC hash-only lookups with the audit log on at least 90% of the lookups/s with it off, the
median of the per-round ratios (checked from 200 calls per round on; smaller runs are smoke tests). Exit 1 if
missed. The `referring` variant (1 lookup in 10 matches a `refer` list and writes a referral record) is
reported beside it, without a bar: it measures what referrals add at a match rate far above real traffic's.
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

BAR = 0.9
MIN_REQUESTS = 200


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [b["extra_info"] for b in report["benchmarks"] if b.get("extra_info", {}).get("kind") == "audit"]


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [f"Machine: {machine}", ""]
    for row in rows:
        lines += [
            f"{row['requests']} MatchHashes calls of {row['batch']} hashes per round, {row['concurrency']} "
            f"concurrent, {row['rows']:,}-entry list"
            + ("; a `refer` list that 1 query in 10 matches (a referral record each)" if row.get("referring") else "")
            + "; rounds interleaved (off/on, then on/off).",
            "",
            "| round | audit off (lookups/s) | audit on (lookups/s) | on / off |",
            "|---:|---:|---:|---:|",
        ]
        for n, (off, on, ratio) in enumerate(zip(row["off"], row["on"], row["ratios"], strict=True), start=1):
            lines.append(f"| {n} | {off:,.0f} | {on:,.0f} | {ratio:.0%} |")
        lines += [
            "",
            f"Medians: off {statistics.median(row['off']):,.0f}/s, on {statistics.median(row['on']):,.0f}/s;"
            f" median ratio {row['median_ratio']:.0%}"
            + (" (the cost of referrals: no bar)." if row.get("referring") else f" (bar {BAR:.0%})."),
        ]
    return "\n".join(lines) + "\n"


def failures(rows: list[dict[str, Any]]) -> list[str]:
    """The bar is the issue's: hash-only lookups (the variant whose queries match nothing). The `referring`
    variant, where 1 lookup in 10 writes a referral record, measures what referrals cost on top; it has no bar."""
    barred = [row for row in rows if not row.get("referring")]
    if not barred:
        return ["no audit rows without referrals in the report"]
    return [
        f"audit on at {row['median_ratio']:.0%} of off (bar {BAR:.0%})"
        for row in barred
        if row["requests"] >= MIN_REQUESTS and row["median_ratio"] < BAR
    ]


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    return markdown(rows, machine_line(report, "server and load client on the same cores")), failures(rows)


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
