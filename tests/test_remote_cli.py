"""`hashmatch match --server` is the local command answered elsewhere: same options, same checks, same output;
`hashmatch admin` drives the admin RPCs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from cli.main import main
from hashing.media_hasher import MediaHasher
from tests.grpc_fixtures import BRIDGE, OTHER, Served, serve


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a-bridge.jpg").write_bytes(BRIDGE.read_bytes())
    Image.open(BRIDGE).rotate(90, expand=True).save(folder / "b-rotated.png")
    (folder / "c-other.jpg").write_bytes(OTHER.read_bytes())
    (folder / "d-truncated.jpg").write_bytes(BRIDGE.read_bytes()[:9000])
    (folder / "e-dangling.jpg").symlink_to(folder / "gone.jpg")
    os.mkfifo(folder / "f-fifo.jpg")
    (folder / "g-notes.txt").write_text("not an image")
    bridge_pdq = MediaHasher().hash_file(BRIDGE).pdq.hex()
    return [str(folder), "--hash", bridge_pdq, "--hash", "xyz", "--hash", "md5:" + "00" * 16]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    running = serve(tmp_path)
    yield running
    running.server.stop(1)


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[str], list[str]]:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = []
    for line in out.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            record.pop("elapsed_ms")  # the one field that differs: how long each side took
            line = json.dumps(record, sort_keys=True)
        lines.append(line)
    return code, lines, err.splitlines()


OPTIONS = [
    [],
    ["--json"],
    ["--no-dihedral"],
    ["--quality-gate", "101", "--json"],
    ["--list", "demo", "--json"],
    ["--list", "nosuch"],
    ["--nearest", "2", "--json"],
    ["--nearest", "3"],
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: " ".join(o) or "plain")
def test_remote_output_is_the_local_output(
    server: Served, inputs: list[str], options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    local = _run(capsys, ["match", *inputs, *options, "--db", str(server.directory / "h.db")])
    remote = _run(capsys, ["match", *inputs, *options, "--server", server.address, "--token", server.matcher_token])
    assert remote == local
    code, out, err = local
    if "--list" in options and "nosuch" in options:
        assert code == 1 and out == [] and err[0].startswith("hashmatch: error: LIST_NOT_FOUND")
        return
    assert code == 1 and len(out) == 7  # 2 valid hashes + 5 files with bytes; the dangling link and FIFO fail
    reasons = [line.split(",")[1:3] for line in err]
    assert ["INVALID_HASH", "xyz"] in reasons
    assert [r[0] for r in reasons if r[1].endswith(("e-dangling.jpg", "f-fifo.jpg"))] == ["NOT_FOUND", "UNREADABLE"]


def test_options_that_only_choose_how_this_machine_matches_are_refused_with_a_server(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in (["--index", "bruteforce"], ["--workers", "2"], ["--db", "x.db"], ["--dihedral-mode", "dct"]):
        argv = ["match", str(BRIDGE), *option, "--server", server.address, "--token", server.matcher_token]
        assert main(argv) == 2
        assert "for local matching only" in capsys.readouterr().err


def test_the_variant_switches_travel_with_each_request(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Image.open(BRIDGE) as image:
        ImageOps.expand(image.convert("RGB"), border=20).save(tmp_path / "framed.png")
    remote = ["--server", server.address, "--token", server.matcher_token, "--json"]
    assert main(["match", str(tmp_path / "framed.png"), *remote]) == 0
    assert json.loads(capsys.readouterr().out)["matches"][0]["variant"] == "content_box"
    assert main(["match", str(tmp_path / "framed.png"), "--no-content-box", *remote]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "no_match"


def test_an_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", str(BRIDGE), "--server", "127.0.0.1:1", "--token", "hm_x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hashmatch: error: SERVER_UNREACHABLE:") and err.count("\n") == 1


def test_admin_commands(server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    admin = ["admin", "--server", server.address, "--token", server.admin_token]
    other = MediaHasher().hash_file(OTHER)
    listing = tmp_path / "more.csv"
    listing.write_text(f"hash,type,id\n{other.pdq.hex()},pdq,N-2\nnot-a-hash,pdq,N-3\n")
    assert main([*admin, "add", str(listing), "--list", "demo"]) == 0
    out, err = capsys.readouterr()
    assert "version 2: 1 added" in out and "BAD_LENGTH" in err
    assert main([*admin, "--json", "versions", "demo"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)["versions"]] == [1, 2]
    replacement = tmp_path / "replacement.txt"
    replacement.write_text("ab" * 32 + "\n")
    assert main([*admin, "import", str(replacement), "--list", "demo"]) == 1  # removes 3 of 3 entries
    assert "LIST_WOULD_SHRINK" in capsys.readouterr().err
    assert main([*admin, "activate", "demo", "1"]) == 0
    assert "serving demo 1" in capsys.readouterr().out
    assert main([*admin, "status"]) == 0
    status = capsys.readouterr().out.splitlines()[1].split()
    assert status == ["demo", "1", "1", "2"]
    assert main(["admin", "--server", server.address, "--token", server.matcher_token, "status"]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err


def test_nearest_names_the_closest_entries_and_is_bounded(
    server: Served, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(server.directory / "h.db")]
    code, out, _ = _run(capsys, ["match", *inputs, "--nearest", "1", "--json", *db])
    assert code == 1  # the inputs include files that fail on purpose
    records = [json.loads(line) for line in out]
    by_input = {r["input"].rsplit("/", 1)[-1]: r for r in records}
    assert all(len(r["nearest"]) == (1 if r["query"]["pdq"] else 0) for r in records)
    assert by_input["a-bridge.jpg"]["nearest"][0]["distance"] == 0  # the listed bridge itself
    assert by_input["c-other.jpg"]["decision"] == "no_match" and by_input["c-other.jpg"]["nearest"][0]["distance"] > 31
    for wrong in ("0", "1001"):
        assert main(["match", *inputs, "--nearest", wrong, *db]) == 2
        assert "USAGE: --nearest takes 1..1000" in capsys.readouterr().err


def test_admin_health_is_the_probe_a_container_runs(server: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "--server", server.address, "health"]) == 0  # no token: health is open
    assert capsys.readouterr().out.strip() == "SERVING"
    server.server.stop(0)
    assert main(["admin", "--server", server.address, "health"]) != 0
    assert "Traceback" not in capsys.readouterr().err
