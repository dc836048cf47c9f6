"""Imports that would silently lose detection are refused, write nothing, and exit non-zero with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from engine.signals import SignalType
from engine.store import Store

LISTED = [f"{i:02x}" * 32 for i in range(1, 5)]  # four PDQ hashes
OTHER = "ab" * 32


@pytest.fixture
def listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """A store whose list 'l' holds LISTED (version 1, active); returns the --db arguments."""
    db = ["--db", str(tmp_path / "h.db")]
    source = tmp_path / "v1.txt"
    source.write_text("".join(h + "\n" for h in LISTED))
    assert main(["lists", "import", str(source), "--list", "l", *db]) == 0
    capsys.readouterr()
    return db


def _import(tmp_path: Path, content: str | bytes, db: list[str], *options: str) -> int:
    path = tmp_path / "incoming"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return main(["lists", "import", str(path), "--list", "l", *options, *db])


def _state(db: list[str]) -> tuple[list[int], int | None, int]:
    with Store(db[1]) as store:
        versions = [v.number for v in store.versions("l")]
        active = store.get_list("l").active_version
        live = len(store.live_signals("l", SignalType.PDQ).entry_ids)
    return versions, active, live


def _still_matches(db: list[str], capsys: pytest.CaptureFixture[str]) -> bool:
    capsys.readouterr()
    main(["match", "--hash", LISTED[0], *db])
    return capsys.readouterr().out.startswith("match,")


@pytest.mark.parametrize(
    ("content", "options", "reason"),
    [
        (b"", (), "NOTHING_ACCEPTED"),  # a 0-byte download
        ("# comment only\n# nothing else\n", (), "NOTHING_ACCEPTED"),
        ("not-a-hash\nzz\n", (), "NOTHING_ACCEPTED"),  # every line rejected
        ('{"hashRecords": "notalist"}', (), "UNREADABLE_LIST"),  # JSON of the wrong shape
        ('{"hashRecords": [{"hashValue": "' + LISTED[0] + '", "signalType": "ImagePDQ"}', (), "UNREADABLE_LIST"),
        ("hash,id,deleted\n" + LISTED[0] + ",N-1,true\n", (), "DELTA_FILE"),  # a delta without --mode delta
        (LISTED[0] + "\n", (), "LIST_WOULD_SHRINK"),  # removes 3 of 4 entries
        (LISTED[0] + "\n", ("--max-shrink", "70"), "LIST_WOULD_SHRINK"),
    ],
)
def test_a_replace_that_would_lose_detection_is_refused_and_changes_nothing(
    tmp_path: Path,
    listed: list[str],
    capsys: pytest.CaptureFixture[str],
    content: str | bytes,
    options: tuple[str, ...],
    reason: str,
) -> None:
    before = _state(listed)
    assert _import(tmp_path, content, listed, *options) == 1
    err = capsys.readouterr().err
    assert f"hashmatch: error: {reason}: nothing imported" in err and "Traceback" not in err
    assert _state(listed) == before == ([1], 1, 4)
    assert _still_matches(listed, capsys)


def test_a_large_removal_goes_through_when_confirmed_or_within_the_allowed_share(
    tmp_path: Path, listed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _import(tmp_path, "".join(h + "\n" for h in LISTED[:2]), listed) == 0  # exactly 50%: allowed
    assert _state(listed) == ([1, 2], 2, 2)
    assert _import(tmp_path, LISTED[0] + "\n", listed, "--max-shrink", "10") == 1
    capsys.readouterr()
    assert _import(tmp_path, OTHER + "\n", listed, "--allow-shrink", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["version"], report["added"], report["removed"], report["total"]) == (3, 1, 2, 1)


def test_a_delta_file_imports_with_mode_delta_and_the_refusal_says_so(
    tmp_path: Path, listed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    delta = "hash,id,deleted\n" + LISTED[0] + ",,true\n" + OTHER + ",N-9,\n"
    assert _import(tmp_path, delta, listed) == 1
    assert "--mode delta" in capsys.readouterr().err
    assert _import(tmp_path, delta, listed, "--mode", "delta") == 0
    assert _state(listed) == ([1, 2], 2, 4)  # one removed, one added


def test_an_all_rejected_import_still_reports_its_rejects(
    tmp_path: Path, listed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rejects = tmp_path / "rejects.csv"
    assert _import(tmp_path, "xyz\n" + "0" * 64 + "\n", listed, "--rejects", str(rejects)) == 1
    err = capsys.readouterr().err
    assert "BAD_LENGTH: 1" in err and "ZERO_PDQ: 1" in err
    assert [line.split(",")[:2] for line in rejects.read_text().splitlines()] == [
        ["line", "reason"],
        ["1", "BAD_LENGTH"],
        ["2", "ZERO_PDQ"],
    ]


def test_the_first_import_of_a_list_may_not_be_empty_either(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    assert _import(tmp_path, b"", db) == 1
    assert "NOTHING_ACCEPTED" in capsys.readouterr().err
    with Store(db[1]) as store:
        assert store.versions("l") == []  # the list exists (created by the command), without a version
