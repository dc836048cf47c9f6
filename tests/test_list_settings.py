"""List settings change only through new versions, and are never ignored in silence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from engine.matcher import Matcher, QueryHashes
from engine.store import Store
from hashing.pdq_hash import PdqHash

LISTED = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _near(bits: int) -> str:
    """LISTED with its lowest `bits` bits flipped."""
    return f"{int(LISTED, 16) ^ ((1 << bits) - 1):064x}"


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    db = ["--db", str(tmp_path / "h.db")]
    listing = tmp_path / "l.txt"
    listing.write_text(LISTED + "\n")
    assert main(["lists", "import", str(listing), "--list", "l", *db]) == 0
    capsys.readouterr()
    return db


def _matches(db: list[str], query: str) -> bool:
    with Store(db[1]) as store:
        verdict = Matcher.from_store(store).match(QueryHashes(pdq=PdqHash.from_hex(query)))
    return bool(verdict.matches)


def _show(db: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["lists", "show", "l", "--json", *db]) == 0
    record: dict[str, object] = json.loads(capsys.readouterr().out)
    return record


def test_reimport_with_a_new_threshold_applies_it_to_the_new_version(
    tmp_path: Path, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _matches(db, _near(20))
    listing = tmp_path / "l.txt"
    assert main(["lists", "import", str(listing), "--list", "l", "--threshold", "10", "--action", "review", *db]) == 0
    out = capsys.readouterr().out
    assert "settings: threshold 31 -> 10" in out and "settings: action remove -> review" in out
    shown = _show(db, capsys)
    assert (shown["threshold"], shown["action"], shown["active_version"]) == (10, "review", 2)
    assert not _matches(db, _near(20)) and _matches(db, _near(10))


def test_lists_set_makes_a_version_and_rollback_restores_the_old_settings(
    db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lists", "set", "l", "--threshold", "12", "--negative", *db]) == 0
    assert "version 2" in capsys.readouterr().out
    shown = _show(db, capsys)
    assert (shown["threshold"], shown["negative"], shown["entries"]) == (12, True, 1)
    versions = shown["versions"]
    assert isinstance(versions, list) and versions[1]["kind"] == "settings"
    assert versions[1]["note"] == "threshold 31 -> 12; negative False -> True"
    assert not _matches(db, _near(20))
    assert main(["lists", "activate", "l", "1", *db]) == 0
    assert (_show(db, capsys)["threshold"], _matches(db, _near(20))) == (31, True)
    assert main(["lists", "set", "l", "--threshold", "12", "--negative", *db]) == 0
    out = capsys.readouterr().out  # the latest version has them: nothing new, and a hint to activate it
    assert "has these settings already" in out and "lists activate l 2" in out
    assert main(["lists", "set", "l", *db]) == 2


def test_source_and_types_that_differ_from_the_list_are_refused(
    tmp_path: Path, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "l.txt"
    assert main(["lists", "import", str(listing), "--list", "l", "--source", "ncmec", *db]) == 1
    assert "INVALID_SETTING" in capsys.readouterr().err
    assert main(["lists", "import", str(listing), "--list", "l", "--types", "md5", *db]) == 1
    assert "signal types cannot change" in capsys.readouterr().err
    with Store(db[1]) as store:
        assert [v.number for v in store.versions("l")] == [1]
