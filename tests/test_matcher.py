"""Verdicts: perceptual and exact matches, thresholds, dihedral variants, quality gate, negative lists."""

from __future__ import annotations

import numpy as np
import pytest

from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, ListAction, SourceProgramme
from engine.matcher import MAX_NEAREST, Decision, Matcher, MatchScope, QueryHashes
from engine.signals import SignalType
from engine.store import Store
from hashing.errors import ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode
from tests.conformance import ROOT

BRIDGE = ROOT / "pdq/data/bridge-mods/aaa-orig.jpg"
ROTATED = ROOT / "pdq/data/reg-test-input/dih/bridge-2-rotate-90.jpg"
HASHER = MediaHasher(HashOptions(dihedral=DihedralMode.DCT))


def flipped(value: PdqHash, bits: int, quality: int = 100) -> PdqHash:
    raw = bytearray(value.digest)
    for bit in range(bits):
        raw[bit // 8] ^= 1 << (bit % 8)
    return PdqHash(bytes(raw), quality)


def store_with(*lists: tuple[HashList, str]) -> Store:
    store = Store(":memory:")
    for spec, csv_text in lists:
        store.create_list(spec)
        import_records(store, spec.name, records_from_text(csv_text, ImportFormat.CSV))
    return store


def spec(name: str, threshold: int = 31, action: ListAction = ListAction.REMOVE, negative: bool = False) -> HashList:
    return HashList(name, SourceProgramme.NCMEC, frozenset(SignalType), threshold, action, negative)


def test_match_carries_the_evidence() -> None:
    media = HASHER.hash_file(BRIDGE)
    assert media.digests is not None
    csv_text = f"hash,type,id,classification\n{media.pdq.hex()},pdq,N-1,A1\n{media.digests.md5},md5,N-1,A1\n"
    matcher = Matcher.from_store(store_with((spec("ncmec"), csv_text)))
    verdict = matcher.match(QueryHashes.of_media(media))
    assert verdict.decision is Decision.MATCH
    assert [(m.signal_type, m.external_id, m.classification, m.distance) for m in verdict.matches] == [
        (SignalType.PDQ, "N-1", "A1", 0),
        (SignalType.MD5, "N-1", "A1", 0),
    ]
    assert verdict.list_versions == {"ncmec": 1}
    record = verdict.to_dict()
    assert record["query"]["pdq"] == media.pdq.hex() and record["matches"][0]["dihedral_variant"] == "orig"


def test_rotated_upload_matches_through_its_dihedral_variant_only() -> None:
    original = HASHER.hash_file(BRIDGE).pdq
    matcher = Matcher.from_store(store_with((spec("ncmec"), f"hash,id\n{original.hex()},N-1\n")))
    rotated = QueryHashes.of_media(HASHER.hash_file(ROTATED))
    verdict = matcher.match(rotated)
    assert verdict.decision is Decision.MATCH and verdict.matches[0].dihedral_variant == "rot270"
    plain = matcher.match(QueryHashes(pdq=rotated.pdq))
    assert plain.decision is Decision.NO_MATCH


def test_threshold_is_per_list_and_inclusive() -> None:
    base = PdqHash.from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
    store = store_with(
        (spec("wide", threshold=31), f"hash\n{base.hex()}\n"), (spec("narrow", threshold=10), f"hash\n{base.hex()}\n")
    )
    matcher = Matcher.from_store(store)
    assert {m.list_name for m in matcher.match(QueryHashes(pdq=flipped(base, 10))).matches} == {"wide", "narrow"}
    assert {m.list_name for m in matcher.match(QueryHashes(pdq=flipped(base, 11))).matches} == {"wide"}
    assert matcher.match(QueryHashes(pdq=flipped(base, 31))).matches[0].distance == 31
    assert matcher.match(QueryHashes(pdq=flipped(base, 32))).decision is Decision.NO_MATCH


def test_quality_gate_skips_perceptual_matching_but_not_exact() -> None:
    media = HASHER.hash_file(BRIDGE)
    assert media.digests is not None
    csv_text = f"hash,type\n{media.pdq.hex()},pdq\n{media.digests.md5},md5\n"
    matcher = Matcher.from_store(store_with((spec("l"), csv_text)))
    low = QueryHashes(pdq=PdqHash(media.pdq.digest, 49), md5=bytes.fromhex(media.digests.md5))
    verdict = matcher.match(low)
    assert verdict.reasons == (ReasonCode.QUALITY_TOO_LOW,)
    assert [m.signal_type for m in verdict.matches] == [SignalType.MD5]
    assert matcher.match(QueryHashes(pdq=PdqHash(media.pdq.digest, 50))).matches
    assert matcher.match(QueryHashes(pdq=PdqHash(media.pdq.digest, None))).matches  # quality unknown: not gated


def test_negative_lists_suppress_perceptual_matches() -> None:
    base = PdqHash.from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
    store = store_with(
        (spec("ncmec"), f"hash,id\n{base.hex()},N-1\n"),
        (spec("known-fp", threshold=8, negative=True), f"hash,id\n{flipped(base, 3).hex()},FP-1\n"),
    )
    matcher = Matcher.from_store(store)
    verdict = matcher.match(QueryHashes(pdq=flipped(base, 5)))
    assert verdict.decision is Decision.NO_MATCH
    assert [m.list_name for m in verdict.suppressed] == ["ncmec"]
    assert [m.external_id for m in verdict.negative_matches] == ["FP-1"]
    far = matcher.match(QueryHashes(pdq=flipped(base, 20)))  # outside the negative list's threshold
    assert far.decision is Decision.MATCH and not far.suppressed


def test_a_negative_hit_farther_than_the_listed_entry_suppresses_nothing() -> None:
    base = PdqHash.from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
    negative_code = flipped(base, 31)
    store = store_with(
        (spec("ncmec"), f"hash,type,id\n{base.hex()},pdq,N-1\n{'ab' * 16},md5,N-2\n"),
        (spec("known-fp", negative=True), f"hash,type\n{negative_code.hex()},pdq\n{'cd' * 16},md5\n"),
    )
    matcher = Matcher.from_store(store)
    close = matcher.match(QueryHashes(pdq=base))  # 0 bits from the listed entry, 31 from the false positive
    assert close.decision is Decision.MATCH and [m.distance for m in close.negative_matches] == [31]
    exact_negative = matcher.match(QueryHashes(pdq=flipped(base, 2), md5=bytes.fromhex("cd" * 16)))
    assert exact_negative.decision is Decision.MATCH and not exact_negative.suppressed  # MD5 negatives do not suppress


def test_a_matcher_survives_its_list_being_deleted() -> None:
    base = PdqHash.from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
    store = store_with((spec("l"), f"hash,id\n{base.hex()},N-1\n"))
    matcher = Matcher.from_store(store)
    store.delete_list("l")
    verdict = matcher.match(QueryHashes(pdq=base))
    assert verdict.decision is Decision.MATCH and verdict.matches[0].external_id is None


def test_review_lists_give_needs_review() -> None:
    base = PdqHash.from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
    matcher = Matcher.from_store(store_with((spec("triage", action=ListAction.REVIEW), f"hash\n{base.hex()}\n")))
    assert matcher.match(QueryHashes(pdq=base)).decision is Decision.NEEDS_REVIEW


@pytest.mark.parametrize("size", [1, 2, 3])
def test_tiny_lists_match(size: int) -> None:
    """python-threatexchange returns nothing for a list of exactly one hash (ThreatExchange #1318)."""
    rng = np.random.default_rng(size)
    hashes = [PdqHash(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()) for _ in range(size)]
    matcher = Matcher.from_store(store_with((spec("l"), "hash\n" + "\n".join(h.hex() for h in hashes) + "\n")))
    for h in hashes:
        assert [m.distance for m in matcher.match(QueryHashes(pdq=flipped(h, 4))).matches] == [4]


def test_duplicate_hashes_report_every_owner_and_batches_equal_singles() -> None:
    base = PdqHash.from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
    matcher = Matcher.from_store(store_with((spec("l"), f"hash,id\n{base.hex()},A\n{base.hex()},B\n")))
    verdict = matcher.match(QueryHashes(pdq=base))
    assert sorted(m.external_id or "" for m in verdict.matches) == ["A", "B"]
    queries = [QueryHashes(pdq=flipped(base, k)) for k in (0, 10, 40)] + [QueryHashes()]
    batch = matcher.match_many(queries)
    singles = [matcher.match(q) for q in queries]
    assert [(v.decision, v.matches) for v in batch] == [(v.decision, v.matches) for v in singles]


def test_nearest_names_each_lists_closest_entries_whatever_the_threshold() -> None:
    base = HASHER.hash_file(BRIDGE).pdq
    far = [flipped(base, bits) for bits in (40, 50, 60, 70)]
    rows = "".join(f"{h.hex()},pdq,F-{i}\n" for i, h in enumerate(far))
    store = store_with(
        (spec("a", threshold=31), f"hash,type,id\n{rows}"),
        (spec("b", threshold=31), f"hash,type,id\n{flipped(base, 45).hex()},pdq,B-1\n"),
    )
    matcher = Matcher.from_store(store)
    query = QueryHashes(pdq=base)
    assert matcher.match(query).nearest is None and "nearest" not in matcher.match(query).to_dict()
    verdict = matcher.match_many([query], MatchScope(nearest=2))[0]
    assert verdict.decision is Decision.NO_MATCH and verdict.matches == ()  # near misses decide nothing
    assert verdict.nearest is not None
    assert [(m.list_name, m.external_id, m.distance) for m in verdict.nearest] == [
        ("a", "F-0", 40),
        ("b", "B-1", 45),
        ("a", "F-1", 50),
    ]
    assert [m["external_id"] for m in verdict.to_dict()["nearest"]] == ["F-0", "B-1", "F-1"]


def test_nearest_over_dihedral_variants_keeps_each_entry_at_its_closest_variant() -> None:
    media = HASHER.hash_file(ROTATED)  # the listed original is the rotated upload's rotate-270 variant
    original = HASHER.hash_file(BRIDGE).pdq
    rows = f"{original.hex()},pdq,ORIG\n{flipped(original, 90).hex()},pdq,FAR\n"
    matcher = Matcher.from_store(store_with((spec("a"), f"hash,type,id\n{rows}")))
    verdict = matcher.match_many([QueryHashes.of_media(media)], MatchScope(nearest=1))[0]
    assert verdict.nearest is not None and [m.external_id for m in verdict.nearest] == ["ORIG"]
    assert verdict.nearest[0].dihedral_variant == verdict.matches[0].dihedral_variant != "orig"


def test_nearest_is_bounded_and_skips_gated_queries() -> None:
    with pytest.raises(ValueError, match="nearest must be within"):
        MatchScope(nearest=MAX_NEAREST + 1)
    base = HASHER.hash_file(BRIDGE).pdq
    matcher = Matcher.from_store(store_with((spec("a"), f"hash,type,id\n{base.hex()},pdq,X\n")))
    low = QueryHashes(pdq=PdqHash(base.digest, 10))
    verdict = matcher.match_many([low], MatchScope(nearest=3))[0]
    assert verdict.nearest == () and ReasonCode.QUALITY_TOO_LOW in verdict.reasons
