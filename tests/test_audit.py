"""The audit log: every way of tampering is detected at the first bad record, 100,000 records verify, and a
process killed in the middle of an append leaves a partial tail that is reported (and later recorded as
dropped) while every earlier record still verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.main import main
from engine.audit.log import AuditLog, AuditUnavailableError, Finding, export, verify
from engine.audit.records import match_rows

REPO = Path(__file__).resolve().parents[1]


def written(path: Path, count: int) -> list[bytes]:
    with AuditLog(path) as log:
        for n in range(count):
            log.append(f"token:t{n % 3}", "match", {"n": n, "decision": "no_match"})
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = written(path, 50)
    result = verify(path)
    assert (result.finding, result.records) == (Finding.OK, 50)
    assert result.head == json.loads(lines[-1])["hash"]
    assert [r["seq"] for r in export(path)] == list(range(1, 51))


def _changed(lines: list[bytes]) -> list[bytes]:
    return [*lines[:9], lines[9].replace(b'"no_match"', b'"match"'), *lines[10:]]


@pytest.mark.parametrize(
    ("how", "tamper", "bad_line"),
    [
        ("modified", _changed, 10),
        ("deleted", lambda lines: lines[:9] + lines[10:], 10),
        ("inserted", lambda lines: [*lines[:9], lines[3], *lines[9:]], 10),
        ("reordered", lambda lines: [*lines[:9], lines[10], lines[9], *lines[11:]], 10),
        ("replaced by junk", lambda lines: [*lines[:9], b"{}\n", *lines[10:]], 10),
    ],
)
def test_tampering_is_detected_at_the_first_bad_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, tamper: object, bad_line: int
) -> None:
    path = tmp_path / "audit.jsonl"
    lines = written(path, 30)
    rewrite(path, tamper(lines))  # type: ignore[operator]
    result = verify(path)
    assert (result.finding, result.line, result.records) == (Finding.TAMPERED, bad_line, bad_line - 1), how
    assert main(["audit", "verify", "--log", str(path)]) == 1
    assert f"AUDIT_TAMPERED: line {bad_line}" in capsys.readouterr().err


def test_a_changed_record_with_its_hash_recomputed_breaks_the_next_link(tmp_path: Path) -> None:
    from engine.audit.chain import AuditRecord, sealed_line

    path = tmp_path / "audit.jsonl"
    lines = written(path, 20)
    record = AuditRecord.from_line(lines[4].decode())
    forged, _ = sealed_line(
        record.seq, record.time, record.host, "token:someone-else", record.kind, record.data, record.prev
    )
    rewrite(path, [*lines[:4], forged.encode(), *lines[5:]])
    result = verify(path)
    assert (result.finding, result.line, result.seq) == (Finding.TAMPERED, 6, 6)


def test_a_hundred_thousand_records_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        for n in range(100_000):
            log.append("token:platform", "match", {"n": n, "pdq": "ab" * 32, "decision": "no_match"})
    result = verify(path)
    assert (result.finding, result.records) == (Finding.OK, 100_000)


def test_a_writer_killed_mid_append_leaves_a_partial_tail_that_is_reported_then_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    child = subprocess.Popen([sys.executable, "-m", "tests.audit_writer", str(path)], cwd=REPO)
    killed = False
    deadline = time.monotonic() + 60
    try:
        while not killed and time.monotonic() < deadline:
            size = path.stat().st_size if path.exists() else 0
            if size > 4096:  # past the small records: a 64 MiB line is being written
                with path.open("rb") as log:
                    log.seek(size - 1)
                    if log.read(1) != b"\n":  # caught in the middle of a write
                        os.kill(child.pid, signal.SIGKILL)
                        killed = True
    finally:
        child.kill()
        child.wait()
    assert killed, "the writer was never caught mid-write"
    result = verify(path)
    assert result.finding is Finding.PARTIAL_TAIL
    assert result.records >= 20  # every whole record before the torn one still verifies
    assert main(["audit", "verify", "--log", str(path)]) == 1
    assert "AUDIT_PARTIAL_TAIL" in capsys.readouterr().err

    with AuditLog(path) as log:  # the next writer cuts the tail off and says so in the chain
        log.append("token:test", "match", {"after": "restart"}, wait=True)
    after = verify(path)
    assert (after.finding, after.records) == (Finding.OK, result.records + 2)
    kinds = [r["kind"] for r in export(path)]
    assert kinds[-2:] == ["partial_tail_dropped", "match"]
    dropped = list(export(path))[-2]["data"]
    assert dropped["bytes"] > 0 and len(dropped["sha256"]) == 64


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    """A server and a `hashmatch lists` command beside it write one log: each batch under the file lock,
    after reading the head the other moved."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as server, AuditLog(path) as command:
        for n in range(200):
            (server if n % 3 else command).append("x", "match", {"n": n}, wait=n % 7 == 0)
    assert path.stat().st_mode & 0o777 == 0o600
    result = verify(path)
    assert (result.finding, result.records) == (Finding.OK, 200)


