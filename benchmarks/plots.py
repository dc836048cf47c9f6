"""PNG figures for the benchmark report (matplotlib, no display). Every figure states machine, versions, date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.robustness import PDQ_THRESHOLD, PHASH_THRESHOLD


def _finish(figure: Any, path: Path, stamp: str) -> Path:
    figure.text(0.01, 0.005, stamp, fontsize=7, color="#555555")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def index_throughput(rows: list[dict[str, Any]], path: Path, stamp: str) -> Path:
    """Batched queries/s against list size, per backend and data kind (log-log)."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for backend, data in sorted({(r["backend"], r["data"]) for r in rows}):
        points = sorted((r["rows"], r["queries_per_s"]) for r in rows if r["backend"] == backend and r["data"] == data)
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{backend} ({data})")
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="hashes in the list",
        ylabel="queries/s (batched, radius 31)",
        title="Search throughput against list size",
    )
    axis.legend(fontsize=8)
    return _finish(figure, path, stamp)


def latency_percentiles(rows: list[dict[str, Any]], path: Path, stamp: str) -> Path:
    """Single-query p50 and p99 per list size, per backend (random data)."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for backend in sorted({r["backend"] for r in rows}):
        points = sorted(
            (r["rows"], r["single_p50_ms"], r["single_p99_ms"])
            for r in rows
            if r["backend"] == backend and r["data"] == "random"
        )
        sizes = [p[0] for p in points]
        line = axis.plot(sizes, [p[1] for p in points], marker="o", label=f"{backend} p50")[0]
        axis.plot(
            sizes, [p[2] for p in points], marker="x", linestyle="--", color=line.get_color(), label=f"{backend} p99"
        )
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="hashes in the list",
        ylabel="single-query latency, ms",
        title="Search latency percentiles (random lists)",
    )
    axis.legend(fontsize=8)
    return _finish(figure, path, stamp)


def transform_recall(robustness: dict[str, Any], path: Path, stamp: str) -> Path:
    transforms = robustness["transforms"]
    recall = robustness["recall"]
    figure, axis = plt.subplots(figsize=(12, 5))
    width = 0.2
    series = [
        ("pdq", PDQ_THRESHOLD, "PDQ alone"),
        ("pdq_dihedral", PDQ_THRESHOLD, "PDQ + DCT dihedral (before)"),
        ("pdq_variants", PDQ_THRESHOLD, "PDQ + query variants (now)"),
        ("phash", PHASH_THRESHOLD, "pHash (64-bit)"),
    ]
    series = [one for one in series if one[0] in recall]
    for offset, (method, threshold, label) in enumerate(series):
        values = [recall[method][t][threshold] for t in transforms]
        axis.bar(
            [i + (offset - 1.5) * width for i in range(len(transforms))],
            values,
            width,
            label=f"{label} at {threshold}",
        )
    axis.set_xticks(range(len(transforms)), transforms, rotation=70, fontsize=7)
    axis.set(ylabel="share still matched", ylim=(0, 1.05), title="Recall per transform")
    axis.legend(fontsize=8)
    return _finish(figure, path, stamp)


def roc(robustness: dict[str, Any], path: Path, stamp: str) -> Path:
    """Recall over all (photo, transform) pairs against the false-match rate between distinct images, as the
    threshold sweeps each hash's whole range (PDQ 0-256 bits, pHash 0-64)."""
    figure, axis = plt.subplots(figsize=(6, 5))
    methods = (
        ("pdq", "PDQ alone", 256),
        ("pdq_dihedral", "PDQ + DCT dihedral (before)", 256),
        ("pdq_variants", "PDQ + query variants (now)", 256),
        ("phash", "pHash (64-bit)", 64),
    )
    for method, label, bits in methods:
        if method not in robustness["distances"]:
            continue
        matched = np.sort(np.array([d for values in robustness["distances"][method].values() for d in values]))
        pairs = np.cumsum(robustness["distinct_histogram"][method])
        thresholds = np.arange(bits + 1)
        recall = np.searchsorted(matched, thresholds, side="right") / max(1, len(matched))
        false_rate = pairs[thresholds] / max(1, int(pairs[-1]))
        axis.plot(false_rate, recall, label=label)
    axis.set(
        xlabel="false-match rate between distinct images",
        ylabel="recall over photos x transforms",
        title="ROC, thresholds over each hash's whole range",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    axis.legend(fontsize=8)
    return _finish(figure, path, stamp)
