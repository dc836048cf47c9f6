"""The README's video table from benchmarks/test_bench_video.py's JSON.

    python -m benchmarks.summarize_video bench-out/video.json [--markdown OUT.md]

Per video and mode: hashed frames/s, ms per hashed frame, decoded frames/s, seconds of video hashed per second
(medians of 3 runs), and the every-frame conformance. Totals per mode over all videos. No bar: the upstream
figure (~4.8 ms per native frame on an M1 Pro, every frame) is from another machine, shown for context.
Exit 1 only when no video row is found.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.report_files import machine_line, summary_main

UPSTREAM_MS_PER_FRAME = 4.8


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [b["extra_info"] for b in report["benchmarks"] if b.get("extra_info", {}).get("kind") == "video"]


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| video | size | mode | frames hashed | hashed frames/s | ms per hashed frame | decoded frames/s "
        "| video s per s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r["mode"], r["video"])):
        lines.append(
            f"| {row['video']} | {row['width']}x{row['height']} | {row['mode']} | {row['frames_hashed']} "
            f"| {row['frames_hashed'] / row['seconds']:,.0f} | {1e3 * row['seconds'] / row['frames_hashed']:.2f} "
            f"| {row['frames_decoded'] / row['seconds']:,.0f} | {row['video_seconds'] / row['seconds']:.1f} |"
        )
    lines += ["", "| mode | videos | frames hashed | hashed frames/s | video s per s |", "|---|---:|---:|---:|---:|"]
    for mode in sorted({r["mode"] for r in rows}):
        chosen = [r for r in rows if r["mode"] == mode]
        seconds = sum(r["seconds"] for r in chosen)
        frames = sum(r["frames_hashed"] for r in chosen)
        video = sum(r["video_seconds"] for r in chosen)
        lines.append(f"| {mode} | {len(chosen)} | {frames:,} | {frames / seconds:,.0f} | {video / seconds:.1f} |")
    checked = [r["conformance"] for r in rows if "conformance" in r]
    if checked:
        frames = sum(c["frames"] for c in checked)
        compared = sum(c["compared"] for c in checked)
        identical = sum(c["identical"] for c in checked)
        worst = max(c["max_distance"] for c in checked)
        lines += [
            "",
            f"Conformance (every frame, {len(checked)} videos): {frames:,} frames, the same frame numbers; "
            f"{compared:,} with both qualities >= 50, all within distance {worst} (rule: < 31); "
            f"{identical:,} of {frames:,} bit-identical ({identical / frames:.0%}).",
            f"Upstream figure for context: ~{UPSTREAM_MS_PER_FRAME} ms per native frame, every frame, on an M1 Pro.",
        ]
    return "\n".join(lines) + "\n"


def summarize(report: dict[str, Any]) -> tuple[str, list[str]]:
    rows = rows_of(report)
    missed = [] if rows else ["no video rows in the report"]
    return markdown(rows, machine_line(report, "FFmpeg on its own threads")), missed


def main(argv: list[str] | None = None) -> int:
    return summary_main(argv, __doc__, summarize)


if __name__ == "__main__":
    sys.exit(main())
