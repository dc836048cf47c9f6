"""One error vocabulary: the same reason codes and line formats in every command, the service and the README,
and never Python's own words."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from cli import match_command
from cli.main import main
from grpc_api.client import HashmatchClient
from hashing.decode import DecodeLimits
from hashing.errors import ReasonCode
from tests.grpc_fixtures import Served, reason_of

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_reason_code_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)`", README, flags=re.MULTILINE))
    assert {code.value for code in ReasonCode} <= documented


def test_the_readme_states_the_defaults_the_code_has() -> None:
    assert f"default {DecodeLimits.max_pixels:,}" in README
    assert f"default {DecodeLimits.max_bytes // 2**20} MiB" in README


def test_hash_and_match_report_failed_inputs_in_the_same_line_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert main(["hash", str(broken)]) == 1
    hash_line = capsys.readouterr().err.strip()
    db = ["--db", str(tmp_path / "h.db")]
    listing = tmp_path / "l.txt"
    listing.write_text("ab" * 32 + "\n")
    main(["lists", "import", str(listing), "--list", "l", *db])
    capsys.readouterr()
    assert main(["match", str(broken), "--hash", "xyz", *db]) == 1
    match_lines = capsys.readouterr().err.splitlines()
    assert hash_line.startswith(f"ERROR,UNDECODABLE,{broken},")
    assert match_lines[0].startswith("ERROR,INVALID_HASH,xyz,")  # a query hash is INVALID_HASH, as documented
    assert match_lines[1] == hash_line


def test_bad_option_values_are_refused_in_plain_words(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    listing = tmp_path / "l.txt"
    listing.write_text("ab" * 32 + "\n")
    with pytest.raises(SystemExit) as exited:
        main(["lists", "import", str(listing), "--list", "l", "--types", "pdq,foo", "--db", str(tmp_path / "h.db")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unknown signal type 'foo'" in err and "is not a valid" not in err


def test_an_unexpected_failure_is_one_line_with_a_reason_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> int:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(match_command, "_run_matches", broken)
    listing = tmp_path / "l.txt"
    listing.write_text("ab" * 32 + "\n")
    db = ["--db", str(tmp_path / "h.db")]
    main(["lists", "import", str(listing), "--list", "l", *db])
    capsys.readouterr()
    assert main(["match", "--hash", "ab" * 32, *db]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hashmatch: error: INTERNAL:") and "internal detail" not in err and "Traceback" not in err


def test_the_service_names_reason_codes_not_python_classes(served: Served) -> None:
    with HashmatchClient(served.address, served.admin_token) as admin:
        with pytest.raises(grpc.RpcError) as missing:
            admin.list_versions("no-such-list")
        with pytest.raises(grpc.RpcError) as bad_type:
            admin.import_list("new", b"ab" * 32, signal_types=["pdq", "foo"])
        with pytest.raises(grpc.RpcError) as bad_format:
            admin.import_list("new", b"ab" * 32, format="docx")
    assert (missing.value.code(), reason_of(missing.value)) == (grpc.StatusCode.NOT_FOUND, "LIST_NOT_FOUND")
    assert (bad_type.value.code(), reason_of(bad_type.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SETTING")
    assert "unknown signal type 'foo'" in bad_type.value.details()
    assert (bad_format.value.code(), reason_of(bad_format.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_SETTING",
    )
    assert "is not a valid" not in bad_format.value.details()
