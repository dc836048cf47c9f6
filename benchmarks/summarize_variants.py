"""The README's query-variant cost table from benchmarks/test_bench_variants.py's JSON.

    python -m benchmarks.summarize_variants bench-out/variants.json [--markdown OUT.md]

Per size and mode: the median ms per upload (decode included), uploads/s and the share of the PDQ-alone rate,
all measured side by side in one run on one core. No bar: the issue asks for the cost to be stated.
Exit 1 only when a mode is missing.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

MODES = ("pdq_only", "dct_dihedral", "pixel_dihedral", "default")
LABELS = {
    "pdq_only": "PDQ alone",
    "dct_dihedral": "+ 8 DCT dihedral (the default before)",
    "pixel_dihedral": "+ 8 pixel-exact dihedral",
    "default": "+ 8 pixel-exact dihedral, content box, 4 crops (the default now)",
}


def medians(report: dict[str, Any]) -> dict[tuple[str, str], tuple[float, int]]:
    found = {}
    for bench in report["benchmarks"]:
        info = bench.get("extra_info", {})
        if info.get("kind") == "variants":
            found[(info["size"], info["mode"])] = (bench["stats"]["median"], info["hashes"])
    return found


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    found = medians(report)
    sizes = sorted({size for size, _ in found}, key=lambda s: (int(s.split("x")[0]), s.split(",")[0], "new" in s))
    missed = [f"{size} {mode}" for size in sizes for mode in MODES if (size, mode) not in found]
    if not found:
        missed = ["no variant rows in the report"]
    lines = [
        f"Machine: {machine_line(report, 'pinned to 1 core')}",
        "",
        "| upload (JPEG q90; bordered: a 5% black border; new sizes: operators built for each) | hashing "
        "| hashes searched | median ms | uploads/s | vs PDQ alone |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for size in sizes:
        base = found.get((size, "pdq_only"))
        for mode in MODES:
            if (size, mode) not in found:
                continue
            median, hashes = found[(size, mode)]
            share = f"{base[0] / median:.0%}" if base else "?"
            lines.append(f"| {size} | {LABELS[mode]} | {hashes} | {median * 1e3:.2f} | {1 / median:,.0f} | {share} |")
    return "\n".join(lines) + "\n", missed


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
