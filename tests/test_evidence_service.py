"""Evidence controls through the gRPC service: referral records with the client's ids, statistics that equal
the verdicts served, feedback that disables an entry, the flood guard's holds, and the auditor role."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from engine.audit.log import Finding, verify
from engine.evidence.flood import FloodSettings
from engine.evidence.referrals import ClientIds, schema_problems
from engine.matcher import QueryHashes
from grpc_api.auth import Role, TokenStore
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.media_hasher import MediaHasher
from hashing.pdq_hash import PdqHash
from tests.grpc_fixtures import BRIDGE, OTHER, Served, reason_of, serve

UNLISTED = QueryHashes(pdq=PdqHash(bytes(range(32)), 90))


def listed_pdq(upload: int = 0) -> QueryHashes:
    """The listed image's PDQ; `upload` n > 0 gives it the MD5 of a different file (a re-encoded copy)."""
    hashes = MediaHasher().hash_file(BRIDGE)
    return QueryHashes(pdq=hashes.pdq, md5=upload.to_bytes(16, "big") if upload else None)


def copies(count: int) -> list[tuple[str, QueryHashes]]:
    """`count` different copies of the listed image, each one PDQ bit away (repeats of one upload count once)."""
    listed = listed_pdq()
    assert listed.pdq is not None
    answer = []
    for n in range(1, count + 1):
        flipped = bytearray(listed.pdq.digest)
        flipped[n // 8] ^= 1 << (n % 8)
        answer.append((str(n), QueryHashes(pdq=PdqHash(bytes(flipped), 90), md5=n.to_bytes(16, "big"))))
    return answer


def with_auditor(tmp_path: Path, **config: object) -> tuple[Served, str]:
    served = serve(tmp_path, token_check_s=0.0, **config)
    return served, TokenStore.add(tmp_path / "tokens.json", "reader", Role.AUDITOR)


def refused(call: Callable[[], object]) -> str:
    """The reason code of a call that must fail (an export's stream is read to its end first)."""
    with pytest.raises(grpc.RpcError) as failure:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    return reason_of(failure.value)


def test_referrals_statistics_and_feedback_through_the_service(tmp_path: Path) -> None:
    served, reader = with_auditor(tmp_path, stats_min_cell=1)  # counts of one shown: a test of the counting
    try:
        with HashmatchClient(served.address, served.admin_token) as admin:
            changed = admin.change_settings("demo", action="refer")
            assert changed.version == 2 and changed.active
        with HashmatchClient(served.address, served.matcher_token) as client:
            first = client.match(BRIDGE.read_bytes(), upload_id="up-1", user_id="user-1").verdict
            assert first.decision == pb.MATCH
            answered = client.match_hashes(
                [("a", listed_pdq()), ("b", UNLISTED)], clients=[ClientIds("up-2", None), ClientIds("up-3", "u-3")]
            )
            assert [r.verdict.decision for r in answered.results] == [pb.MATCH, pb.NO_MATCH]
            assert client.match(OTHER.read_bytes()).verdict.decision == pb.NO_MATCH
        served_verdicts = 4
        pdq_entry = next(m.entry_id for m in first.matches if m.signal_type == "pdq")

        with HashmatchClient(served.address, reader) as auditor:
            records = [json.loads(line) for line in auditor.export_referrals()]
            assert len(records) == 2 and all(schema_problems(r) == [] for r in records)
            by_upload = {r["client"]["upload_id"]: r for r in records}
            full = by_upload["up-1"]
            assert full["client"] == {"upload_id": "up-1", "user_id": "user-1"} and full["absent"] == []
            assert {m["signal_type"] for m in full["matches"]} == {"pdq", "md5"}
            pdq_match = next(m for m in full["matches"] if m["signal_type"] == "pdq")
            assert (pdq_match["list"], pdq_match["list_version"], pdq_match["external_id"]) == ("demo", 2, "D-1")
            assert pdq_match["industry_classification"] == "A1" and pdq_match["list_source"] == "local"
            assert full["file"]["original_file_md5"] and full["reported_by"]["actor"] == "token:platform"
            edge = by_upload["up-2"]  # hashes from the edge, without a user id
            assert edge["client"]["user_id"] is None
            assert set(edge["absent"]) == {"user_id", "original_file_md5", "original_file_sha256"}

            by_decision = auditor.stats(["decision"], min_cell=1)
            counts = {cell.key["decision"]: cell.count for cell in by_decision.cells}
            assert counts == {"match": 2, "no_match": 2} and sum(counts.values()) == served_verdicts
            small = auditor.stats(["list", "decision"], min_cell=10)  # every cell here is smaller
            assert small.min_cell == 10 and len(small.cells) == 2
            assert all(c.suppressed and c.count == 0 for c in small.cells)
            # The ids were sent and are in the referrals (and the audit log), but in no statistic.
            secrets = ("up-1", "user-1", "up-2", "up-3", "u-3")
            assert {"up-1", "user-1", "up-2"} <= {v for r in records for v in r["client"].values()}
            every = auditor.stats(["day", "list", "classification", "signal_type", "decision", "variant"], min_cell=1)
            assert len(every.cells) == 3 and not any(secret in str(every) for secret in secrets)

            assert refused(lambda: auditor.status()) == "PERMISSION_DENIED"
            assert refused(lambda: auditor.match_hashes([("x", UNLISTED)])) == "PERMISSION_DENIED"
        with HashmatchClient(served.address, served.matcher_token) as client:
            assert refused(lambda: client.export_audit()) == "PERMISSION_DENIED"

        with HashmatchClient(served.address, served.admin_token) as admin:
            given = admin.give_feedback(
                "demo",
                pdq_entry,
                "false_positive",
                note="a stock photo",
                disable=True,
                referral_id=full["referral_id"],
                viewed=True,
            )
            assert given.disabled_version == 3
            assert refused(lambda: admin.give_feedback("demo", 999_999, "confirmed")) == "ENTRY_NOT_FOUND"
            assert refused(lambda: admin.give_feedback("demo", pdq_entry, "maybe")) == "INVALID_SETTING"
        with HashmatchClient(served.address, served.matcher_token) as client:
            after = client.match_hashes([("a", listed_pdq())]).results[0].verdict
            assert after.decision == pb.NO_MATCH  # the disabled entry no longer matches
        with HashmatchClient(served.address, reader) as auditor:
            audit = [json.loads(line) for line in auditor.export_audit()]
            feedback = [r for r in audit if r["kind"] == "feedback"]
            assert [(r["actor"], r["data"]["entry_id"], r["data"]["kind"]) for r in feedback] == [
                ("token:admin", pdq_entry, "false_positive")
            ]
            assert any(r["kind"] == "list_settings" and r["actor"] == "token:admin" for r in audit)
            viewed = next(json.loads(line) for line in auditor.export_referrals() if full["referral_id"] in line)
            assert viewed["file_viewed_by_person"] is True and viewed["viewed"]["by"] == "token:admin"
            returned = [json.loads(line) for line in auditor.export_feedback()]
            assert [(r["external_id"], r["kind"], r["disabled_version"]) for r in returned] == [
                ("D-1", "false_positive", 3)
            ]
    finally:
        served.server.stop(0)
    assert verify(tmp_path / "h.audit.jsonl").finding is Finding.OK


def test_a_flooding_entry_is_held_and_an_admin_releases_it(tmp_path: Path) -> None:
    served = serve(tmp_path, flood=FloodSettings(min_matches=20))
    state = served.server.state
    state.guard.active_s, state.guard.last_seen = 86_400, state.guard.clock()  # as though after a quiet day
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            calm = client.match_hashes(copies(5)).results
            assert {r.verdict.decision for r in calm} == {pb.MATCH}
            repeated = client.match_hashes([("a", listed_pdq())] * 30).results  # one upload, 30 times
            assert {r.verdict.decision for r in repeated} == {pb.MATCH}
            flood = client.match_hashes(copies(30)).results
            held = flood[-1].verdict
            assert held.decision == pb.NEEDS_REVIEW and "ENTRY_QUARANTINED" in held.reasons
            assert held.matches[0].quarantined
        assert state.metrics.held._value.get() == 1
        with HashmatchClient(served.address, served.admin_token) as admin:
            (entry,) = admin.held_entries().entries
            assert entry.list == "demo" and "baseline" in entry.detail
            assert admin.release_entry(entry.entry_id).entry_id == entry.entry_id
            assert refused(lambda: admin.release_entry(entry.entry_id)) == "ENTRY_NOT_FOUND"
            assert not admin.held_entries().entries
        with HashmatchClient(served.address, served.matcher_token) as client:
            again = client.match_hashes([("a", listed_pdq())]).results[0].verdict
            assert again.decision == pb.MATCH
    finally:
        served.server.stop(0)
    records = [json.loads(line) for line in (tmp_path / "h.audit.jsonl").read_text().splitlines()]
    actions = [(r["kind"], r["actor"]) for r in records if r["kind"].startswith("entry_")]
    assert actions == [("entry_held", "system:flood-guard"), ("entry_released", "token:admin")]


def test_a_hold_outlives_a_restart(tmp_path: Path) -> None:
    served = serve(tmp_path, flood=FloodSettings(min_matches=20))
    served.server.state.guard.active_s = 86_400
    served.server.state.guard.last_seen = served.server.state.guard.clock()
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            client.match_hashes(copies(30))
    finally:
        served.server.stop(0)
    from grpc_api.server import ServerConfig, start_server

    again = start_server(
        ServerConfig(db_path=tmp_path / "h.db", address="127.0.0.1:0", tokens_path=tmp_path / "tokens.json")
    )
    try:
        with HashmatchClient(f"127.0.0.1:{again.port}", served.matcher_token) as client:
            verdict = client.match_hashes([("a", listed_pdq())]).results[0].verdict
            assert verdict.decision == pb.NEEDS_REVIEW and verdict.matches[0].quarantined
    finally:
        again.stop(0)


def test_the_audit_service_keeps_its_floor_its_limit_and_its_word_on_times(tmp_path: Path) -> None:
    served, reader = with_auditor(tmp_path, stats_min_cell=5)
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            client.match_hashes(copies(3) + [("u", UNLISTED)] * 6)
            too_long = pb.HashQuery(client_id="x", metadata=pb.ClientMetadata(user_id="u" * 5000))
            assert (
                refused(
                    lambda: client.matcher.MatchHashes(
                        pb.MatchHashesRequest(queries=[too_long]), metadata=client.metadata, timeout=10
                    )
                )
                == "TOO_LARGE"
            )
        with HashmatchClient(served.address, reader) as auditor:
            asked = auditor.stats(["decision"], min_cell=1)  # below the server's floor: the floor applies
            assert asked.min_cell == 5
            cells = {c.key["decision"]: (c.count, c.suppressed) for c in asked.cells}
            assert cells == {"match": (0, True), "no_match": (6, False)}
            assert auditor.stats(["decision"], since="2999-01-01").cells == []
            assert refused(lambda: auditor.stats(["decision"], since="tomorrow")) == "USAGE"
            assert refused(lambda: auditor.export_audit(since="tomorrow")) == "USAGE"
            assert list(auditor.export_audit(since="2999-01-01T00:00:00+05:00")) == []
            assert len(list(auditor.export_audit(since="2000-01-01"))) >= 2
    finally:
        served.server.stop(0)


def test_audit_reads_beyond_the_limit_are_refused_not_queued() -> None:
    from grpc_api.errors import REASON_KEY
    from grpc_api.gate import Gate, Slots

    class RefusedError(Exception):
        pass

    class Context:
        def abort_with_status(self, status: grpc.Status) -> None:
            raise RefusedError(dict(status.trailing_metadata)[REASON_KEY])

    gate = Gate(None, Slots(4, 4), max_audit_calls=1)
    with (
        gate._audit_slot(Context()),
        pytest.raises(RefusedError, match="OVERLOADED"),
        gate._audit_slot(Context()),
    ):
        pass
    with gate._audit_slot(Context()):
        pass  # the slot came back


def test_a_referral_the_schema_refuses_is_kept_apart_and_exports_go_on(tmp_path: Path) -> None:
    served, reader = with_auditor(tmp_path)
    try:
        with HashmatchClient(served.address, served.admin_token) as admin:
            admin.change_settings("demo", action="refer")
        with HashmatchClient(served.address, served.matcher_token) as client:
            client.match_hashes(copies(1), clients=[ClientIds("fine")])
            import engine.evidence.referrals as referral_module

            original = referral_module.SCHEMA_ID
            referral_module.SCHEMA_ID = "hashmatch.referral/0"  # as a future field the schema lacked would
            try:
                client.match_hashes(copies(1), clients=[ClientIds("broken")])
            finally:
                referral_module.SCHEMA_ID = original
        with HashmatchClient(served.address, reader) as auditor:
            exported = [json.loads(line) for line in auditor.export_referrals()]
            assert [r["client"]["upload_id"] for r in exported] == ["fine"]
            kept = [json.loads(line) for line in auditor.export_audit() if '"referral_invalid"' in line]
            assert len(kept) == 1 and kept[0]["data"]["record"]["client"]["upload_id"] == "broken"
        assert served.server.state.metrics.errors.labels("REFERRAL_INVALID")._value.get() == 1
    finally:
        served.server.stop(0)


def test_a_hold_the_store_cannot_take_stays_queued_and_can_still_be_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.evidence import holds

    served = serve(tmp_path, flood=FloodSettings(min_matches=20), reload_interval_s=0.1)
    state = served.server.state
    state.guard.active_s, state.guard.last_seen = 86_400, state.guard.clock()

    def busy(*_: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(holds, "hold", busy)
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            assert client.match_hashes(copies(30)).results[-1].verdict.decision == pb.NEEDS_REVIEW
        assert not state.holds.save()  # the write fails: queued, not lost, and the call does not raise
        time.sleep(0.5)
        assert state._watcher is not None and state._watcher.is_alive()  # the watcher lives on
        with HashmatchClient(served.address, served.admin_token) as admin:
            (queued,) = admin.held_entries().entries
            assert "not yet written" in queued.detail
            assert admin.release_entry(queued.entry_id).entry_id == queued.entry_id
        monkeypatch.undo()
        assert state.holds.save() and holds.held_entries(state.store) == []  # the released hold is not written
        with HashmatchClient(served.address, served.matcher_token) as client:
            assert client.match_hashes([("a", listed_pdq())]).results[0].verdict.decision == pb.MATCH
    finally:
        served.server.stop(0)
