"""`hashmatch lists ...` and `hashmatch match` end to end, in-process, on a temporary store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.conformance import ROOT

BRIDGE = ROOT / "pdq/data/bridge-mods/aaa-orig.jpg"
BRIDGE_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
OTHER_PDQ = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    return ["--db", str(tmp_path / "h.db")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_ls_show_versions_diff_activate_export_rm(
    tmp_path: Path, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = tmp_path / "v1.csv"
    v1.write_text(f"hash,id,classification\n{BRIDGE_PDQ},N-1,A1\nnot-a-hash,N-2,A1\n")
    code, out, _ = run(capsys, "lists", "import", str(v1), "--list", "ncmec", "--source", "ncmec", *db)
    assert code == 0 and "1 added" in out and "BAD_LENGTH: 1" in out
    v2 = tmp_path / "v2.txt"
    v2.write_text(f"{OTHER_PDQ}\n")
    rejects = str(tmp_path / "rejects.csv")
    # v2 replaces the one entry of v1: a 100% removal, so it must be confirmed.
    code, out, _ = run(capsys, "lists", "import", str(v2), "--list", "ncmec", "--json", "--rejects", rejects, *db)
    assert code == 1
    args = ("lists", "import", str(v2), "--list", "ncmec", "--json", "--rejects", rejects, "--allow-shrink")
    code, out, _ = run(capsys, *args, *db)
    report = json.loads(out)
    assert (report["version"], report["added"], report["removed"], report["total"]) == (2, 1, 1, 1)
    assert (tmp_path / "rejects.csv").read_text() == "line,reason,detail\n"

    code, out, _ = run(capsys, "lists", "ls", "--json", *db)
    assert json.loads(out)[0] | {"created_at": ""} == {
        "name": "ncmec",
        "source": "ncmec",
        "signal_types": ["md5", "pdq", "sha1", "sha256"],
        "threshold": 31,
        "action": "remove",
        "negative": False,
        "query_variants": True,
        "active_version": 2,
        "entries": 1,
        "created_at": "",
    }
    code, out, _ = run(capsys, "lists", "versions", "ncmec", "--json", *db)
    assert [v["version"] for v in json.loads(out)] == [1, 2]
    code, out, _ = run(capsys, "lists", "show", "ncmec", *db)
    assert "active_version: 2" in out
    code, out, err = run(capsys, "lists", "diff", "ncmec", "1", "2", *db)
    assert out.splitlines() == [f"+ pdq {OTHER_PDQ}", f"- pdq {BRIDGE_PDQ} N-1 A1"] and "1 added, 1 removed" in err

    assert run(capsys, "match", str(BRIDGE), *db)[1].startswith("no_match,")
    assert run(capsys, "lists", "activate", "ncmec", "1", *db)[0] == 0
    code, out, _ = run(capsys, "match", str(BRIDGE), "--json", *db)
    verdict = json.loads(out)
    assert verdict["decision"] == "match" and verdict["matches"][0]["external_id"] == "N-1"
    assert verdict["list_versions"] == {"ncmec": 1}

    exported = tmp_path / "out.csv"
    assert run(capsys, "lists", "export", "ncmec", "--out", str(exported), *db)[0] == 0
    assert exported.read_text().splitlines()[1].startswith(f"{BRIDGE_PDQ},pdq,N-1,A1,{v1},2,1,")
    assert run(capsys, "lists", "rm", "ncmec", *db)[0] == 2  # needs --yes
    assert run(capsys, "lists", "rm", "ncmec", "--yes", *db)[0] == 0
    assert json.loads(run(capsys, "lists", "ls", "--json", *db)[1]) == []


def test_match_hashes_from_flags_and_files(tmp_path: Path, db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "l.txt"
    listing.write_text(f"{BRIDGE_PDQ}\n")
    run(capsys, "lists", "import", str(listing), "--list", "l", *db)
    queries = tmp_path / "q.txt"
    queries.write_text(f"{OTHER_PDQ}\n# comment\nxyz\n")
    code, out, err = run(capsys, "match", "--hash", BRIDGE_PDQ, "--hashes", str(queries), *db)
    assert code == 1  # one input was invalid
    assert out.splitlines() == [f"match,{BRIDGE_PDQ},l:1:0", f"no_match,{OTHER_PDQ},"]
    assert err.startswith("ERROR,INVALID_HASH,xyz,")


def test_errors_are_one_line_not_tracebacks(tmp_path: Path, db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "lists", "show", "missing", *db)
    assert code == 1 and err == "hashmatch: error: LIST_NOT_FOUND: no list named 'missing' (see 'hashmatch lists ls')\n"
    code, _, err = run(capsys, "match", "--hash", BRIDGE_PDQ, *db)
    assert code == 1 and err.startswith("hashmatch: error: NO_ACTIVE_LIST: no list has an active version")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,size\nx,1\n")
    code, _, err = run(capsys, "lists", "import", str(bad), "--list", "x", "--format", "csv", *db)
    assert code == 1 and err.startswith("hashmatch: error: UNKNOWN_LIST_FORMAT: no hash column")
    code, _, err = run(capsys, "lists", "import", str(tmp_path / "nope.txt"), "--list", "x", *db)
    assert code == 1 and err == f"hashmatch: error: NOT_FOUND: {tmp_path / 'nope.txt'}: No such file or directory\n"
