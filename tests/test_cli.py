"""`hashmatch hash` end to end, in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode, PdqContract
from tests.conformance import ROOT, core_expectations

BRIDGE_DIR = ROOT / "pdq/data/bridge-mods"
EXPECTED = {e.path: e for e in core_expectations()}


def test_hash_directory_prints_reference_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hash", str(BRIDGE_DIR)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    for line in lines:
        hex_hash, quality, path = line.split(",", 2)
        expected = EXPECTED[Path(path)]
        assert (hex_hash, int(quality)) == (expected.fullres_pdq, expected.fullres_quality)


def test_failures_go_to_stderr_with_reason_and_the_run_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (tmp_path / "b_empty.png").write_bytes(b"")
    (tmp_path / "c_notes.txt").write_text("not an image")
    good = BRIDGE_DIR / "square-128x128.jpg"
    (tmp_path / "d_good.jpg").write_bytes(good.read_bytes())
    assert main(["hash", str(tmp_path), str(tmp_path / "missing.jpg")]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{EXPECTED[good].fullres_pdq},100,{tmp_path / 'd_good.jpg'}"]
    reasons = [line.split(",")[1] for line in captured.err.splitlines()]
    assert reasons == ["UNDECODABLE", "EMPTY_INPUT", "UNSUPPORTED_FORMAT", "NOT_FOUND"]


def test_json_output_carries_digests_and_dihedral(capsys: pytest.CaptureFixture[str]) -> None:
    image = BRIDGE_DIR / "aaa-orig.jpg"
    assert main(["hash", "--json", "--dihedral", str(image)]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = EXPECTED[image]
    assert record["pdq"] == expected.fullres_pdq and record["quality"] == 100
    assert list(record["dihedral"].values()) == list(expected.dihedral)
    assert len(record["md5"]) == 32 and len(record["sha1"]) == 40 and len(record["sha256"]) == 64
    assert (record["width"], record["height"]) == (1600, 1004)


def test_dihedral_csv_and_cli512_contract(capsys: pytest.CaptureFixture[str]) -> None:
    image = BRIDGE_DIR / "aaa-orig.jpg"
    assert main(["hash", "--dihedral-pixels", "--contract", "cli512", str(image)]) == 0
    fields = capsys.readouterr().out.strip().split(",")
    assert len(fields) == 10 and fields[0] == EXPECTED[image].cli512_pdq
    options = HashOptions(contract=PdqContract.CLI512, dihedral=DihedralMode.PIXELS)
    expected = MediaHasher(options).hash_file(image)
    assert fields[:8] == [h.hex() for h in expected.dihedral] and fields[8:] == ["100", str(image)]


def test_invalid_option_combinations_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    image = str(BRIDGE_DIR / "aaa-orig.jpg")
    assert main(["hash", "--fast", "--contract", "cli512", image]) == 2
    assert main(["hash", "--max-pixels", "-5", image]) == 2
    assert main(["hash", "--kernel", "fused", "--device", "cpu", image]) == 0
    assert capsys.readouterr().err.count("hashmatch: error: USAGE:") == 2


def test_unreadable_directories_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_walk = os.walk

    def walk_with_a_locked_subdirectory(top: str, onerror: Any = None) -> Any:
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "locked")))
        return real_walk(top, onerror=onerror)

    monkeypatch.setattr(os, "walk", walk_with_a_locked_subdirectory)
    (tmp_path / "good.jpg").write_bytes((BRIDGE_DIR / "square-128x128.jpg").read_bytes())
    assert main(["hash", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert captured.err == f"ERROR,UNREADABLE,{tmp_path / 'locked'},Permission denied\n"


def test_pixel_limit_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hash", "--max-pixels", "1000", str(BRIDGE_DIR / "aaa-orig.jpg")]) == 1
    assert ",TOO_LARGE," in capsys.readouterr().err
