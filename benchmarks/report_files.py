"""What every summary script does with its pytest-benchmark JSON: read (and merge), describe the machine,
and print or write the Markdown."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A summary: the merged report -> (Markdown, the bars it missed).
Summary = Callable[[dict[str, Any]], tuple[str, list[str]]]


def load_reports(paths: list[Path]) -> dict[str, Any]:
    """One report; several files are merged into the first one's machine info."""
    loaded: list[dict[str, Any]] = [json.loads(path.read_text()) for path in paths]
    merged: dict[str, Any] = loaded[0] | {"benchmarks": [b for report in loaded for b in report["benchmarks"]]}
    return merged


def machine_line(report: dict[str, Any], how: str) -> str:
    info = report.get("machine_info", {})
    cpu = info.get("cpu", {})
    name = cpu.get("brand_raw", info.get("processor", "?"))
    return f"{name}, {cpu.get('count', '?')} cores, {how}; Python {info.get('python_version', '?')}; " + str(
        report.get("datetime", "")
    )


def emit(text: str, markdown: Path | None, missed: list[str]) -> int:
    """Print the Markdown (and write it); exit status 1 when a bar is missed."""
    if missed:
        text += "\nBars missed: " + "; ".join(missed) + "\n"
    sys.stdout.write(text)
    if markdown is not None:
        markdown.write_text(text)
    return 1 if missed else 0


def summary_main(argv: list[str] | None, description: str | None, summarize: Summary) -> int:
    """The command line every summary script has: REPORT.json... [--markdown OUT.md]; exit 1 on a missed bar."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("reports", type=Path, nargs="+", help="pytest-benchmark JSON files, merged")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    text, missed = summarize(load_reports(args.reports))
    return emit(text, args.markdown, missed)