def test_a_damaged_last_record_stops_a_writer_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"not": "a record"}\n')
    with pytest.raises(AuditUnavailableError) as refused:
        AuditLog(path)
    assert "audit verify" in refused.value.detail


def test_export_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("os:alice", "list_import", {"list": "ncmec", "version": 1}, wait=True)
    assert main(["audit", "export", "--log", str(path), "--since", "2000-01-01"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["data"] == {"list": "ncmec", "version": 1}
    assert main(["audit", "export", "--log", str(path), "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "export", "--log", str(path), "--since", "yesterday"]) == 2


def test_the_server_audits_verdicts_and_admin_actions_with_the_token_s_name(tmp_path: Path) -> None:
    from grpc_api.client import HashmatchClient
    from tests.grpc_fixtures import BRIDGE, serve

    served = serve(tmp_path)
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            verdict = client.match(BRIDGE.read_bytes()).verdict
            list(client.match_stream([("a", BRIDGE.read_bytes())]))
        with HashmatchClient(served.address, served.admin_token) as admin:
            admin.import_list("extra", b"hash,type\n" + b"ab" * 16 + b",md5\n")
    finally:
        served.server.stop(0)
    path = tmp_path / "h.audit.jsonl"
    assert verify(path).finding is Finding.OK
    records = list(export(path))
    kinds = [(r["kind"], r["actor"]) for r in records]
    assert kinds[0] == ("server_started", "system") and kinds[-1] == ("server_stopped", "system")
    configuration = records[0]["data"]
    assert configuration["auth"] is True and configuration["flood"]["multiple"] == 10.0
    assert configuration["stats_min_cell"] == 10 and configuration["video_rule"] == "threatexchange"
    assert ("match", "token:platform") in kinds and ("list_import", "token:admin") in kinds
    matches = [r for r in records if r["kind"] == "match"]
    assert {r["data"]["method"] for r in matches} == {"Match", "MatchStream"}
    first = matches[0]["data"]
    (row,) = match_rows(first)
    assert row["pdq"] == verdict.query.pdq.digest.hex() and row["md5"] == verdict.query.md5.hex()
    assert row["decision"] == "match" and row["matches"][0][0] == "demo"
    assert first["list_versions"] == {"demo": 1}
    imported = next(r for r in records if r["kind"] == "list_import")["data"]
    assert (imported["list"], imported["version"], imported["added"]) == ("extra", 1, 1)


def test_list_commands_are_audited_with_the_operating_system_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    listing = tmp_path / "list.txt"
    listing.write_text("ab" * 32 + "\n")
    assert main(["lists", "import", str(listing), "--list", "demo", *db]) == 0
    assert main(["lists", "set", "demo", "--threshold", "20", *db]) == 0
    assert main(["lists", "activate", "demo", "1", *db]) == 0
    assert main(["lists", "export", "demo", "--out", str(tmp_path / "out.csv"), *db]) == 0
    listing.write_text("# nothing\n")
    assert main(["lists", "import", str(listing), "--list", "demo", *db]) == 1  # refused: nothing in it
    assert main(["lists", "rm", "demo", "--yes", *db]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", *db]) == 0
    records = list(export(tmp_path / "h.audit.jsonl"))
    assert [r["kind"] for r in records] == [
        "list_import",
        "list_settings",
        "list_activate",
        "list_export",
        "list_import_refused",
        "list_delete",
    ]
    assert all(r["actor"].startswith("os:") for r in records)
    assert records[0]["data"]["added"] == 1 and records[4]["data"]["reason"] == "NOTHING_ACCEPTED"


def test_a_closed_log_refuses_appends_instead_of_waiting_forever(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.close()
    log.close()  # twice: nothing happens
    with pytest.raises(AuditUnavailableError):
        log.append("x", "match", {}, wait=True)


def _rechained(lines: list[bytes], changed_at: int) -> list[bytes]:
    """What someone without the key could do: change a record, then rewrite every later link and hash."""
    from engine.audit.chain import GENESIS, AuditRecord, sealed_line

    out: list[bytes] = []
    head = GENESIS
    for n, raw in enumerate(lines):
        record = AuditRecord.from_line(raw.decode())
        data = {**record.data, "forged": True} if n == changed_at else record.data
        line, head = sealed_line(record.seq, record.time, record.host, record.actor, record.kind, data, head)
        out.append(line.encode())
    return out


def test_signed_checkpoints_catch_a_rewritten_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "audit.key"
    log = ["--log", str(tmp_path / "audit.jsonl")]
    assert main(["audit", "keygen", "--key", str(key)]) == 0
    assert main(["audit", "keygen", "--key", str(key)]) == 2  # never overwritten
    public = tmp_path / "audit.key.pub"
    written(tmp_path / "audit.jsonl", 10)
    assert main(["audit", "checkpoint", "--key", str(key), *log]) == 0
    with AuditLog(tmp_path / "audit.jsonl") as more:
        more.append("token:x", "match", {"n": 99}, wait=True)
    capsys.readouterr()
    assert main(["audit", "verify", *log, "--public-key", str(public)]) == 0
    assert "1 signed checkpoints verify, covering records 1-10" in capsys.readouterr().out

    path = tmp_path / "audit.jsonl"
    rewrite(path, _rechained(path.read_bytes().splitlines(keepends=True), changed_at=3))
    assert verify(path).finding is Finding.OK  # the chain alone cannot tell
    assert main(["audit", "verify", *log]) == 0
    assert main(["audit", "verify", *log, "--public-key", str(public)]) == 1
    assert "AUDIT_TAMPERED: checkpoint at seq 11: the head it signed is not the log's" in capsys.readouterr().err

    other = tmp_path / "other.key"
    assert main(["audit", "keygen", "--key", str(other)]) == 0
    assert main(["audit", "verify", *log, "--public-key", str(tmp_path / "other.key.pub")]) == 1
    assert "not signed by this key" in capsys.readouterr().err


def test_the_server_signs_checkpoints_periodically_and_at_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from grpc_api.client import HashmatchClient
    from tests.grpc_fixtures import BRIDGE, serve

    key = tmp_path / "audit.key"
    assert main(["audit", "keygen", "--key", str(key)]) == 0
    served = serve(tmp_path, audit_key=key, audit_checkpoint_s=0.2)
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            client.match(BRIDGE.read_bytes())
        time.sleep(0.5)
    finally:
        served.server.stop(0)
    capsys.readouterr()
    log = ["--log", str(tmp_path / "h.audit.jsonl"), "--public-key", str(tmp_path / "audit.key.pub")]
    assert main(["audit", "verify", *log]) == 0
    kinds = [r["kind"] for r in export(tmp_path / "h.audit.jsonl")]
    assert kinds.count("checkpoint") >= 2 and kinds[-1] == "checkpoint"  # periodic, and the last one at stop
    assert f"covering records 1-{len(kinds) - 1}" in capsys.readouterr().out
