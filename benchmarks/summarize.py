"""Turn a pytest-benchmark JSON file into the README's ratio table, and check the issue's bars.

    python -m benchmarks.summarize bench-out/hashing.json [MORE.json ...] [--markdown OUT.md]

Ratios are of medians measured side by side in the same run: peer median / hashmatch median.
Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from benchmarks.report_files import machine_line, summary_main

PEER = "pdqhash"
# (group, contender) -> minimum speed-up over the peer in the same group.
BARS: dict[tuple[str, str], float] = {
    ("file->hash 1024x768", "hashmatch_exact"): 6.0,
    ("file->hash 4000x3000", "hashmatch_exact"): 5.0,
    ("file->hash 1024x768", "hashmatch_fast_luma"): 8.0,
    ("array->hash 1024x768", "hashmatch"): 30.0,
}


@dataclass(frozen=True)
class Row:
    group: str
    contender: str
    median_ms: float
    per_second: float
    speedup: float | None
    bar: float | None

    @property
    def passed(self) -> bool:
        return self.bar is None or (self.speedup is not None and self.speedup >= self.bar)


def contender_of(test_name: str) -> str:
    """test_file_to_hash_hashmatch_exact[1024x768] -> hashmatch_exact."""
    base = test_name.split("[")[0]
    for prefix in ("test_file_to_hash_", "test_array_to_hash_"):
        if base.startswith(prefix):
            return base[len(prefix) :]
    return base


def rows_from(report: dict) -> list[Row]:  # type: ignore[type-arg]
    medians: dict[tuple[str, str], float] = {}
    for bench in report["benchmarks"]:
        medians[(bench["group"], contender_of(bench["name"]))] = bench["stats"]["median"]
    rows = []
    for (group, contender), median in sorted(medians.items()):
        peer = medians.get((group, PEER))
        speedup = None if contender == PEER or peer is None else peer / median
        rows.append(Row(group, contender, median * 1e3, 1.0 / median, speedup, BARS.get((group, contender))))
    return rows


def markdown(rows: list[Row], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| measurement | implementation | median ms | images/s | speed-up vs pdqhash | bar |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        speedup = "1.0x (peer)" if row.speedup is None else f"{row.speedup:.1f}x"
        bar = "" if row.bar is None else f">= {row.bar:.0f}x {'met' if row.passed else 'MISSED'}"
        lines.append(
            f"| {row.group} | {row.contender} | {row.median_ms:.2f} | {row.per_second:.0f} | {speedup} | {bar} |"
        )
    return "\n".join(lines) + "\n"


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_from(report)
    missed = [f"{r.group} {r.contender}: {r.speedup or 0:.1f}x" for r in rows if not r.passed]
    return markdown(rows, machine_line(report, "pinned to 1 core")), missed


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
