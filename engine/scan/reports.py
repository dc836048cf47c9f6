"""A scan's reports for people: matches.csv for spreadsheets, summary.json for tools and the record, and
report.html, one self-contained page an investigator can open offline and hand on.

Every report holds only paths, hashes, list names and counts: never an image, a thumbnail or a link to a file.
Paths come from seized media and are attacker-controlled, so every value is defused for where it lands
(spreadsheet formulas, HTML, bytes that are not UTF-8, characters that reorder or hide text)."""

from __future__ import annotations

import csv
import html
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from engine.scan.records import ContentType, Decision, ScanRecord
from hashing.query_variants import region_of

MATCHES_CSV = "matches.csv"
SUMMARY_JSON = "summary.json"
REPORT_HTML = "report.html"
RESULTS_JSONL = "results.jsonl"  # named in the report: where the rows the HTML leaves out are

MAX_ERROR_ROWS = 1000  # the HTML's error table; results.jsonl has them all
MAX_CHART_POINTS = 2000  # a week-long scan's samples thinned so the page stays small
UNKNOWN_TYPE = "unknown"  # inputs that could not be read far enough to know their type

CSV_COLUMNS = (
    "path",
    "decision",
    "sha256",
    "md5",
    "pdq",
    "quality",
    "list",
    "list_version",
    "entry_id",
    "external_id",
    "classification",
    "signal_type",
    "distance",
    "variant",
    "region",
    "action",
    "duplicate_of",
)
_MATCH_KEYS = CSV_COLUMNS[6:16]  # the MatchedEntry.to_dict() keys, in column order

# A spreadsheet runs a cell starting with one of these as a formula (`=cmd|' /C calc'!A0`).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Characters that make a path read as something it is not: bidirectional overrides and isolates
# ("photo\u202egpj.exe" displays as "photoexe.jpg") and invisible marks. Shown as \\uXXXX in the HTML.
_DECEPTIVE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)

CSP = "default-src 'none'; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class ScanSummary:
    """What the scan knows about itself that the records do not say: when, where, by what, with which lists."""

    started: str  # ISO 8601 UTC
    ended: str
    seconds: float
    tool_version: str
    host: str
    command: list[str]  # the command line, for the record
    list_versions: dict[str, int]
    interrupted: bool  # the scan stopped before the end (the outputs cover what was done)
    progress: tuple[tuple[float, int], ...]  # (seconds since start, inputs done) samples, for the chart
    hashed: int  # inputs actually decoded and hashed (duplicates are hashed once)


@dataclass
class _Tally:
    """Everything the reports need from one pass over the records: counts, the matches (few) and the first
    errors (there can be millions of records, and a broken disk can make most of them errors)."""

    inputs: int = 0
    bytes: int = 0
    duplicates: int = 0
    errors: int = 0
    by_decision: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    matched_per_list: Counter[str] = field(default_factory=Counter)
    matches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error_rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, record: ScanRecord) -> None:
        self.inputs += 1
        self.bytes += record.size or 0
        self.duplicates += record.duplicate_of is not None
        self.by_decision[str(record.decision)] += 1
        self.by_type[str(record.type) if record.type is not None else UNKNOWN_TYPE] += 1
        for reason in record.reasons:
            self.by_reason[str(reason)] += 1
        if record.error is not None:
            self.by_reason[str(record.error.reason)] += 1
            self.errors += 1
            if len(self.error_rows) < MAX_ERROR_ROWS:
                self.error_rows.append((record.path, str(record.error.reason), record.error.detail))
        # A file matched by two entries of one list is one file matched for that list.
        for name in sorted({str(m.get("list")) for m in record.matches}):
            self.matched_per_list[name] += 1
        self.matches.extend((record.path, m) for m in record.matches)


