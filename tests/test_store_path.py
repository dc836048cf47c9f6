"""A mistyped store path is an error, not a new empty store; stores are owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli.main import main
from engine.store import Store, StoreUnavailableError

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_store_in_a_missing_directory_is_refused_unless_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo" / "dir" / "x.db"
    listing = tmp_path / "l.txt"
    listing.write_text(PDQ + "\n")
    assert main(["lists", "import", str(listing), "--list", "l", "--db", str(typo)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hashmatch: error: STORE_UNAVAILABLE: no directory") and "--create" in err
    assert not (tmp_path / "typo").exists()
    assert main(["match", "--hash", PDQ, "--db", str(typo)]) == 1
    assert not (tmp_path / "typo").exists()
    assert main(["lists", "import", str(listing), "--list", "l", "--db", str(typo), "--create"]) == 0
    assert typo.is_file() and _mode(typo.parent) == 0o700


def test_the_environment_variable_is_as_explicit_as_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HASHMATCH_DB", str(tmp_path / "missing" / "h.db"))
    assert main(["lists", "ls"]) == 1
    assert "STORE_UNAVAILABLE" in capsys.readouterr().err


def test_the_default_location_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HASHMATCH_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["lists", "ls"]) == 0
    assert (tmp_path / "data" / "hashmatch" / "hashmatch.db").is_file()


def test_new_stores_and_their_journals_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a typical umask would leave new files world-readable
    try:
        path = tmp_path / "h.db"
        with Store(path) as store:
            store.db.execute("CREATE TABLE probe (x)")  # something in the WAL
            assert _mode(path) == 0o600
            assert _mode(Path(f"{path}-wal")) == 0o600
    finally:
        os.umask(old)


def test_a_file_that_is_not_a_store_is_refused_in_words(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database " * 100)
    with pytest.raises(StoreUnavailableError, match="is not a hashmatch store"):
        Store(path)
