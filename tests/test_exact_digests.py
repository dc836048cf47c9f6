"""Every input is matched on MD5/SHA-1/SHA-256 of its bytes, also when it cannot be decoded for PDQ."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli.main import main
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.decode import DecodeLimits, DecodeOptions
from hashing.media_hasher import HashOptions, MediaHasher
from tests.conformance import ROOT
from tests.grpc_fixtures import Served

BRIDGE = ROOT / "pdq/data/bridge-mods/aaa-orig.jpg"
# Not an image: the start of an ISO media file (as a video upload begins), then benign filler.
VIDEO_LIKE = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40


def _list_digests(tmp_path: Path, lines: list[str]) -> list[str]:
    db = ["--db", str(tmp_path / "h.db")]
    listing = tmp_path / "list.csv"
    listing.write_text("hash,type,id\n" + "".join(lines))
    assert main(["lists", "import", str(listing), "--list", "exact", *db]) == 0
    return db


def test_a_listed_md5_of_an_undecodable_file_matches_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(BRIDGE.read_bytes()[:20000])
    video = tmp_path / "clip.mp4"
    video.write_bytes(VIDEO_LIKE)
    md5 = hashlib.md5(truncated.read_bytes()).hexdigest()
    sha256 = hashlib.sha256(VIDEO_LIKE).hexdigest()
    db = _list_digests(tmp_path, [f"{md5},md5,N-1\n", f"{sha256},sha256,N-2\n"])
    capsys.readouterr()
    assert main(["match", str(truncated), str(video), *db]) == 1  # 1: neither could be hashed for PDQ
    captured = capsys.readouterr()
    first, second = captured.out.splitlines()
    assert first.startswith(f"match,{truncated},exact:") and first.endswith(":0 [UNDECODABLE]")
    # A file with a video's signature goes to the video decoder (vPDQ), which cannot read this one.
    assert second.startswith(f"match,{video},exact:") and second.endswith(":0 [UNDECODABLE]")
    assert [line.split(",")[:3] for line in captured.err.splitlines()] == [
        ["ERROR", "UNDECODABLE", str(truncated)],
        ["ERROR", "UNDECODABLE", str(video)],
    ]


def test_the_json_verdict_of_an_undecodable_file_carries_digests_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(VIDEO_LIKE)
    db = _list_digests(tmp_path, [f"{hashlib.sha1(VIDEO_LIKE).hexdigest()},sha1,N-3\n"])
    capsys.readouterr()
    main(["match", "--json", str(video), *db])
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["decision"] == "match" and verdict["reasons"] == ["UNDECODABLE"]
    assert verdict["query"]["pdq"] is None and verdict["query"]["md5"] == hashlib.md5(VIDEO_LIKE).hexdigest()
    assert verdict["matches"][0]["external_id"] == "N-3"


def test_files_over_the_byte_limit_are_digested_by_streaming(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(VIDEO_LIKE * 50)
    hasher = MediaHasher(HashOptions(decode=DecodeOptions(limits=DecodeLimits(max_bytes=4096))))
    outcome = hasher.outcome_of_file(big)
    assert outcome.hashes is None and outcome.error is not None and outcome.error.reason == "TOO_LARGE"
    data = big.read_bytes()
    assert outcome.digests.size == len(data)
    assert (outcome.digests.md5, outcome.digests.sha1, outcome.digests.sha256) == (
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def test_a_decodable_file_gets_both_its_pdq_and_its_digests(tmp_path: Path) -> None:
    outcome = MediaHasher().outcome_of_file(BRIDGE)
    assert outcome.error is None and outcome.hashes is not None
    assert outcome.digests.md5 == hashlib.md5(BRIDGE.read_bytes()).hexdigest()
    assert outcome.hashes.pdq.quality == 100


def test_the_service_matches_undecodable_uploads_on_their_digests(served: Served) -> None:
    truncated = BRIDGE.read_bytes()[:30000]
    entry = pb.Entry(hash=hashlib.md5(truncated).hexdigest(), signal_type="md5", external_id="N-7")
    with HashmatchClient(served.address, served.admin_token) as admin:
        admin.add_entries("demo", [entry])
    with HashmatchClient(served.address, served.matcher_token) as client:
        verdict = client.match(truncated).verdict
        streamed = next(iter(client.match_stream([("t", truncated)]))).verdict
    for answer in (verdict, streamed):
        assert answer.decision == pb.MATCH and list(answer.reasons) == ["UNDECODABLE"]
        assert [m.external_id for m in answer.matches] == ["N-7"]
