"""Fair admission: one client's idle streams cannot lock out other clients, health checks or admins; idle
streams end; echoed metadata and a stream's unanswered bytes are bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_api.auth import Role, TokenStore
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.matcher_service import MAX_METADATA_BYTES, MatcherService, StreamLimits
from grpc_api.server import ConnectionLimits
from tests.grpc_fixtures import BRIDGE, FakeContext, Served, reason_of, serve

BRIDGE_BYTES = BRIDGE.read_bytes()


def _idle(release: threading.Event) -> Iterator[tuple[str, bytes]]:
    release.wait(30)
    return
    yield  # a generator that sends nothing until released


def test_idle_streams_of_one_token_leave_the_others_health_and_admin_alone(tmp_path: Path) -> None:
    served = serve(tmp_path)
    other = TokenStore.add(served.directory / "tokens.json", "other-platform", Role.MATCHER)
    release = threading.Event()
    try:
        with HashmatchClient(served.address, served.matcher_token) as greedy:
            streams = [greedy.match_stream(_idle(release)) for _ in range(64)]
            deadline = time.monotonic() + 10
            while sum(s.done() for s in streams) < 56 and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.05)
            refused = [s for s in streams if s.done()]  # type: ignore[attr-defined]
            assert len(refused) == 64 - 8  # the default: 8 streams per token
            for stream in refused:
                assert stream.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
                assert dict(stream.trailing_metadata())["hashmatch-reason"] == "TOO_MANY_STREAMS"  # type: ignore[attr-defined]
            time.sleep(1.1)  # the server rereads the token file at most once a second: the new token is known now
            with HashmatchClient(served.address, other) as client:
                assert client.match(BRIDGE_BYTES, timeout_s=10).verdict.decision == pb.MATCH
                health = health_pb2_grpc.HealthStub(client.channel)
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            with HashmatchClient(served.address, served.admin_token) as admin:
                assert admin.status().lists[0].name == "demo"
    finally:
        release.set()
        served.server.stop(1)


def test_an_idle_stream_is_ended_with_idle_timeout(tmp_path: Path) -> None:
    served = serve(tmp_path, stream=StreamLimits(idle_timeout_s=1.0))
    release = threading.Event()
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                list(client.match_stream(_idle(release)))
            assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            assert reason_of(caught.value) == "IDLE_TIMEOUT"
            assert time.monotonic() - started < 10
    finally:
        release.set()
        served.server.stop(1)


def test_echoed_metadata_is_capped(served: Served) -> None:
    big = "x" * (MAX_METADATA_BYTES + 1)
    with HashmatchClient(served.address, served.matcher_token) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.match(BRIDGE_BYTES, upload_id=big)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_of(caught.value) == "TOO_LARGE"
        request = pb.MatchRequest(client_id="m", media=BRIDGE_BYTES, metadata=pb.ClientMetadata(fields={"k": big}))
        (answer,) = client.matcher.MatchStream(iter([request]), metadata=client.metadata, timeout=10)
        assert answer.error.reason == "TOO_LARGE" and not answer.HasField("metadata")  # not echoed back


def test_a_stalled_reader_pins_at_most_the_byte_window(served: Served) -> None:
    """Items of 1 MB with a 3 MB byte window: the server reads at most 3 ahead, though 32 items would fit."""
    pulled = [0]
    padding = b"\0" * (1 << 20)

    def endless() -> Iterator[pb.MatchRequest]:
        for i in range(200):
            pulled[0] += 1
            yield pb.MatchRequest(client_id=str(i), media=BRIDGE_BYTES + padding)

    with ThreadPoolExecutor(4) as pool:
        service = MatcherService(served.server.state, pool, StreamLimits(window_bytes=3 << 20))
        answers = service.MatchStream(endless(), FakeContext())
        next(answers)  # gRPC takes one answer, then the reader stops reading
        time.sleep(1.5)
        assert pulled[0] <= 4, pulled[0]
        answers.close()


def test_connection_management_reaches_grpc() -> None:
    options = dict(ConnectionLimits(max_connection_age_s=5, keepalive_time_s=30).options())
    assert options["grpc.max_connection_age_ms"] == 5000
    assert options["grpc.keepalive_time_ms"] == 30000
    assert options["grpc.http2.max_ping_strikes"] == 2
    assert options["grpc.max_connection_idle_ms"] > 0


def test_connections_older_than_the_maximum_age_are_replaced_without_failing_calls(tmp_path: Path) -> None:
    served = serve(tmp_path, connections=ConnectionLimits(max_connection_age_s=1, max_connection_age_grace_s=1))
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            for _ in range(6):
                assert client.match(BRIDGE_BYTES, timeout_s=10).verdict.decision == pb.MATCH
                time.sleep(0.5)
    finally:
        served.server.stop(1)