def write_reports(out: Path, records: Iterable[ScanRecord], summary: ScanSummary) -> dict[str, Any]:
    """Writes out/matches.csv, out/summary.json and out/report.html from the records, in one pass over them
    (matches.csv is written as they come; only counts, the matches and the first errors are kept).
    Returns the summary.json object."""
    out.mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    with (out / MATCHES_CSV).open("w", encoding="utf-8", errors="backslashreplace", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for record in records:
            tally.add(record)
            writer.writerows(csv_rows(record))
    document = summary_object(tally, summary)
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False)
    (out / SUMMARY_JSON).write_text(text + "\n", encoding="utf-8", errors="backslashreplace")
    page = render_html(tally, summary, document)
    (out / REPORT_HTML).write_text(page, encoding="utf-8", errors="backslashreplace")
    return document


# --- text made safe for where it lands ---------------------------------------------------------------------


def printable(text: str) -> str:
    """A file name that is not valid UTF-8 reaches Python with its bad bytes as surrogate escapes, which no
    UTF-8 file can hold: show each such byte as \\xNN (what was on the disk), never crash."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate no file name decodes to (e.g. from JSON "\ud800")
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def csv_cell(value: object) -> str | int | float:
    """A value as a spreadsheet may safely read it: None empty, numbers as numbers, text printable and with
    a leading ' when a spreadsheet would take it for a formula (paths from seized media choose their names)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = printable(str(value))
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_rows(record: ScanRecord) -> list[list[str | int | float]]:
    """One row per match of the record (a record without matches has none)."""
    head = [record.path, str(record.decision), record.sha256, record.md5, record.pdq, record.quality]
    return [
        [csv_cell(v) for v in (*head, *(_match_cell(match, key) for key in _MATCH_KEYS), record.duplicate_of)]
        for match in record.matches
    ]


def _match_cell(match: dict[str, Any], key: str) -> object:
    """A match's value for its column; the region as WIDTHxHEIGHT+X+Y (the query's pixels)."""
    value = match.get(key)
    if key == "region" and isinstance(value, dict):
        region = region_of(value)
        return None if region is None else str(region)
    return value


def shown(value: object) -> str:
    """Any value as HTML text: printable, control and deceptive characters made visible, then escaped
    (quotes too, so it is safe in an attribute as well)."""
    if value is None:
        return ""
    text = printable(str(value))
    visible = "".join(_visible_char(c) for c in text)
    return html.escape(visible, quote=True)


def _visible_char(char: str) -> str:
    if char in _DECEPTIVE or ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    return char


# --- summary.json --------------------------------------------------------------------------------------------


def summary_object(tally: _Tally, summary: ScanSummary) -> dict[str, Any]:
    """The counts and the scan's record. Every decision and type is present, zero or not, so tools reading
    the file need no defaults; reasons and lists appear when they occurred."""
    by_type = {str(t): tally.by_type.get(str(t), 0) for t in ContentType}
    if tally.by_type.get(UNKNOWN_TYPE):
        by_type[UNKNOWN_TYPE] = tally.by_type[UNKNOWN_TYPE]
    seconds = summary.seconds
    return {
        "tool_version": summary.tool_version,
        "host": printable(summary.host),
        "command": [printable(arg) for arg in summary.command],
        "interrupted": summary.interrupted,
        "list_versions": dict(summary.list_versions),
        "timings": {
            "started": summary.started,
            "ended": summary.ended,
            "seconds": round(seconds, 3),
            "inputs_per_second": round(tally.inputs / seconds, 3) if seconds > 0 else None,
        },
        "totals": {
            "inputs": tally.inputs,
            "bytes": tally.bytes,
            "duplicates": tally.duplicates,
            "hashed": summary.hashed,
            "errors": tally.errors,
            "matches": len(tally.matches),
        },
        "by_decision": {str(d): tally.by_decision.get(str(d), 0) for d in Decision},
        "by_type": by_type,
        "by_reason": dict(tally.by_reason),
        "matched_per_list": dict(tally.matched_per_list),
    }


