"""Errors on the wire: the standard rich error model, malformed requests as INVALID_ARGUMENT, and the smaller
things a careful client notices (two authorization headers, reflection v1, per-request timing, sizes)."""

from __future__ import annotations

import logging
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status

from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode
from tests.grpc_fixtures import BRIDGE, Served, reason_of

BRIDGE_BYTES = BRIDGE.read_bytes()
# Bytes that are no MatchRequest: a length-delimited field cut short, a varint that never ends, a string
# field holding invalid UTF-8, and unknown groups nested far deeper than any parser allows.
MALFORMED = [
    b"\x12\xff\xff\x03abc",
    b"\x08" + b"\xff" * 11,
    b"\x0a\x02\xff\xfe",
    b"\x63" * 200_000,
]


def _raw_unary(client: HashmatchClient, method: str) -> grpc.UnaryUnaryMultiCallable:
    return client.channel.unary_unary(method, request_serializer=None, response_deserializer=None)


@pytest.mark.parametrize("payload", MALFORMED, ids=["cut", "varint", "utf8", "groups"])
def test_a_malformed_request_is_invalid_argument_with_a_reason_and_no_traceback(
    served: Served, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        call = _raw_unary(client, "/hashmatch.v1.Matcher/Match")
        with caplog.at_level(logging.ERROR), pytest.raises(grpc.RpcError) as caught:
            call(payload, metadata=client.metadata, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "MALFORMED_REQUEST"
    assert "Traceback" not in caplog.text and "Exception" not in caplog.text


def test_a_malformed_stream_item_gets_an_error_and_the_stream_goes_on(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        stream = client.channel.stream_stream("/hashmatch.v1.Matcher/MatchStream")
        good = pb.MatchRequest(client_id="good", media=BRIDGE_BYTES).SerializeToString()
        answers = [pb.MatchResponse.FromString(a) for a in stream(iter([MALFORMED[0], good]), metadata=client.metadata)]
    assert sorted(a.error.reason or a.client_id for a in answers) == ["MALFORMED_REQUEST", "good"]


def test_errors_carry_the_standard_rich_status(served: Served) -> None:
    with HashmatchClient(served.address, served.admin_token) as admin, pytest.raises(grpc.RpcError) as caught:
        admin.list_versions("no-such-list")
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("LIST_NOT_FOUND", "hashmatch")


def test_two_authorization_headers_are_refused(served: Served) -> None:
    with HashmatchClient(served.address, None) as client, pytest.raises(grpc.RpcError) as caught:
        headers = (("authorization", f"Bearer {served.matcher_token}"), ("authorization", "Bearer hm_other"))
        client.matcher.Match(pb.MatchRequest(media=BRIDGE_BYTES), metadata=headers, timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED and reason_of(caught.value) == "UNAUTHENTICATED"


def test_reflection_answers_under_v1_as_well_as_v1alpha(served: Served) -> None:
    with HashmatchClient(served.address, None) as client:
        for version in ("v1", "v1alpha"):
            call = client.channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            (answer,) = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
            names = {s.name for s in answer.list_services_response.service}
            assert {"hashmatch.v1.Matcher", "grpc.reflection.v1.ServerReflection"} <= names


def test_an_add_that_accepts_nothing_makes_no_version(served: Served) -> None:
    with HashmatchClient(served.address, served.admin_token) as admin:
        with pytest.raises(grpc.RpcError) as caught:
            admin.add_entries("demo", [pb.Entry(hash="not-a-hash")])
        assert reason_of(caught.value) == "NOTHING_ACCEPTED"
        assert [v.version for v in admin.list_versions("demo").versions] == [1]


def test_list_names_have_a_length_limit(served: Served) -> None:
    with HashmatchClient(served.address, served.admin_token) as admin, pytest.raises(grpc.RpcError) as caught:
        admin.import_list("x" * 201, b"ab" * 32 + b"\n")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_of(caught.value) == "INVALID_SETTING"


def test_each_verdict_carries_its_own_request_time(served: Served) -> None:
    """elapsed_ms is the time of the request it answers (decoding and hashing included), not a batch's
    average search time."""
    hasher = MediaHasher(HashOptions(dihedral=DihedralMode.DCT))
    hasher.hash_bytes(BRIDGE_BYTES)
    started = time.perf_counter()
    hasher.hash_bytes(BRIDGE_BYTES)
    hashing_ms = (time.perf_counter() - started) * 1e3
    with HashmatchClient(served.address, served.matcher_token) as client:
        client.match(BRIDGE_BYTES)  # warm
        media = client.match(BRIDGE_BYTES).verdict.elapsed_ms  # a 1600 x 1004 JPEG: decoded and hashed
        digest_only = client.match(b"not an image at all").verdict.elapsed_ms  # nothing to decode
    assert media >= 0.5 * hashing_ms and media > digest_only > 0


def test_nearest_beyond_its_bound_is_invalid_argument(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.match(BRIDGE_BYTES, options=pb.MatchOptions(nearest=1001))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and reason_of(caught.value) == "USAGE"
        verdict = client.match(BRIDGE_BYTES, options=pb.MatchOptions(nearest=1)).verdict
        assert [entry.distance for entry in verdict.nearest] == [0] and not verdict.nearest[0].negative
