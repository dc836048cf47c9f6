"""Errors on the wire: every failed call carries its reason code twice, in the standard rich error model
(`grpc-status-details-bin`: a google.rpc.Status whose details hold an ErrorInfo with the reason and the
domain "hashmatch") and in the `hashmatch-reason` trailer, with a gRPC status chosen from the reason."""

from __future__ import annotations

from typing import Any, NamedTuple, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from hashing.errors import HashmatchError, ReasonCode

DOMAIN = "hashmatch"
REASON_KEY = "hashmatch-reason"

# The gRPC status of each reason code that is not plain bad input (INVALID_ARGUMENT).
_STATUS_OF_REASON = {
    ReasonCode.LIST_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ReasonCode.VERSION_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ReasonCode.ENTRY_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ReasonCode.AUDIT_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ReasonCode.REFERRAL_INVALID: grpc.StatusCode.FAILED_PRECONDITION,
    ReasonCode.LIST_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ReasonCode.NO_ACTIVE_LIST: grpc.StatusCode.FAILED_PRECONDITION,
    ReasonCode.LIST_WOULD_SHRINK: grpc.StatusCode.FAILED_PRECONDITION,
    ReasonCode.ROLLED_BACK: grpc.StatusCode.FAILED_PRECONDITION,
    ReasonCode.STORE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ReasonCode.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ReasonCode.TOO_MANY_STREAMS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ReasonCode.IDLE_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ReasonCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ReasonCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ReasonCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ReasonCode.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    ReasonCode.INTERNAL: grpc.StatusCode.INTERNAL,
}


def status_of(reason: ReasonCode) -> grpc.StatusCode:
    return _STATUS_OF_REASON.get(reason, grpc.StatusCode.INVALID_ARGUMENT)


class _Fields(NamedTuple):
    code: Any
    details: str
    trailing_metadata: Any


class _Status(_Fields, grpc.Status):
    """grpc.Status is an interface; this is its usual implementation (as grpc_status has one)."""


def rich_status(reason: ReasonCode, detail: str) -> grpc.Status:
    """The status a call fails with: code from the reason, google.rpc.Status details, reason trailer."""
    code = status_of(reason)
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason.value, domain=DOMAIN))
    standard = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=detail, details=[info]))
    return _Status(code, detail, (*standard.trailing_metadata, (REASON_KEY, reason.value)))


def abort(context: grpc.ServicerContext, reason: ReasonCode, detail: str) -> NoReturn:
    context.abort_with_status(rich_status(reason, detail))
    raise AssertionError("unreachable: abort_with_status raises")  # pragma: no cover


def abort_with(context: grpc.ServicerContext, error: HashmatchError) -> NoReturn:
    abort(context, error.reason, error.detail)


def reason_of_error(error: grpc.RpcError) -> str:
    """A client's view: the reason code a failed call carries ('' when it has none)."""
    trailers = dict(error.trailing_metadata() or ())
    return str(trailers.get(REASON_KEY, ""))
