"""`hashmatch match` prints each verdict as soon as its input is done, in input order, with a bounded number
of files in flight."""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import match_command
from cli.main import main
from tests.conformance import ROOT

IMAGES = sorted((ROOT / "pdq/data/reg-test-input/labelme-subset").glob("*.jpg"))


class _FirstWrite(io.StringIO):
    """Stdout that remembers how many inputs had been taken when the first verdict was written."""

    def __init__(self, taken: list[int]) -> None:
        super().__init__()
        self.taken = taken
        self.at_first_write: int | None = None

    def write(self, text: str) -> int:
        if self.at_first_write is None:
            self.at_first_write = self.taken[0]
        return super().write(text)


def test_the_first_verdict_comes_before_the_inputs_run_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    listing = tmp_path / "l.txt"
    listing.write_text("ab" * 32 + "\n")
    assert main(["lists", "import", str(listing), "--list", "l", *db]) == 0
    files = []
    for n in range(60):
        copy = tmp_path / f"{n:03d}.jpg"
        shutil.copyfile(IMAGES[n % len(IMAGES)], copy)
        files.append(copy)
    taken = [0]

    def lazily(paths: list[str], unreadable: list[OSError]) -> Iterator[Path]:
        for path in files:
            taken[0] += 1
            yield path

    monkeypatch.setattr(match_command, "iter_files", lazily)
    out = _FirstWrite(taken)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["match", "--workers", "2", "--no-dihedral", "unused", *db]) == 0
    assert out.at_first_write is not None and out.at_first_write <= 2 * 2 + 1  # the window, not all 60
    labels = [line.split(",")[1] for line in out.getvalue().splitlines()]
    assert labels == [str(f) for f in files]  # input order, every input once


def test_hash_inputs_from_a_file_stream_and_keep_their_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    listing = tmp_path / "l.txt"
    listing.write_text("ab" * 32 + "\n")
    assert main(["lists", "import", str(listing), "--list", "l", *db]) == 0
    queries = tmp_path / "q.txt"
    hashes = [f"{i:064x}" for i in range(1, 700)]
    queries.write_text("\n".join([*hashes[:300], "ab" * 32, *hashes[300:]]) + "\n")
    capsys.readouterr()
    assert main(["match", "--hashes", str(queries), *db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[1] for line in lines] == [*hashes[:300], "ab" * 32, *hashes[300:]]
    assert lines[300].startswith("match,") and sum(line.startswith("match,") for line in lines) == 1