# --- report.html ---------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { font-family: ui-monospace, monospace; word-break: break-all; }
.interrupted { background: #fff3cd; border: 2px solid #d39e00; padding: 0.6em 1em; font-weight: bold; }
.note { color: #555; font-style: italic; }
svg text { font-size: 12px; fill: #222; }
svg .axis { stroke: #222; stroke-width: 1; }
svg .line { fill: none; stroke: #1f5fa8; stroke-width: 2; }
"""


def render_html(tally: _Tally, summary: ScanSummary, document: dict[str, Any]) -> str:
    """The whole page. The CSP forbids every fetch and every script, so even a value that escaped escaping
    could not load or run anything; there are no images and no links to files by design."""
    sections = [
        _header(summary, document),
        _counts(document),
        _matches(tally),
        _errors(tally),
        _throughput(summary.progress),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        "<title>hashmatch scan report</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (), path: int = -1) -> str:
    """A table of already-escaped cells; `numeric` columns right-aligned, the `path` column monospaced."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    lines = [f"<table>\n<tr>{head}</tr>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            css = ' class="num"' if i in numeric else ' class="path"' if i == path else ""
            cells.append(f"<td{css}>{cell}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _header(summary: ScanSummary, document: dict[str, Any]) -> str:
    versions = ", ".join(f"{shown(n)} v{shown(v)}" for n, v in sorted(summary.list_versions.items())) or "none"
    rows = [
        ("Tool version", shown(summary.tool_version)),
        ("Host", shown(summary.host)),
        ("Command", shown(" ".join(document["command"]))),
        ("Started (UTC)", shown(summary.started)),
        ("Ended (UTC)", shown(summary.ended)),
        ("Duration", shown(_duration(summary.seconds))),
        ("Lists", versions),
    ]
    banner = (
        '<div class="interrupted">Interrupted: the scan stopped before the end. This report covers only the '
        "inputs it reached.</div>\n"
        if summary.interrupted
        else ""
    )
    note = (
        '<p class="note">This report holds paths, hashes, list names and counts only: no images and no links '
        "to files.</p>"
    )
    return f"<h1>hashmatch scan report</h1>\n{banner}{note}\n{_table(('Field', 'Value'), rows)}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d} ({seconds:.1f} s)"


def _counts(document: dict[str, Any]) -> str:
    totals = document["totals"]
    timings = document["timings"]
    rate = timings["inputs_per_second"]
    total_rows = [
        ("Inputs", str(totals["inputs"])),
        ("Bytes", str(totals["bytes"])),
        ("Duplicates (same SHA-256 as an earlier input)", str(totals["duplicates"])),
        ("Hashed", str(totals["hashed"])),
        ("Errors", str(totals["errors"])),
        ("Matches (input, list entry)", str(totals["matches"])),
        ("Inputs per second", "" if rate is None else str(rate)),
    ]
    parts = [
        "<h2>Counts</h2>",
        _table(("Total", "Count"), total_rows, numeric=(1,)),
        _table(("Decision", "Inputs"), _count_rows(document["by_decision"]), numeric=(1,)),
        _table(("Type", "Inputs"), _count_rows(document["by_type"]), numeric=(1,)),
    ]
    if document["by_reason"]:
        parts.append(_table(("Reason", "Inputs"), _count_rows(document["by_reason"]), numeric=(1,)))
    if document["matched_per_list"]:
        parts.append(_table(("List", "Files matched"), _count_rows(document["matched_per_list"]), numeric=(1,)))
    return "\n".join(parts)


def _count_rows(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(shown(key), str(counts[key])) for key in sorted(counts)]


def _matches(tally: _Tally) -> str:
    heading = f"<h2>Matches ({len(tally.matches)})</h2>"
    if not tally.matches:
        return f'{heading}\n<p class="note">No matches.</p>'
    keys = ("list", "external_id", "classification", "distance", "variant", "region", "action")
    rows = [[shown(path), *(shown(_match_cell(match, key)) for key in keys)] for path, match in tally.matches]
    headers = ("Path", "List", "External id", "Classification", "Distance", "Variant", "Region", "Action")
    return f"{heading}\n{_table(headers, rows, numeric=(4,), path=0)}"


def _errors(tally: _Tally) -> str:
    heading = f"<h2>Errors ({tally.errors})</h2>"
    if not tally.errors:
        return f'{heading}\n<p class="note">No errors.</p>'
    table = _table(("Path", "Reason", "Detail"), [[shown(v) for v in row] for row in tally.error_rows], path=0)
    more = tally.errors - len(tally.error_rows)
    if more <= 0:
        return f"{heading}\n{table}"
    note = f'<p class="note">The first {len(tally.error_rows)} are shown; {more} more are in {RESULTS_JSONL}.</p>'
    return f"{heading}\n{note}\n{table}"


# --- the throughput chart ------------------------------------------------------------------------------------

_WIDTH, _HEIGHT = 720, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 20, 20, 50  # margins for the tick labels and axis titles


def _throughput(progress: Sequence[tuple[float, int]]) -> str:
    """Inputs done against seconds since the start, as an inline SVG (no script, no fetch). With fewer than
    two samples there is no line to draw: say so instead."""
    heading = "<h2>Throughput</h2>"
    samples = sorted((max(0.0, float(t)), max(0, int(n))) for t, n in progress)
    if not samples:
        return f'{heading}\n<p class="note">No progress samples were recorded.</p>'
    if len(samples) == 1:
        t, n = samples[0]
        return f'{heading}\n<p class="note">One progress sample only: {n} inputs done at {t:.1f} s.</p>'
    return f"{heading}\n{_chart(_thinned(samples, MAX_CHART_POINTS))}"


def _thinned(samples: list[tuple[float, int]], limit: int) -> list[tuple[float, int]]:
    """At most `limit` samples, evenly picked, the first and last always kept."""
    if len(samples) <= limit:
        return samples
    step = (len(samples) - 1) / (limit - 1)
    return [samples[round(i * step)] for i in range(limit)]


def _chart(samples: list[tuple[float, int]]) -> str:
    max_t = samples[-1][0] or 1.0
    max_n = max(n for _, n in samples) or 1
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    x0, y0 = _LEFT, _TOP + plot_h

    def x(t: float) -> float:
        return x0 + plot_w * t / max_t

    def y(n: float) -> float:
        return y0 - plot_h * n / max_n

    points = " ".join(f"{x(t):.1f},{y(n):.1f}" for t, n in samples)
    ticks = []
    for i in range(5):
        t, n = max_t * i / 4, max_n * i / 4
        ticks.append(f'<text x="{x(t):.1f}" y="{y0 + 18}" text-anchor="middle">{_tick(t, max_t)}</text>')
        ticks.append(f'<text x="{x0 - 8}" y="{y(n) + 4:.1f}" text-anchor="end">{_tick(n, max_n)}</text>')
    parts = [
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        'aria-label="Inputs done against seconds since the start">',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0 + plot_w}" y2="{y0}"/>',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{_TOP}"/>',
        *ticks,
        f'<text x="{x0 + plot_w / 2:.1f}" y="{_HEIGHT - 8}" text-anchor="middle">seconds since start</text>',
        f'<text x="16" y="{_TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {_TOP + plot_h / 2:.1f})">inputs done</text>',
        f'<polyline class="line" points="{points}"/>',
        "</svg>",
    ]
    return "\n".join(parts)


def _tick(value: float, top: float) -> str:
    """Whole numbers with thousands separators; short scans (top under 10) keep up to two decimals so that the
    five ticks do not all read 0 or 1."""
    if top >= 10:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def tool_version() -> str:
    """What summary.json names as the tool, and what every Ray node must run."""
    try:
        return f"hashmatch {version('hashmatch')}"
    except PackageNotFoundError:
        return "hashmatch (not installed)"
