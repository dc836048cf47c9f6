"""The scan's reports: exact CSV rows with spreadsheet formulas defused, summary.json counts, and an HTML page
that escapes every attacker-chosen path, loads nothing, embeds no media and stays well-formed."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from engine.scan.records import ContentType, Decision, ItemProblem, ScanRecord
from engine.scan.reports import (
    CSP,
    CSV_COLUMNS,
    MAX_ERROR_ROWS,
    ScanSummary,
    csv_cell,
    printable,
    write_reports,
)
from hashing.errors import ReasonCode

SHA_A = "a" * 64
SHA_B = "b" * 64
MD5_A = "1" * 32
PDQ_A = "f" * 64
FORMULA_PATH = "=cmd|' /C calc'!A0.jpg"
SCRIPT_PATH = "evidence/<script>alert(1)</script>.jpg"
NON_UTF8_PATH = os.fsdecode(b"caf\xe9.jpg")


def entry(list_name: str = "known", entry_id: int = 7, **changes: Any) -> dict[str, Any]:
    """A MatchedEntry.to_dict() as the matcher writes it."""
    return {
        "list": list_name,
        "list_version": 3,
        "entry_id": entry_id,
        "signal_type": "pdq",
        "external_id": "EXT-1",
        "classification": "A1",
        "distance": 12,
        "variant": "content_box",
        "region": {"x": 10, "y": 20, "width": 400, "height": 300},
        "action": "block",
    } | changes


def records() -> list[ScanRecord]:
    listed = ScanRecord(
        path="photos/a.jpg",
        decision=Decision.MATCH,
        size=1000,
        type=ContentType.IMAGE,
        md5=MD5_A,
        sha256=SHA_A,
        pdq=PDQ_A,
        quality=90,
        matches=(
            entry(),
            entry("other", 9, signal_type="sha256", distance=0, variant=None, region=None, external_id=None),
        ),
    )
    return [
        listed,
        ScanRecord(path="photos/b.jpg", decision=Decision.NO_MATCH, size=2000, type=ContentType.IMAGE, sha256=SHA_B),
        ScanRecord(
            path="gone.jpg",
            decision=Decision.ERROR,
            error=ItemProblem(ReasonCode.UNREADABLE, "permission denied"),
        ),
        replace(listed, path="copy/a.jpg", matches=(entry(),), duplicate_of="photos/a.jpg"),
        ScanRecord(
            path="broken.jpg",
            decision=Decision.NO_MATCH,
            size=10,
            type=ContentType.OTHER,
            sha256="c" * 64,
            reasons=(ReasonCode.UNDECODABLE,),
        ),
        ScanRecord(
            path="flat.png",
            decision=Decision.NO_MATCH,
            size=20,
            type=ContentType.IMAGE,
            sha256="d" * 64,
            pdq="0" * 64,
            quality=10,
            reasons=(ReasonCode.QUALITY_TOO_LOW,),
        ),
        ScanRecord(
            path=FORMULA_PATH,
            decision=Decision.NEEDS_REVIEW,
            size=30,
            type=ContentType.IMAGE,
            sha256="e" * 64,
            matches=(entry("review", 11, action="review", classification="-bad", external_id="@x"),),
        ),
        ScanRecord(
            path=SCRIPT_PATH,
            decision=Decision.MATCH,
            size=40,
            type=ContentType.VIDEO,
            sha256="f" * 64,
            matches=(entry(entry_id=8),),
        ),
        ScanRecord(
            path=NON_UTF8_PATH,
            decision=Decision.MATCH,
            size=50,
            type=ContentType.IMAGE,
            sha256="9" * 64,
            matches=(entry(entry_id=10),),
        ),
    ]


def summary(
    interrupted: bool = False, progress: tuple[tuple[float, int], ...] = ((0.0, 0), (1.0, 5), (2.0, 9))
) -> ScanSummary:
    return ScanSummary(
        started="2024-05-01T10:00:00Z",
        ended="2024-05-01T10:00:02Z",
        seconds=2.0,
        tool_version="0.1.0",
        host="lab-1",
        command=["hashmatch", "scan", "/evidence"],
        list_versions={"known": 3, "other": 1, "review": 2},
        interrupted=interrupted,
        progress=progress,
        hashed=8,
    )


@pytest.fixture
def written(tmp_path: Path) -> Path:
    write_reports(tmp_path, iter(records()), summary())
    return tmp_path


def read_csv(out: Path) -> list[list[str]]:
    with (out / "matches.csv").open(encoding="utf-8", newline="") as stream:
        return list(csv.reader(stream))


def test_csv_rows_exact_with_formulas_defused(written: Path) -> None:
    rows = read_csv(written)
    assert rows[0] == list(CSV_COLUMNS)
    head_a = ["photos/a.jpg", "match", SHA_A, MD5_A, PDQ_A, "90"]
    known = ["known", "3", "7", "EXT-1", "A1", "pdq", "12", "content_box", "400x300+10+20", "block"]
    review = [
        "pdq",
        "12",
        "content_box",
        "400x300+10+20",
        "review",
        "",
    ]  # formula-like external id and classification defused too
    assert rows[1:] == [
        [*head_a, *known, ""],
        [*head_a, "other", "3", "9", "", "A1", "sha256", "0", "", "", "block", ""],
        ["copy/a.jpg", *head_a[1:], *known, "photos/a.jpg"],
        [f"'{FORMULA_PATH}", "needs_review", "e" * 64, "", "", "", "review", "3", "11", "'@x", "'-bad", *review],
        [SCRIPT_PATH, "match", "f" * 64, "", "", "", "known", "3", "8", *known[3:], ""],
        ["caf\\xe9.jpg", "match", "9" * 64, "", "", "", "known", "3", "10", *known[3:], ""],
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_defused(start: str) -> None:
    assert csv_cell(start + "1+1") == "'" + start + "1+1"
    assert csv_cell("a" + start) == "a" + start
    assert csv_cell(12) == 12
    assert csv_cell(None) == ""


def test_printable_never_raises() -> None:
    assert printable(NON_UTF8_PATH) == "caf\\xe9.jpg"
    assert printable("\ud800x") == "\\ud800x"  # a lone surrogate no file system decodes to
    assert printable("café") == "café"


def test_summary_json_counts(written: Path, tmp_path: Path) -> None:
    document = json.loads((written / "summary.json").read_text(encoding="utf-8"))
    assert document == write_reports(tmp_path / "again", iter(records()), summary())
    assert document["by_decision"] == {"match": 4, "needs_review": 1, "no_match": 3, "error": 1}
    assert document["by_type"] == {"image": 6, "video": 1, "archive": 0, "other": 1, "unknown": 1}
    assert document["by_reason"] == {"UNREADABLE": 1, "UNDECODABLE": 1, "QUALITY_TOO_LOW": 1}
    assert document["matched_per_list"] == {"known": 4, "other": 1, "review": 1}
    assert document["totals"] == {
        "inputs": 9,
        "bytes": 1000 + 2000 + 1000 + 10 + 20 + 30 + 40 + 50,
        "duplicates": 1,
        "hashed": 8,
        "errors": 1,
        "matches": 6,
    }
    assert document["timings"] == {
        "started": "2024-05-01T10:00:00Z",
        "ended": "2024-05-01T10:00:02Z",
        "seconds": 2.0,
        "inputs_per_second": 4.5,
    }
    assert document["list_versions"] == {"known": 3, "other": 1, "review": 2}
    assert document["tool_version"] == "0.1.0"
    assert document["host"] == "lab-1"
    assert document["command"] == ["hashmatch", "scan", "/evidence"]
    assert document["interrupted"] is False
    text = (written / "summary.json").read_text(encoding="utf-8")
    assert text == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_summary_of_nothing(tmp_path: Path) -> None:
    instant = ScanSummary("t0", "t0", 0.0, "0.1.0", "h", [], {}, False, (), 0)
    document = write_reports(tmp_path, [], instant)
    assert document["totals"]["inputs"] == 0
    assert document["timings"]["inputs_per_second"] is None
    assert read_csv(tmp_path) == [list(CSV_COLUMNS)]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No matches." in page
    assert "No errors." in page
    assert "No progress samples" in page
    assert "<svg" not in page


class Structure(HTMLParser):
    """Checks table, tr, td and th open and close in order, and collects every tag and attribute seen."""

    CHECKED = frozenset({"table", "tr", "td", "th", "svg", "html", "head", "body"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)
        if tag in self.CHECKED:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.CHECKED:
            assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return parser


def html_of(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


def test_html_escapes_paths_and_loads_nothing(written: Path) -> None:
    page = html_of(written)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in page
    assert "=cmd|&#x27; /C calc&#x27;!A0.jpg" in page
    assert "caf\\xe9.jpg" in page
    lowered = page.lower()
    for forbidden in ("<img", "src=", "http:", "https:", "href", "url(", "@import", "<video", "<iframe", "<object"):
        assert forbidden not in lowered, forbidden
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP == "default-src 'none'; style-src 'unsafe-inline'"
    parsed = parse(page)
    assert "img" not in parsed.tags and "script" not in parsed.tags and "a" not in parsed.tags
    assert all(name not in {"src", "href", "srcset", "data"} for name, _ in parsed.attributes)
    assert SCRIPT_PATH in "".join(parsed.text)  # shown to the reader as it is named, as text


def test_html_sections(written: Path) -> None:
    page = html_of(written)
    for heading in ("Counts", "Matches (6)", "Errors (1)", "Throughput"):
        assert f"<h2>{heading}</h2>" in page
    for value in ("0.1.0", "lab-1", "2024-05-01T10:00:00Z", "2024-05-01T10:00:02Z", "known v3", "review v2"):
        assert value in page
    assert "permission denied" in page
    assert "UNREADABLE" in page
    assert "EXT-1" in page and "content_box" in page and "400x300+10+20" in page


def test_html_control_and_bidi_characters_made_visible(tmp_path: Path) -> None:
    record = ScanRecord(
        path="photo\u202egpj.exe\x00\n",
        decision=Decision.ERROR,
        error=ItemProblem(ReasonCode.UNDECODABLE, "x"),
    )
    write_reports(tmp_path, [record], summary())
    page = html_of(tmp_path)
    assert "photo\\u202egpj.exe\\x00\\x0a" in page
    assert "\u202e" not in page and "\x00" not in page


def test_interrupted_banner_only_when_interrupted(tmp_path: Path) -> None:
    write_reports(tmp_path / "done", records(), summary(interrupted=False))
    write_reports(tmp_path / "stopped", records(), summary(interrupted=True))
    assert 'class="interrupted"' not in html_of(tmp_path / "done")
    stopped = html_of(tmp_path / "stopped")
    assert '<div class="interrupted">Interrupted' in stopped
    assert json.loads((tmp_path / "stopped" / "summary.json").read_text())["interrupted"] is True
    parse(stopped)


def many_errors(count: int) -> Iterator[ScanRecord]:
    for i in range(count):
        yield ScanRecord(
            path=f"bad/{i:05d}.jpg", decision=Decision.ERROR, error=ItemProblem(ReasonCode.UNREADABLE, "io")
        )


def test_error_table_is_capped_with_a_note(tmp_path: Path) -> None:
    document = write_reports(tmp_path, many_errors(MAX_ERROR_ROWS + 5), summary())
    assert document["totals"]["errors"] == 1005
    assert document["by_reason"] == {"UNREADABLE": 1005}
    page = html_of(tmp_path)
    assert "bad/00999.jpg" in page
    assert "bad/01000.jpg" not in page
    assert "The first 1000 are shown; 5 more are in results.jsonl." in page
    errors = page.split("<h2>Errors (1005)</h2>")[1].split("<h2>")[0]
    assert errors.count("<tr>") == MAX_ERROR_ROWS + 1  # and the header row
    parse(page)


def test_no_note_when_errors_fit(written: Path) -> None:
    assert "more are in results.jsonl" not in html_of(written)


def test_chart_with_samples(written: Path) -> None:
    page = html_of(written)
    assert "<svg" in page and "<polyline" in page
    assert "seconds since start" in page and "inputs done" in page
    assert 'points="80.0,270.0 390.0,' in page  # (0, 0) at the origin
    parse(page)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [((), "No progress samples were recorded."), (((3.0, 12),), "One progress sample only: 12 inputs done at 3.0 s.")],
)
def test_chart_with_too_few_samples(tmp_path: Path, progress: tuple[tuple[float, int], ...], expected: str) -> None:
    write_reports(tmp_path, records(), summary(progress=progress))
    page = html_of(tmp_path)
    assert expected in page
    assert "<polyline" not in page


def test_chart_with_flat_or_thousands_of_samples(tmp_path: Path) -> None:
    write_reports(tmp_path / "flat", records(), summary(progress=((0.0, 0), (0.0, 0))))
    assert "<polyline" in html_of(tmp_path / "flat")  # zero span: no division by zero
    many = tuple((float(i), i * 10) for i in range(10_000))
    write_reports(tmp_path / "many", records(), summary(progress=many))
    page = html_of(tmp_path / "many")
    points = page.split('points="')[1].split('"')[0].split()
    assert len(points) == 2000
    assert points[-1] == "700.0,20.0"  # the last sample kept, at the top right
    parse(page)
