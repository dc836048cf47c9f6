"""Integration tests against a real server on a loopback port."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from engine.matcher import QueryHashes
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode
from tests.grpc_fixtures import BRIDGE, OTHER, FakeContext, Served, make_certificates, reason_of, serve

BRIDGE_BYTES = BRIDGE.read_bytes()
OTHER_BYTES = OTHER.read_bytes()


def test_match_returns_the_verdict_and_passes_client_metadata_through(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        response = client.match(BRIDGE_BYTES, client_id="c-1", upload_id="u-9", region="eu")
        assert (response.client_id, response.metadata.upload_id, dict(response.metadata.fields)) == (
            "c-1",
            "u-9",
            {"region": "eu"},
        )
        verdict = response.verdict
        assert verdict.decision == pb.MATCH
        assert sorted((m.signal_type, m.external_id, m.distance) for m in verdict.matches) == [
            ("md5", "D-1", 0),
            ("pdq", "D-1", 0),
        ]
        assert dict(verdict.list_versions) == {"demo": 1}
        assert client.match(OTHER_BYTES).verdict.decision == pb.NO_MATCH


def test_hash_returns_exactly_the_local_hashes(served: Served) -> None:
    local = MediaHasher(HashOptions(dihedral=DihedralMode.PIXELS)).hash_file(BRIDGE)
    with HashmatchClient(served.address, served.matcher_token) as client:
        response = client.hash(BRIDGE_BYTES, dihedral=True)
        assert response.hashes.pdq.digest == local.pdq.digest and response.hashes.pdq.quality == 100
        assert [h.digest for h in response.hashes.dihedral] == [h.digest for h in local.dihedral]
        assert local.digests is not None and response.hashes.md5.hex() == local.digests.md5
        assert (response.width, response.height) == (1600, 1004)
        assert len(client.hash(BRIDGE_BYTES).hashes.dihedral) == 0


def test_match_hashes_for_edge_hashing_platforms(served: Served) -> None:
    local = MediaHasher().hash_file(BRIDGE)
    assert local.digests is not None
    queries = [
        ("pdq", QueryHashes(pdq=local.pdq)),
        ("md5", QueryHashes(md5=bytes.fromhex(local.digests.md5))),
        ("low", QueryHashes(pdq=PdqHash(local.pdq.digest, 10))),
        ("none", QueryHashes(pdq=PdqHash(bytes(range(32)), 100))),
    ]
    with HashmatchClient(served.address, served.matcher_token) as client:
        results = client.match_hashes(queries).results
        assert [r.client_id for r in results] == ["pdq", "md5", "low", "none"]
        assert [r.verdict.decision for r in results] == [pb.MATCH, pb.MATCH, pb.NO_MATCH, pb.NO_MATCH]
        assert list(results[2].verdict.reasons) == ["QUALITY_TOO_LOW"]
        bad = pb.MatchHashesRequest(queries=[pb.HashQuery(hashes=pb.Hashes(md5=b"short"))])
        with pytest.raises(grpc.RpcError) as caught:
            client.matcher.MatchHashes(bad, metadata=client.metadata)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_of(caught.value) == "INVALID_HASH"


def test_hostile_media_in_a_stream_gets_its_reason_and_the_stream_continues(served: Served) -> None:
    items = [
        ("good-1", BRIDGE_BYTES),
        ("empty", b""),
        ("random", os.urandom(4000)),
        ("truncated", BRIDGE_BYTES[: len(BRIDGE_BYTES) // 3]),
        ("good-2", OTHER_BYTES),
    ]
    with HashmatchClient(served.address, served.matcher_token) as client:
        responses = {r.client_id: r for r in client.match_stream(items)}
    assert set(responses) == {name for name, _ in items}
    assert responses["good-1"].verdict.decision == pb.MATCH
    assert responses["good-2"].verdict.decision == pb.NO_MATCH
    assert responses["empty"].error.reason == "EMPTY_INPUT"
    # Media that cannot be decoded is still matched on its digests; the verdict says why it has no PDQ.
    assert {name: list(responses[name].verdict.reasons) for name in ("random", "truncated")} == {
        "random": ["UNSUPPORTED_FORMAT"],
        "truncated": ["UNDECODABLE"],
    }
    assert not responses["truncated"].verdict.query.HasField("pdq")
    assert len(responses["truncated"].verdict.query.md5) == 16


def test_undecodable_media_in_a_unary_call_gets_a_verdict_with_its_reason(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        verdict = client.match(BRIDGE_BYTES[:5000]).verdict
    assert verdict.decision == pb.NO_MATCH and list(verdict.reasons) == ["UNDECODABLE"]
    with HashmatchClient(served.address, served.matcher_token) as client, pytest.raises(grpc.RpcError) as caught:
        client.match(b"")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_of(caught.value) == "EMPTY_INPUT"


def test_authentication_and_roles(served: Served) -> None:
    cases = [(None, grpc.StatusCode.UNAUTHENTICATED), ("hm_not-a-real-token", grpc.StatusCode.UNAUTHENTICATED)]
    for token, code in cases:
        with HashmatchClient(served.address, token) as client, pytest.raises(grpc.RpcError) as caught:
            client.match(BRIDGE_BYTES)
        assert caught.value.code() is code
    with HashmatchClient(served.address, None) as client, pytest.raises(grpc.RpcError) as caught:
        list(client.match_stream([("x", BRIDGE_BYTES)]))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with HashmatchClient(served.address, served.matcher_token) as client, pytest.raises(grpc.RpcError) as caught:
        client.status()
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with HashmatchClient(served.address, served.admin_token) as client:
        assert client.match(BRIDGE_BYTES).verdict.decision == pb.MATCH  # admins may match too
    assert served.matcher_token not in (served.directory / "tokens.json").read_text()  # stored hashed


def test_admin_import_versions_activate_and_status(served: Served) -> None:
    other = MediaHasher().hash_file(OTHER).pdq.hex()
    with HashmatchClient(served.address, served.admin_token) as admin:
        report = admin.import_list("demo", f"{other}\nnot-a-hash\n".encode(), mode="delta", activate=True)
        assert (report.version, report.added, report.total) == (2, 1, 3)
        assert [(r.line, r.reason) for r in report.rejects] == [(2, "BAD_LENGTH")]
        assert admin.match(OTHER_BYTES).verdict.decision == pb.MATCH
        assert [(v.version, v.active) for v in admin.list_versions("demo").versions] == [(1, False), (2, True)]
        assert dict(admin.activate("demo", 1).serving_versions) == {"demo": 1}
        assert admin.match(OTHER_BYTES).verdict.decision == pb.NO_MATCH
        status = admin.status().lists[0]
        # entries counts every signal type: the demo list holds the bridge's PDQ and its MD5
        assert (status.name, status.active_version, status.serving_version, status.entries) == ("demo", 1, 1, 2)
        with pytest.raises(grpc.RpcError) as caught:
            admin.activate("nope", 1)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_admin_adds_and_removes_entries(served: Served) -> None:
    other = MediaHasher().hash_file(OTHER).pdq.hex()
    with HashmatchClient(served.address, served.admin_token) as admin:
        added = admin.add_entries(
            "demo", [pb.Entry(hash=other, external_id="D-2", classification="B1"), pb.Entry(hash="xyz")]
        )
        assert (added.version, added.added, added.total) == (2, 1, 3)
        assert [r.reason for r in added.rejects] == ["BAD_LENGTH"]
        match = admin.match(OTHER_BYTES).verdict.matches[0]
        assert (match.external_id, match.classification) == ("D-2", "B1")
        removed = admin.remove_entries("demo", [pb.Entry(external_id="D-1")])
        assert (removed.version, removed.removed, removed.total) == (3, 2, 1)
        assert admin.match(BRIDGE_BYTES).verdict.decision == pb.NO_MATCH


def test_health_checking_and_reflection_need_no_token(served: Served) -> None:
    with grpc.insecure_channel(served.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
        request = health_pb2.HealthCheckRequest(service="hashmatch.v1.Matcher")
        assert health.Check(request).status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert {"hashmatch.v1.Matcher", "hashmatch.v1.ListAdmin", "grpc.health.v1.Health"} <= set(services)


def test_message_too_large_and_deadline_exceeded(tmp_path: Path) -> None:
    served = serve(tmp_path, max_message_bytes=1024 * 1024)
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            with pytest.raises(grpc.RpcError) as caught:
                client.match(b"\xff\xd8\xff" + os.urandom(2 * 1024 * 1024))
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as caught:
                client.match(BRIDGE_BYTES, timeout_s=0.0005)
            assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            assert client.match(BRIDGE_BYTES).verdict.decision == pb.MATCH  # the server is fine afterwards
    finally:
        served.server.stop(1)


def test_concurrency_limit_answers_resource_exhausted(tmp_path: Path) -> None:
    served = serve(tmp_path, max_concurrent_rpcs=2)
    release = threading.Event()

    def slow_items() -> Iterator[tuple[str, bytes]]:
        yield ("a", BRIDGE_BYTES)
        release.wait(10)

    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            streams = [client.match_stream(slow_items()) for _ in range(2)]
            for stream in streams:
                assert next(stream).verdict.decision == pb.MATCH  # both streams are now open and holding a slot
            with pytest.raises(grpc.RpcError) as caught:
                client.match(BRIDGE_BYTES)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            for stream in streams:
                assert list(stream) == []
            assert client.match(BRIDGE_BYTES).verdict.decision == pb.MATCH
    finally:
        release.set()
        served.server.stop(1)


def test_graceful_shutdown_drains_in_flight_streams(tmp_path: Path) -> None:
    served = serve(tmp_path)
    sent = threading.Event()

    def items() -> Iterator[tuple[str, bytes]]:
        for i in range(20):
            yield (f"item-{i}", BRIDGE_BYTES)
            if i == 5:
                sent.set()
                time.sleep(0.3)  # the shutdown starts while the stream is mid-way

    with HashmatchClient(served.address, served.matcher_token) as client:
        stream = client.match_stream(items())

        def stop_when_half_sent() -> None:
            sent.wait(10)
            served.server.stop(grace_s=20)

        stopper = threading.Thread(target=stop_when_half_sent)
        stopper.start()
        answers = [r.client_id for r in stream]
        stopper.join()
        assert sorted(answers) == sorted(f"item-{i}" for i in range(20))
        with pytest.raises(grpc.RpcError) as caught:
            client.match(BRIDGE_BYTES, timeout_s=2)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    (tmp_path / "tls").mkdir()
    tls = serve(tmp_path / "tls", tls_cert=certs.server_cert, tls_key=certs.server_key)
    try:
        with HashmatchClient(tls.address, tls.matcher_token, tls_ca=certs.ca) as client:
            assert client.match(BRIDGE_BYTES).verdict.decision == pb.MATCH
        with HashmatchClient(tls.address, tls.matcher_token) as plaintext, pytest.raises(grpc.RpcError) as caught:
            plaintext.match(BRIDGE_BYTES, timeout_s=3)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        tls.server.stop(1)
    (tmp_path / "mtls").mkdir()
    mtls = serve(tmp_path / "mtls", tls_cert=certs.server_cert, tls_key=certs.server_key, tls_client_ca=certs.ca)
    try:
        with HashmatchClient(
            mtls.address,
            mtls.matcher_token,
            tls_ca=certs.ca,
            client_cert=certs.client_cert,
            client_key=certs.client_key,
        ) as client:
            assert client.match(BRIDGE_BYTES).verdict.decision == pb.MATCH
        with (
            HashmatchClient(mtls.address, mtls.matcher_token, tls_ca=certs.ca) as no_cert,
            pytest.raises(grpc.RpcError) as caught,
        ):
            no_cert.match(BRIDGE_BYTES, timeout_s=3)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        mtls.server.stop(1)


class FileWriteAudit:
    """Records every file opened for writing, from any thread, while active (audit hooks stay installed)."""

    def __init__(self) -> None:
        self.active = False
        self.writes: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active or event != "open":
            return
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writing:
            self.writes.append(str(path))


AUDIT = FileWriteAudit()


def test_media_is_never_written_to_disk_or_logged(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    marker = MediaHasher().hash_file(BRIDGE).pdq.hex()
    AUDIT.writes.clear()
    AUDIT.active = True
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            client.match(BRIDGE_BYTES)
            list(client.match_stream([("a", BRIDGE_BYTES), ("b", b"junk")]))
            client.hash(BRIDGE_BYTES)
    finally:
        AUDIT.active = False
    assert AUDIT.writes == []
    logged = caplog.text
    assert "rpc" in logged and marker not in logged and BRIDGE_BYTES[200:240].hex() not in logged


def test_a_call_without_a_deadline_is_answered(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        request = pb.MatchRequest(client_id="no-deadline", media=BRIDGE_BYTES)
        response = client.matcher.Match(request, metadata=client.metadata)  # no timeout at all
        assert response.verdict.decision == pb.MATCH


def test_match_hashes_refuses_oversized_calls(served: Served) -> None:
    queries = [("q", QueryHashes(md5=b"\x00" * 16))] * 10_001
    with HashmatchClient(served.address, served.matcher_token) as client, pytest.raises(grpc.RpcError) as caught:
        client.match_hashes(queries)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_of(caught.value) == "TOO_LARGE"


def test_idle_streams_up_to_the_limit_do_not_starve_the_server(tmp_path: Path) -> None:
    """More open streams than the default 16 item workers: the limit, not a thread shortage, decides."""
    served = serve(tmp_path, max_concurrent_rpcs=20, max_streams_per_token=20)
    release = threading.Event()

    def idle() -> Iterator[tuple[str, bytes]]:
        release.wait(20)
        return
        yield  # a generator that sends nothing until released

    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            streams = [client.match_stream(idle()) for _ in range(20)]
            time.sleep(1.0)
            with pytest.raises(grpc.RpcError) as caught:
                client.match(BRIDGE_BYTES, timeout_s=5)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            for stream in streams:
                assert list(stream) == []
    finally:
        release.set()
        served.server.stop(1)


def test_a_stream_reads_at_most_its_window_ahead_of_what_it_has_sent(served: Served) -> None:
    """Server side of flow control: answers not yet taken by gRPC hold back the reading of requests."""
    from concurrent.futures import ThreadPoolExecutor

    from grpc_api.matcher_service import MatcherService, StreamLimits

    pulled = [0]

    def endless() -> Iterator[pb.MatchRequest]:
        for i in range(2000):
            pulled[0] += 1
            yield pb.MatchRequest(client_id=str(i), media=BRIDGE_BYTES)

    with ThreadPoolExecutor(4) as pool:
        limits = StreamLimits()
        service = MatcherService(served.server.state, pool, limits)
        answers = service.MatchStream(endless(), FakeContext())
        assert next(answers).verdict.decision == pb.MATCH  # gRPC takes one answer, then no more
        time.sleep(2.0)
        assert pulled[0] <= limits.window_items + 1, pulled[0]
        answers.close()


def test_stopping_mid_stream_leaves_no_thread_behind(tmp_path: Path) -> None:
    served = serve(tmp_path)

    def many() -> Iterator[tuple[str, bytes]]:
        for i in range(500):
            yield (f"item-{i}", BRIDGE_BYTES)

    with HashmatchClient(served.address, served.matcher_token) as client:
        stream = client.match_stream(many())
        next(stream)
        started = time.perf_counter()
        served.server.stop(grace_s=0.05)
        assert time.perf_counter() - started < 15
        with contextlib.suppress(grpc.RpcError):
            list(stream)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [t.name for t in threading.enumerate() if t.name.startswith(("hashmatch-stream", "hashmatch-batcher"))]
        if not left:
            break
        time.sleep(0.1)
    assert left == []


def test_transport_settings_that_would_be_less_secure_than_they_read_are_refused(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    from grpc_api.server import ServerConfig, ServerStartError, start_server

    for config in (
        ServerConfig(db_path=tmp_path / "a.db", address="127.0.0.1:0", tls_client_ca=certs.ca),
        ServerConfig(db_path=tmp_path / "a.db", address="127.0.0.1:0", tls_key=certs.server_key),
        ServerConfig(db_path=tmp_path / "a.db", address="0.0.0.0:0"),  # no tokens on every interface
    ):
        with pytest.raises(ServerStartError):
            start_server(config)
