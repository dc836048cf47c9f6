"""`hashmatch bench`: the benchmark suites of `benchmarks/` plus the robustness study, into one report.

Runs from a checkout (the suites live in `benchmarks/`, beside the packages). Each pytest suite runs in its
own process with timing on, writing pytest-benchmark JSON; the summaries and bars are the same scripts the
README uses. Output in --out: report.json (machine, versions, date, every suite's figures), report.md, and
PNG plots. --quick uses small sizes (under 3 minutes on a 2-core machine).

The gpu suite runs where a GPU passes hashmatch's self-test (--device auto, the default) and says in the
report that it skipped and why elsewhere; --device gpu makes a missing GPU an error, --device cpu skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, add_device_argument, fail, fail_with
from hashing.device import Device, DeviceChoice, GpuUnavailableError, select_device
from hashing.errors import ReasonCode

ROOT = Path(__file__).resolve().parents[1]
RANDOM_LIST = 1_000_000  # random PDQ hashes the robustness study's queries are also searched against
QUICK_RANDOM_LIST = 20_000
SUITES = (
    "hashing",
    "variants",
    "index",
    "import",
    "grpc",
    "audit",
    "verdicts",
    "scan",
    "video",
    "gpu",
    "robustness",
)
QUICK_ENV = {
    "HASHMATCH_BENCH_SIZES": "1e5",
    "HASHMATCH_BENCH_IMPORT_LINES": "1e5",
    "HASHMATCH_BENCH_GRPC_ROWS": "1e4",
    "HASHMATCH_BENCH_GRPC_REQUESTS": "40",
    "HASHMATCH_BENCH_VERDICT_ROWS": "1e5",
    "HASHMATCH_BENCH_VERDICT_QUERIES": "5e3",
    "HASHMATCH_BENCH_SCAN_FILES": "60",
    "HASHMATCH_BENCH_GPU_ROWS": "1e6",
    "HASHMATCH_BENCH_GPU_BIG_ROWS": "1e7",
    "HASHMATCH_BENCH_GPU_FILES": "500",
}
FULL_ENV = {
    "HASHMATCH_BENCH_SIZES": "1e5,1e6,1e7",
    "HASHMATCH_BENCH_IMPORT_LINES": "1e7",
    "HASHMATCH_BENCH_GRPC_ROWS": "1e6",
    "HASHMATCH_BENCH_GRPC_REQUESTS": "400",
    "HASHMATCH_BENCH_VERDICT_ROWS": "1e6",
    "HASHMATCH_BENCH_VERDICT_QUERIES": "2e4",
    "HASHMATCH_BENCH_SCAN_FILES": "2000",
    "HASHMATCH_BENCH_AUDIT_REQUESTS": "400",
    "HASHMATCH_BENCH_AUDIT_ROUNDS": "5",
}
PACKAGES = (
    "hashmatch",
    "numpy",
    "numba",
    "pillow",
    "faiss-cpu",
    "pdqhash",
    "grpcio",
    "imagehash",
    "cupy-cuda12x",
    "cupy-cuda13x",
)
PYTEST_FILES = {
    "hashing": ["test_bench_hashing.py"],
    "variants": ["test_bench_variants.py"],
    "index": ["test_bench_index.py"],
    "import": ["test_bench_import.py"],
    "grpc": ["test_bench_grpc.py"],
    "verdicts": ["test_bench_verdicts.py"],
    "scan": ["test_bench_scan.py"],
    "audit": ["test_bench_audit.py"],
    "video": ["test_bench_video.py"],
    "gpu": ["test_bench_gpu.py"],
}
SUMMARIES = {
    "hashing": "summarize",
    "variants": "summarize_variants",
    "index": "summarize_index",
    "import": "summarize_index",
    "grpc": "summarize_grpc",
    "verdicts": "summarize_verdicts",
    "scan": "summarize_scan",
    "audit": "summarize_audit",
    "video": "summarize_video",
    "gpu": "summarize_gpu",
}


def register(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="run the benchmark suites and the robustness study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--quick", action="store_true", help="small sizes: under 3 minutes on 2 cores")
    bench.add_argument("--out", type=Path, default=Path("bench-out"), help="report folder (default: bench-out)")
    bench.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated subset of {','.join(SUITES)}")
    bench.add_argument("--robustness-photos", type=int, help="use only the first N sample photos")
    add_device_argument(bench)
    bench.set_defaults(run=run)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "absent"
    return found


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"


def run(args: argparse.Namespace) -> int:
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = set(suites) - set(SUITES)
    if unknown:
        return fail(ReasonCode.USAGE, f"unknown suites: {', '.join(sorted(unknown))} (choose from {', '.join(SUITES)})")
    if not (ROOT / "benchmarks").is_dir():
        return fail(ReasonCode.USAGE, "hashmatch bench runs from a checkout: benchmarks/ is not beside the packages")
    try:
        device = _gpu_suite_device(args.device, "gpu" in suites)
    except GpuUnavailableError as error:
        return fail_with(error)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    stamp = (
        f"{machine()}; hashmatch {versions()['hashmatch']}, numpy {versions()['numpy']}, "
        f"Python {platform.python_version()}; {date}"
    )
    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "date": date,
        "quick": args.quick,
        "device": {"device": device.device.value, "reason": device.reason},
        "suites": {},
    }
    sections = [f"# hashmatch benchmark report\n\n{stamp}\n"]
    env = os.environ | (QUICK_ENV if args.quick else FULL_ENV)
    ok = True
    for suite in suites:
        print(f"== {suite}", file=sys.stderr, flush=True)
        if suite == "robustness":
            sections.append(_robustness(args, out, stamp, report))
            continue
        if suite == "gpu" and not device.on_gpu:
            report["suites"][suite] = {"skipped": device.reason, "passed": True}
            sections.append(f"## gpu\n\nSkipped: {device.reason}.\n")
            continue
        result, section = _pytest_suite(suite, out, env, stamp)
        report["suites"][suite] = result
        ok &= result["passed"]
        sections.append(section)
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text("\n".join(sections) + f"\nTotal time: {report['seconds']} s\n")
    print(f"report: {out / 'report.md'} ({report['seconds']} s)", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def _gpu_suite_device(requested: str | None, wanted: bool) -> DeviceChoice:
    """Where the gpu suite runs: only the self-test's word counts (the suite's own process asks again)."""
    if not wanted:
        return DeviceChoice(Device.CPU, "the gpu suite was not asked for")
    if requested == Device.CPU:
        return DeviceChoice(Device.CPU, "--device cpu")
    return select_device(requested or Device.AUTO)


def _pytest_suite(suite: str, out: Path, env: dict[str, str], stamp: str) -> tuple[dict[str, Any], str]:
    raw = out / f"{suite}.json"
    files = [str(ROOT / "benchmarks" / name) for name in PYTEST_FILES[suite]]
    command = [
        sys.executable,
        "-m",
        "pytest",
        *files,
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-enable",
        f"--benchmark-json={raw}",
    ]
    tests = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    markdown = out / f"{suite}.md"
    summary = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{SUMMARIES[suite]}", str(raw), "--markdown", str(markdown)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = {
        "json": raw.name,
        "markdown": markdown.name,
        "tests_passed": tests.returncode == 0,
        "bars_met": summary.returncode == 0,
        "passed": tests.returncode == 0,
    }
    text = markdown.read_text() if markdown.exists() else f"(no summary: {summary.stderr[-500:]})"
    plots = _suite_plots(suite, raw, out, stamp) if raw.exists() else []
    result["plots"] = plots
    figures = "".join(f"\n![{p}]({p})\n" for p in plots)
    failed = "" if tests.returncode == 0 else f"\n**The suite's tests failed:**\n```\n{tests.stdout[-1500:]}\n```\n"
    return result, f"## {suite}\n\n{text}{figures}{failed}"


def _suite_plots(suite: str, raw: Path, out: Path, stamp: str) -> list[str]:
    if suite != "index":
        return []
    from benchmarks import plots
    from benchmarks.report_files import load_reports
    from benchmarks.summarize_index import index_rows

    rows = index_rows(load_reports([raw]))
    if not rows:
        return []
    return [
        plots.index_throughput(rows, out / "index-throughput.png", stamp).name,
        plots.latency_percentiles(rows, out / "index-latency.png", stamp).name,
    ]


def _robustness(args: argparse.Namespace, out: Path, stamp: str, report: dict[str, Any]) -> str:
    from benchmarks import plots
    from benchmarks.distractors import distractors
    from benchmarks.robustness import LISTED_EDITS, TRANSFORMS, evaluate, markdown, random_list_matches, sample_photos

    limit = args.robustness_photos or (10 if args.quick else None)
    photos = sample_photos(limit)
    result = evaluate(photos, TRANSFORMS, distractors(photos, quick=args.quick), LISTED_EDITS)
    random_list_matches(result, QUICK_RANDOM_LIST if args.quick else RANDOM_LIST)
    data = result.to_json()
    (out / "robustness.json").write_text(json.dumps(data))
    figures = [
        plots.transform_recall(data, out / "robustness-recall.png", stamp).name,
        plots.roc(data, out / "robustness-roc.png", stamp).name,
    ]
    report["robustness"] = {
        "json": "robustness.json",
        "plots": figures,
        "images": len(result.images),
        "distinct_pairs": data["distinct_pairs"],
        "false_matches": data["false_matches"],
        "random_list": data["random_list"],
    }
    return "## robustness\n\n" + markdown(result) + "".join(f"\n![{f}]({f})\n" for f in figures)
