"""Videos through the service: Match and MatchStream within the message size, MatchVideo in chunks for large
files, MatchHashes with edge-computed vPDQ hashes; verdicts carry the video evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from engine.importers.formats import read_records
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.media_query import video_query
from engine.signal_types.vpdq import VPDQ
from engine.signals import SignalType
from engine.store import Store
from grpc_api.client import DEFAULT_MESSAGE_BYTES, HashmatchClient
from grpc_api.convert import verdict_from_proto
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.video import VideoHasher, VideoLimits, VideoOptions
from hashing.vpdq import VpdqHash
from tests.grpc_fixtures import Served, reason_of, serve

VIDEOS = Path(__file__).resolve().parent / "data" / "vpdq"
LISTED = VIDEOS / "hashes" / "pattern-sd-grey-bar.txt"
COPY = VIDEOS / "videos" / "pattern-sd-with-small-logo-bar.mp4"
OTHER = VIDEOS / "videos" / "doorknob-hd-no-bar.mp4"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("video-server")
    running = serve(directory, video=VideoOptions(limits=VideoLimits(max_bytes=3 << 20)))
    with Store(directory / "h.db") as store:
        store.create_list(HashList("videos", SourceProgramme.NCMEC, frozenset({SignalType.VPDQ})))
        import_records(store, "videos", read_records(LISTED))
    running.server.state.reload()
    yield running
    running.server.stop(0)


def chunks(path: Path, size: int = 64 << 10) -> Iterator[bytes]:
    data = path.read_bytes()
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_listed_video_matches_by_unary_call_with_its_evidence(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        response = client.match(COPY.read_bytes(), client_id="v1")
        miss = client.match(OTHER.read_bytes(), client_id="v2")
    verdict = response.verdict
    assert verdict.decision == pb.MATCH
    (entry,) = verdict.matches
    assert (entry.list, entry.signal_type, entry.external_id) == ("videos", "vpdq", "pattern-sd-grey-bar")
    assert entry.video.rule == "threatexchange"
    assert entry.video.query_match_percent == 100.0
    assert len(entry.video.frame_pairs) == 5
    assert len(verdict.query.vpdq.frames) == 7  # one hash per second of a 6.9 s video
    assert miss.verdict.decision == pb.NO_MATCH
    # The evidence comes back as the engine gave it: the reference comparison of the same two videos.
    query = video_query(VideoHasher().hash_bytes(COPY.read_bytes())).others[SignalType.VPDQ]
    with LISTED.open() as lines:
        listed = VPDQ.value_of(VpdqHash.from_lines(lines))
    assert verdict_from_proto(verdict).matches[0].evidence == VPDQ.compare(query, listed, 31).evidence


def test_a_video_uploaded_in_chunks_matches_and_one_over_the_limit_is_refused(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        response = client.match_video(chunks(COPY), client_id="big", upload_id="u-7")
        assert (response.client_id, response.metadata.upload_id) == ("big", "u-7")
        assert response.verdict.decision == pb.MATCH
        strict = pb.MatchOptions(video_rule="cpp", video_compared_percent=100.0)
        assert client.match_video(chunks(COPY), options=strict).verdict.decision == pb.NO_MATCH
        too_big = (bytes(1 << 20) for _ in range(4))  # 4 MiB against the server's 3 MiB
        with pytest.raises(grpc.RpcError) as refused:
            client.match_video(too_big)
        assert reason_of(refused.value) == "TOO_LARGE"
        with pytest.raises(grpc.RpcError) as empty:
            client.match_video(iter(()))
        assert reason_of(empty.value) == "EMPTY_INPUT"
        with pytest.raises(grpc.RpcError) as bad:
            client.match_video(chunks(COPY), options=pb.MatchOptions(video_query_percent=150.0))
        assert reason_of(bad.value) == "USAGE"


def test_a_damaged_video_in_a_stream_gets_its_reason_and_the_stream_goes_on(served: Served) -> None:
    data = COPY.read_bytes()
    with HashmatchClient(served.address, served.matcher_token) as client:
        answers = {
            r.client_id: r
            for r in client.match_stream(
                [("cut", data[: len(data) // 2]), ("junk", data[:64] + bytes(5000)), ("ok", data)]
            )
        }
    assert answers["ok"].verdict.decision == pb.MATCH
    assert "VIDEO_TRUNCATED" in answers["cut"].verdict.reasons
    junk = answers["junk"].verdict
    assert junk.media_error.reason == "UNDECODABLE" and junk.decision == pb.NO_MATCH
    assert len(junk.query.md5) == 16  # still matched on its digests


def test_edge_hashed_vpdq_goes_through_match_hashes(served: Served) -> None:
    hashes = VideoHasher().hash_bytes(COPY.read_bytes())
    with HashmatchClient(served.address, served.matcher_token) as client:
        response = client.match_hashes([("edge", video_query(hashes))])
        (result,) = response.results
        assert result.verdict.decision == pb.MATCH
        bad = pb.MatchHashesRequest(
            queries=[pb.HashQuery(hashes=pb.Hashes(vpdq=pb.VpdqHash(frames=[pb.VpdqFrame(pdq=b"short")])))]
        )
        with pytest.raises(grpc.RpcError) as refused:
            client._call(client.matcher.MatchHashes, bad)
        assert reason_of(refused.value) == "INVALID_HASH"


def test_the_remote_cli_uploads_a_video_over_the_message_size_in_chunks(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cli.remote_match
    from cli.main import main

    # Anything over 100 kB counts as too large for one message, so both videos take the upload path.
    monkeypatch.setattr(cli.remote_match, "MESSAGE_HEADROOM", DEFAULT_MESSAGE_BYTES - 100_000)
    server = ["--server", served.address, "--token", served.matcher_token]
    assert main(["match", *server, str(COPY), str(OTHER)]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(f"match,{COPY},videos:")
    assert second == f"no_match,{OTHER},"
    assert main(["match", *server, "--video-rule", "cpp", "--video-compared-percent", "100", str(COPY)]) == 0
    assert capsys.readouterr().out.startswith("no_match,")


def test_an_upload_holds_decode_budget_and_a_full_budget_refuses_it(tmp_path: Path) -> None:
    """Upload bytes are reserved from the server's decode budget as they arrive (twice: the chunks and their
    join), so many large uploads at once cannot exhaust memory: past the budget the upload is OVERLOADED."""
    small = serve(tmp_path, decode_memory_bytes=1 << 20, decode_wait_s=0.2)
    try:
        with HashmatchClient(small.address, small.matcher_token) as client:
            with pytest.raises(grpc.RpcError) as refused:
                client.match_video(chunks(COPY))  # 1.1 MB, reserved twice, against 1 MiB
            assert reason_of(refused.value) == "OVERLOADED"
            assert small.server.state.budget.in_use == 0  # all given back
    finally:
        small.server.stop(0)


def test_a_caller_s_deadline_bounds_the_video_hashing() -> None:
    from hashing.errors import MediaError, ReasonCode

    with pytest.raises(MediaError) as late:
        VideoHasher().hash_bytes(COPY.read_bytes(), deadline_s=1e-6)
    assert late.value.reason is ReasonCode.DECODE_TIMEOUT
