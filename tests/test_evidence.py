"""Evidence and safety controls in the engine: flood quarantine on a simulated clock, referral records against
their schema, reviewers' feedback that disables an entry, and prevalence counters with small-cell suppression."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.audit.log import AuditLog
from engine.evidence.feedback import (
    FeedbackKind,
    exported,
    feedback_since,
    feedback_to_csv,
    feedback_to_json,
    give_feedback,
)
from engine.evidence.flood import FloodGuard, FloodSettings, Hold
from engine.evidence.prevalence import PrevalenceCounters, cells_to_csv, prevalence, total_served
from engine.evidence.referrals import (
    REFERRAL_KIND,
    SCHEMA_ID,
    ClientIds,
    first_schema_problem,
    referral_of,
    referrals,
    schema,
    schema_problems,
)
from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import ImportMode, import_records
from engine.lists import HashList, ListAction, ListSettings, SourceProgramme
from engine.matcher import Decision, FloodWatch, Matcher, QueryHashes, Verdict
from engine.signals import SignalType
from engine.store import Store
from hashing.errors import HashmatchError
from hashing.pdq_hash import PdqHash

RNG = np.random.default_rng(13)
LISTED = [bytes(RNG.integers(0, 256, 32, dtype=np.uint8)) for _ in range(4)]
REPORTER = {"host": "h", "actor": "token:t", "method": "Match"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "h.db") as opened:
        opened.create_list(HashList("csam", SourceProgramme.NCMEC, frozenset(SignalType), action=ListAction.REFER))
        rows = "".join(f"{value.hex()},pdq,E{i},A{i % 2 + 1}\n" for i, value in enumerate(LISTED))
        rows += f"{'ab' * 16},md5,M1,B1\n"
        import_records(opened, "csam", records_from_text("hash,type,id,classification\n" + rows, ImportFormat.CSV))
        yield opened


def query(i: int, md5: bytes | None = None) -> QueryHashes:
    return QueryHashes(pdq=PdqHash(LISTED[i], 90), md5=md5, sha256=bytes(range(32)))


def near(i: int, bit: int) -> QueryHashes:
    """A copy of listed image i whose PDQ differs by one bit (a re-encoded upload)."""
    flipped = bytearray(LISTED[i])
    flipped[bit // 8] ^= 1 << (bit % 8)
    return QueryHashes(pdq=PdqHash(bytes(flipped), 90))


def entry_id(store: Store, external_id: str) -> int:
    return next(e.entry_id for e in store.entries("csam") if e.external_id == external_id)


# ----- flood quarantine -----


UPLOADS = itertools.count()


def steady(guard: FloodGuard, clock: Clock, entry: int, per_s: float, seconds: float) -> list[Hold]:
    """Matches of `entry` at a steady rate, each by a different upload."""
    holds: list[Hold] = []
    step = 1.0 / per_s
    for _ in range(int(seconds * per_s)):
        clock.now += step
        holds += guard.observe([(entry, next(UPLOADS))])
    return holds


def test_steady_traffic_is_never_held_whatever_its_rate() -> None:
    for per_s in (0.02, 0.5, 5.0):
        clock = Clock()
        guard = FloodGuard(FloodSettings(), clock)
        assert steady(guard, clock, 7, per_s, 6 * 3600 if per_s < 1 else 3600) == []
        assert guard.held == frozenset()


def test_a_spike_over_the_baseline_holds_the_entry_within_the_spike() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(), clock)
    assert steady(guard, clock, 7, 0.01, 4 * 3600) == []  # 36 matches an hour for four hours
    assert steady(guard, clock, 8, 0.01, 3600) == []  # another entry at its own steady rate
    seconds = 0
    holds: list[Hold] = []
    while not holds and seconds < 120:  # then 5 a second, for at most two minutes
        holds, seconds = steady(guard, clock, 7, 5.0, 1), seconds + 1
    assert [h.entry_id for h in holds] == [7] and guard.held == {7}
    assert holds[0].recent_per_hour > 10 * holds[0].baseline_per_hour
    assert seconds <= 30, f"held only after {seconds} s of the spike"
    assert "baseline" in holds[0].detail


def test_a_new_entry_that_suddenly_matches_is_held_but_a_handful_of_matches_is_not() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(), clock)
    steady(guard, clock, 1, 0.2, 3600)  # the server has been watching for an hour
    assert steady(guard, clock, 2, 0.1, 200) == []  # 20 matches: under min_matches
    assert [h.entry_id for h in steady(guard, clock, 3, 2.0, 60)] == [3]


def test_a_released_entry_keeps_its_rate_as_its_new_baseline() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(), clock)
    steady(guard, clock, 1, 0.05, 12 * 3600)  # the guard has seen traffic for half a day
    assert steady(guard, clock, 5, 2.0, 60)
    assert guard.release(5) and not guard.release(5)
    assert steady(guard, clock, 5, 2.0, 1800) == []  # the same rate, accepted by a reviewer
    assert steady(guard, clock, 5, 60.0, 300)  # a jump far above it holds it again


def test_a_standby_or_drained_server_s_idle_hours_are_no_quiet_past() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(), clock)
    clock.now += 6 * 3600  # created, then idle (a standby server)
    assert steady(guard, clock, 4, 1.0, 3600) == []  # its traffic, when it comes, is steady
    clock.now += 30 * 3600  # drained for a day and more
    assert steady(guard, clock, 4, 1.0, 3600) == []  # and back at the same rate


def test_one_upload_repeated_is_one_match_until_the_window_has_passed() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(min_matches=5), clock)
    steady(guard, clock, 1, 0.2, 3600)
    for _ in range(100):
        clock.now += 0.1
        assert guard.observe([(6, "the same upload")] * 3) == []
    clock.now += 400  # past window_s: it counts again, once
    assert guard.observe([(6, "the same upload")]) == []
    assert [h.entry_id for h in guard.observe([(6, n) for n in range(10)])] == [6]  # ten different uploads


def test_the_store_s_holds_are_followed_without_losing_an_unwritten_one() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(), clock, held=[11])
    steady(guard, clock, 1, 0.2, 3600)
    assert steady(guard, clock, 5, 2.0, 60)  # held here, not yet in the store
    guard.sync([11, 12])  # the store: 11 as before, 12 held by another server
    assert guard.held == {5, 11, 12}
    guard.written(5)
    guard.sync([12])  # 5 and 11 released elsewhere
    assert guard.held == {12}
    assert steady(guard, clock, 5, 2.0, 600) == []  # 5's rate was accepted with its release


def test_a_switched_off_guard_holds_nothing_and_ignores_stored_holds() -> None:
    clock = Clock()
    guard = FloodGuard(FloodSettings(enabled=False), clock, held=[3])
    assert guard.held == frozenset()
    assert steady(guard, clock, 3, 50.0, 60) == [] and guard.held == frozenset()
    guard.sync([3, 4])
    assert guard.held == frozenset()


def test_entries_not_matched_for_weeks_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.evidence.flood.PRUNE_EVERY", 100)
    clock = Clock()
    guard = FloodGuard(FloodSettings(), clock)
    guard.observe((n, n) for n in range(50))
    clock.now += 8 * 7 * 86_400  # eight weeks on: e^-8 of one match is under the threshold
    steady(guard, clock, 99, 1.0, 150)  # 150 calls: a sweep at the 100th
    assert guard.tracked == 1


def test_settings_are_checked() -> None:
    with pytest.raises(HashmatchError) as refused:
        FloodSettings(multiple=1.0)
    assert refused.value.reason == "INVALID_SETTING"


def test_a_held_entry_decides_needs_review_and_says_why(store: Store) -> None:
    clock = Clock()
    holds: list[tuple[Hold, str]] = []
    guard = FloodGuard(FloodSettings(min_matches=5), clock)
    matcher = Matcher.from_store(store, flood=FloodWatch(guard, lambda hold, name: holds.append((hold, name))))
    for minute in range(60):  # an hour of quiet traffic: another entry matched once a minute
        clock.now += 60
        assert matcher.match(near(1, minute)).decision is Decision.MATCH
    verdicts: list[Verdict] = []
    for _ in range(4):
        clock.now += 0.5
        verdicts += matcher.match_many([query(0), replace(query(0), md5=bytes(16))])  # one picture, twice
    assert holds == []  # one upload: under min_matches (5)
    for bit in range(10):
        clock.now += 0.5
        verdicts += matcher.match_many([near(0, bit), near(0, bit + 100)])  # different copies of it
    assert [(h.entry_id, name) for h, name in holds] == [(entry_id(store, "E0"), "csam")]
    last = verdicts[-1]
    assert last.decision is Decision.NEEDS_REVIEW and last.reasons == ("ENTRY_QUARANTINED",)
    assert last.matches[0].quarantined and last.matches[0].to_dict()["quarantined"] is True
    assert matcher.match(query(1)).decision is Decision.MATCH  # only the flooding entry is held
    guard.release(entry_id(store, "E0"))
    assert matcher.match(query(0)).decision is Decision.MATCH
    assert referral_of(last, ClientIds(), "2026-12-03T00:00:00+00:00", REPORTER, {}) is None


# ----- referral records -----


def test_a_referral_carries_every_field_and_validates(store: Store) -> None:
    verdict = Matcher.from_store(store).match(query(0, md5=bytes.fromhex("ab" * 16)))
    record = referral_of(verdict, ClientIds("up-1", "user-9"), "2026-12-03T10:00:00+00:00", REPORTER, {"csam": "ncmec"})
    assert record is not None and schema_problems(record) == []
    assert record["file"] == {
        "original_file_md5": "ab" * 16,
        "original_file_sha256": bytes(range(32)).hex(),
        "pdq": LISTED[0].hex(),
        "pdq_quality": 90,
    }
    assert record["client"] == {"upload_id": "up-1", "user_id": "user-9"} and record["absent"] == []
    assert record["file_viewed_by_person"] is False and record["incident_time"] == "2026-12-03T10:00:00+00:00"
    by_type = {m["signal_type"]: m for m in record["matches"]}
    assert by_type["pdq"] | {"entry_id": 0} == {
        "list": "csam",
        "list_version": 1,
        "list_source": "ncmec",
        "entry_id": 0,
        "external_id": "E0",
        "industry_classification": "A1",
        "signal_type": "pdq",
        "distance": 0,
        "variant": None,
        "region": None,
    }
    assert by_type["md5"]["external_id"] == "M1" and by_type["md5"]["industry_classification"] == "B1"


def test_a_request_without_client_ids_gives_a_record_that_says_so(store: Store) -> None:
    verdict = Matcher.from_store(store).match(QueryHashes(pdq=PdqHash(LISTED[2], 90)))
    record = referral_of(verdict, ClientIds(upload_id=""), "2026-12-03T10:00:00+00:00", REPORTER, {})
    assert record is not None and schema_problems(record) == []
    assert record["client"] == {"upload_id": None, "user_id": None}
    assert set(record["absent"]) == {"upload_id", "user_id", "original_file_md5", "original_file_sha256"}
    assert record["file"]["original_file_md5"] is None


def test_the_schema_refuses_a_record_with_a_field_missing_or_invented(store: Store) -> None:
    verdict = Matcher.from_store(store).match(query(0))
    record = referral_of(verdict, ClientIds("u"), "2026-12-03T10:00:00+00:00", REPORTER, {})
    assert record is not None
    missing = {k: v for k, v in record.items() if k != "file_viewed_by_person"}
    assert any("file_viewed_by_person" in p for p in schema_problems(missing))
    invented = record | {"client": record["client"] | {"ip_address": "10.0.0.1"}}
    assert schema_problems(invented)
    wrong = record | {"matches": [record["matches"][0] | {"distance": -1}]}
    assert schema_problems(wrong)


def test_only_refer_lists_and_automatic_matches_make_referrals(store: Store) -> None:
    store.create_list(HashList("review", SourceProgramme.LOCAL, frozenset(SignalType), action=ListAction.REVIEW))
    import_records(store, "review", records_from_text(f"{'cd' * 32}\n", ImportFormat.PLAIN))
    matcher = Matcher.from_store(store)
    reviewed = matcher.match(QueryHashes(pdq=PdqHash(bytes.fromhex("cd" * 32), 90)))
    assert reviewed.decision is Decision.NEEDS_REVIEW
    assert referral_of(reviewed, ClientIds(), "2026-12-03T10:00:00+00:00", REPORTER, {}) is None
    unmatched = matcher.match(QueryHashes(pdq=PdqHash(bytes(range(32)), 90)))
    assert referral_of(unmatched, ClientIds(), "2026-12-03T10:00:00+00:00", REPORTER, {}) is None


def test_referrals_export_from_the_audit_log_with_viewings_and_since(store: Store, tmp_path: Path) -> None:
    verdict = Matcher.from_store(store).match(query(0))
    log_path = tmp_path / "a.audit.jsonl"
    made = [
        referral_of(verdict, ClientIds("u"), f"{day}T10:00:00+00:00", REPORTER, {"csam": "ncmec"})
        for day in ("2026-12-01", "2026-12-03")
    ]
    with AuditLog(log_path) as log:
        for made_record in made:
            assert made_record is not None
            log.append("token:t", REFERRAL_KIND, made_record)
        record = made[-1]
        assert record is not None
        log.append("os:alice", "feedback", {"referral_id": record["referral_id"], "viewed": True})
    exported = list(referrals(log_path, since="2026-12-02"))
    assert len(exported) == 1 and exported[0]["referral_id"] == record["referral_id"]
    assert exported[0]["file_viewed_by_person"] is True and exported[0]["viewed"]["by"] == "os:alice"
    assert len(list(referrals(log_path))) == 2


def test_referrals_written_under_schema_1_still_export_and_are_checked_against_it(store: Store, tmp_path: Path) -> None:
    """An audit log from before query variants holds version-1 records (`dihedral_variant`, no `region`)."""
    made = referral_of(
        Matcher.from_store(store).match(query(0)),
        ClientIds("u"),
        "2026-12-01T10:00:00+00:00",
        REPORTER,
        {"csam": "ncmec"},
    )
    assert made is not None
    old_matches = [
        {k: v for k, v in m.items() if k not in ("variant", "region")} | {"dihedral_variant": m["variant"]}
        for m in made["matches"]
    ]
    old = made | {"schema": "hashmatch.referral/1", "matches": old_matches}
    assert schema_problems(old) == [] and first_schema_problem(old) is None
    assert schema_problems(old | {"schema": SCHEMA_ID}) != []  # the current schema refuses the old shape
    log_path = tmp_path / "a.audit.jsonl"
    with AuditLog(log_path) as log:
        log.append("token:t", REFERRAL_KIND, old)
        log.append("token:t", REFERRAL_KIND, made)
    assert [r["schema"] for r in referrals(log_path)] == ["hashmatch.referral/1", SCHEMA_ID]


# ----- feedback -----


def test_a_false_positive_disables_its_entry_in_a_new_version(store: Store) -> None:
    target = entry_id(store, "E1")
    assert Matcher.from_store(store).match(query(1)).decision is Decision.MATCH
    given = give_feedback(store, "csam", target, FeedbackKind.FALSE_POSITIVE, "os:alice", "a logo", disable=True)
    assert given.disabled_version == 2 and store.get_list("csam").active_version == 2
    assert Matcher.from_store(store).match(query(1)).decision is Decision.NO_MATCH
    assert Matcher.from_store(store).match(query(0)).decision is Decision.MATCH  # the others stay
    rows = feedback_since(store, kind=FeedbackKind.FALSE_POSITIVE)
    assert [(r.entry_id, r.actor, r.external_id) for r in rows] == [(target, "os:alice", "E1")]
    sent_back = json.loads(feedback_to_json(exported(rows)))
    assert sent_back["external_id"] == "E1" and sent_back["hash"] == LISTED[1].hex() and "actor" not in sent_back
    assert "os:alice" not in feedback_to_csv(exported(rows)) and "a logo" in feedback_to_csv(exported(rows))


def test_feedback_is_refused_for_an_unknown_entry_or_a_confirmed_disable(store: Store) -> None:
    with pytest.raises(HashmatchError) as unknown:
        give_feedback(store, "csam", 999_999, FeedbackKind.CONFIRMED, "os:a")
    assert unknown.value.reason == "ENTRY_NOT_FOUND"
    with pytest.raises(HashmatchError) as confirmed:
        give_feedback(store, "csam", entry_id(store, "E0"), FeedbackKind.CONFIRMED, "os:a", disable=True)
    assert confirmed.value.reason == "USAGE" and store.get_list("csam").active_version == 1


# ----- prevalence -----


def test_prevalence_counts_each_verdict_once_and_suppresses_small_cells(store: Store) -> None:
    matcher = Matcher.from_store(store)
    counters = PrevalenceCounters(store, day=lambda: "2026-12-03")
    served = matcher.match_many([query(0)] * 12 + [query(1)] * 3 + [QueryHashes(pdq=PdqHash(bytes(32), 90))] * 15)
    counters.count(served)
    assert counters.flush() == 30 and counters.flush() == 0
    assert total_served(store) == 30
    cells = {tuple(c.key.values()): c.count for c in prevalence(store, ["list", "decision"])}
    assert cells == {("", "no_match"): 15, ("csam", "match"): 15}
    by_class = {tuple(c.key.values()): c.count for c in prevalence(store, ["classification", "variant"], k=10)}
    assert by_class == {("", ""): 15, ("A1", ""): 12, ("A2", ""): None}  # 3 verdicts: suppressed
    csv_text = cells_to_csv(prevalence(store, ["classification"], k=10), ["classification"], 10)
    assert "A2,<10" in csv_text
    assert prevalence(store, ["day"], since="2026-12-04") == []


def test_prevalence_refuses_unknown_dimensions(store: Store) -> None:
    with pytest.raises(HashmatchError) as refused:
        prevalence(store, ["user_id"])
    assert refused.value.reason == "USAGE" and "user_id" in refused.value.detail


def test_a_disable_or_a_settings_change_after_a_rollback_is_refused(store: Store) -> None:
    import_records(store, "csam", records_from_text(f"{'ee' * 32}\n", ImportFormat.PLAIN), mode=ImportMode.DELTA)
    store.activate("csam", 1)  # rolled back: version 2 added an entry by mistake
    target = entry_id(store, "E0")
    with pytest.raises(HashmatchError) as disabling:
        give_feedback(store, "csam", target, FeedbackKind.FALSE_POSITIVE, "os:a", disable=True)
    assert disabling.value.reason == "ROLLED_BACK" and "serves version 1" in disabling.value.detail
    with pytest.raises(HashmatchError) as setting:
        store.change_settings("csam", ListSettings(threshold=20))
    assert setting.value.reason == "ROLLED_BACK"
    assert store.get_list("csam").active_version == 1 and store.latest_version("csam") == 2
    assert give_feedback(store, "csam", target, FeedbackKind.FALSE_POSITIVE, "os:a").disabled_version is None


def test_the_compiled_schema_check_agrees_with_the_reference(store: Store) -> None:
    verdict = Matcher.from_store(store).match(query(0, md5=bytes.fromhex("ab" * 16)))
    record = referral_of(verdict, ClientIds("u", None), "2026-12-03T10:00:00+00:00", REPORTER, {"csam": "ncmec"})
    assert record is not None
    match = record["matches"][0]
    variants: list[dict[str, object]] = [
        record,
        {k: v for k, v in record.items() if k != "absent"},
        record | {"schema": "hashmatch.referral/1"},
        record | {"referral_id": "not hex"},
        record | {"incident_time": "yesterday"},
        record | {"file": record["file"] | {"pdq": "ab"}},
        record | {"file": record["file"] | {"pdq_quality": 101}},
        record | {"matches": []},
        record | {"matches": [match | {"signal_type": "tmk"}]},
        record | {"matches": [match | {"entry_id": 0}]},
        record | {"matches": [match | {"region": {"x": 0, "y": 0, "width": 0, "height": 5}}]},
        record | {"client": {"upload_id": "u" * 5000, "user_id": None}},
        record | {"client": record["client"] | {"ip": "10.0.0.1"}},
        record | {"absent": ["upload_id", "upload_id"]},
        record | {"file_viewed_by_person": "no"},
        record | {"viewed": {"by": "os:a"}},
    ]
    verdicts = [(first_schema_problem(v) is None, schema_problems(v) == []) for v in variants]
    assert verdicts[0] == (True, True)
    assert all(fast == reference for fast, reference in verdicts), verdicts
    assert sum(fast for fast, _ in verdicts) == 1  # every mutation is refused by both


def test_every_signal_type_can_be_referred() -> None:
    listed = {m for m in schema()["properties"]["matches"]["items"]["properties"]["signal_type"]["enum"]}
    assert listed == {signal.value for signal in SignalType}
