"""The evidence commands on the local store and through a server: feedback, held entries, statistics and
referral exports, with their errors and the audit records they leave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from engine.audit.log import Finding, export, verify
from engine.evidence import holds
from engine.evidence.prevalence import PrevalenceCounters
from engine.lists import ListAction, ListSettings
from engine.matcher import Matcher, QueryHashes
from engine.store import Store
from grpc_api.auth import Role, TokenStore
from grpc_api.client import HashmatchClient
from hashing.pdq_hash import PdqHash
from tests.grpc_fixtures import BRIDGE, serve

LISTED = bytes(range(1, 33))


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    listing = tmp_path / "list.csv"
    listing.write_text(f"hash,type,id,classification\n{LISTED.hex()},pdq,X-1,A1\n{'cd' * 32},pdq,X-2,B1\n")
    options = ["--db", str(tmp_path / "h.db")]
    assert main(["lists", "import", str(listing), "--list", "ncmec", "--action", "refer", *options]) == 0
    capsys.readouterr()
    return options


def entry_of(options: list[str], external_id: str) -> int:
    with Store(options[1]) as store:
        return next(e.entry_id for e in store.entries("ncmec") if e.external_id == external_id)


def test_feedback_on_the_local_store_disables_and_exports(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = entry_of(db, "X-1")
    code, out, _ = run(capsys, ["feedback", "give", "ncmec", str(target), "--false-positive", "--disable", *db])
    assert code == 0 and "disabled in version 2, now active" in out
    with Store(db[1]) as store:
        assert Matcher.from_store(store).match(QueryHashes(pdq=PdqHash(LISTED, 90))).decision.value == "no_match"
    code, out, _ = run(capsys, ["feedback", "export", "--false-positives", *db])
    assert code == 0 and out.splitlines()[1].startswith(f"ncmec,X-1,pdq,{LISTED.hex()},false_positive")
    code, out, _ = run(capsys, ["feedback", "export", "--format", "json", "--list", "other", *db])
    assert code == 0 and out == ""
    records = list(export(tmp_path / "h.audit.jsonl"))
    given = [r for r in records if r["kind"] == "feedback"]
    assert len(given) == 1 and given[0]["actor"].startswith("os:") and given[0]["data"]["entry_id"] == target
    assert verify(tmp_path / "h.audit.jsonl").finding is Finding.OK

    code, _, err = run(capsys, ["feedback", "give", "ncmec", "424242", "--confirmed", *db])
    assert code == 1 and "ENTRY_NOT_FOUND" in err and "Traceback" not in err
    code, _, err = run(capsys, ["feedback", "give", "ncmec", str(target), "--confirmed", "--disable", *db])
    assert code == 2 and "USAGE" in err
    code, _, err = run(capsys, ["feedback", "give", "ncmec", str(target), "--confirmed", "--viewed", *db])
    assert code == 2 and "--referral" in err


def test_held_entries_are_listed_and_released_with_an_audit_record(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = entry_of(db, "X-2")
    code, out, err = run(capsys, ["held", "ls", *db])
    assert code == 0 and out == "" and "no entry is held" in err
    with Store(db[1]) as store:
        holds.hold(store, target, "ncmec", "900 matches/h against 1/h")
    code, out, _ = run(capsys, ["held", "ls", "--json", *db])
    assert json.loads(out)["entry_id"] == target
    code, out, _ = run(capsys, ["held", "release", str(target), *db])
    assert code == 0 and f"entry {target} of 'ncmec' released" in out
    code, _, err = run(capsys, ["held", "release", str(target), *db])
    assert code == 1 and "ENTRY_NOT_FOUND" in err
    released = [r for r in export(tmp_path / "h.audit.jsonl") if r["kind"] == "entry_released"]
    assert [r["data"]["entry_id"] for r in released] == [target]


def test_stats_on_the_local_store_suppress_small_cells(db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with Store(db[1]) as store:
        matcher = Matcher.from_store(store)
        counters = PrevalenceCounters(store, day=lambda: "2026-12-03")
        counters.count(matcher.match_many([QueryHashes(pdq=PdqHash(LISTED, 90))] * 12))
        counters.count(matcher.match_many([QueryHashes(pdq=PdqHash(bytes.fromhex("cd" * 32), 90))] * 4))
        counters.flush()
    code, out, _ = run(capsys, ["stats", "--by", "day,classification", *db])
    assert code == 0 and out.splitlines() == ["day,classification,count", "2026-12-03,A1,12", "2026-12-03,B1,<10"]
    code, out, _ = run(capsys, ["stats", "--by", "decision", "--format", "json", "--min-cell", "1", *db])
    assert json.loads(out)["cells"] == [{"decision": "match", "count": 16, "suppressed": False}]
    code, out, _ = run(capsys, ["stats", "--since", "2026-12-04", *db])
    assert out == "day,count\n"
    code, _, err = run(capsys, ["stats", "--by", "upload_id", *db])
    assert code == 2 and "unknown dimension 'upload_id'" in err


def test_the_evidence_commands_through_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    served = serve(tmp_path, token_check_s=0.0, stats_min_cell=3)
    reader = TokenStore.add(tmp_path / "tokens.json", "reader", Role.AUDITOR)
    admin = ["--server", served.address, "--token", served.admin_token]
    try:
        code, out, _ = run(capsys, ["admin", *admin, "settings", "demo", "--action", "refer", "--threshold", "20"])
        assert code == 0 and "version 2 (settings) is active and served" in out
        code, _, err = run(capsys, ["admin", *admin, "settings", "demo", "--threshold", "300"])
        assert code == 1 and "INVALID_SETTING" in err
        code, _, err = run(capsys, ["admin", *admin, "settings", "demo"])
        assert code == 2 and "USAGE" in err
        with Store(tmp_path / "h.db") as store:
            assert store.latest_settings("demo") == ListSettings(threshold=20, action=ListAction.REFER)
        code, out, _ = run(capsys, ["admin", *admin, "settings", "demo", "--no-query-variants"])
        assert code == 0 and "version 3" in out
        code, out, _ = run(capsys, ["admin", *admin, "settings", "demo", "--query-variants"])
        assert code == 0 and "version 4" in out
        with Store(tmp_path / "h.db") as store:
            assert [v.settings.query_variants for v in store.versions("demo")] == [True, True, False, True]
        with HashmatchClient(served.address, served.matcher_token) as client:
            for i in range(3):
                client.match(BRIDGE.read_bytes(), upload_id=f"up-{i}")
        remote = ["--server", served.address, "--token", reader]
        code, out, _ = run(capsys, ["referrals", "export", "--format", "json", *remote])
        records = json.loads(out)
        assert code == 0 and sorted(r["client"]["upload_id"] for r in records) == ["up-0", "up-1", "up-2"]
        assert all(r["client"]["user_id"] is None and "user_id" in r["absent"] for r in records)
        code, out, _ = run(capsys, ["stats", "--by", "list,decision", "--min-cell", "1", *remote])
        assert out.splitlines() == ["list,decision,count", "demo,match,3"]  # the server's floor is 3
        code, out, _ = run(capsys, ["stats", "--by", "list,decision", "--min-cell", "4", *remote])
        assert out.splitlines() == ["list,decision,count", "demo,match,<4"]
        code, out, _ = run(capsys, ["audit", "export", *remote])
        assert code == 0 and sum(json.loads(line)["kind"] == "referral" for line in out.splitlines()) == 3
        code, _, err = run(capsys, ["held", "ls", *remote])  # an auditor reads, it does not administer
        assert code == 1 and "PERMISSION_DENIED" in err
        entry = str(records[0]["matches"][0]["entry_id"])
        reviewed = ["--referral", records[0]["referral_id"], "--viewed"]
        code, out, _ = run(capsys, ["feedback", "give", "demo", entry, "--confirmed", *reviewed, *admin])
        assert code == 0 and "marked confirmed" in out
        code, out, _ = run(capsys, ["referrals", "export", *remote])
        viewed = [json.loads(line)["file_viewed_by_person"] for line in out.splitlines()]
        assert sorted(viewed) == [False, False, True]
    finally:
        served.server.stop(0)


def test_a_delta_after_a_rollback_is_refused_until_the_latest_is_active(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delta = tmp_path / "delta.csv"
    delta.write_text(f"hash,type,id\n{'ef' * 32},pdq,X-3\n")
    assert main(["lists", "import", str(delta), "--list", "ncmec", "--mode", "delta", *db]) == 0
    assert main(["lists", "activate", "ncmec", "1", *db]) == 0  # rolled back: X-3 was a mistake
    capsys.readouterr()
    more = tmp_path / "more.csv"
    more.write_text(f"hash,type,id\n{'ab' * 32},pdq,X-4\n")
    code, _, err = run(capsys, ["lists", "import", str(more), "--list", "ncmec", "--mode", "delta", *db])
    assert code == 1 and "ROLLED_BACK" in err and "would undo the rollback" in err
    with Store(db[1]) as store:
        assert store.get_list("ncmec").active_version == 1 and store.latest_version("ncmec") == 2
    assert main(["lists", "activate", "ncmec", "2", *db]) == 0  # the latest, on purpose: then it builds on it
    assert main(["lists", "import", str(more), "--list", "ncmec", "--mode", "delta", *db]) == 0
