"""Who may call, and how much at once: authentication, roles and fair admission in one interceptor.

* Health checking and reflection are open, and never compete with matching: they take no slot.
* ListAdmin needs an admin token and takes no matching slot either, so an admin can always roll back.
* Audit (reading the evidence) needs an auditor or admin token, and takes no matching slot.
* Matcher calls need a matcher or admin token (an auditor reads, it does not match) and a slot: at most
  `max_calls` at once (more are refused with RESOURCE_EXHAUSTED, reason OVERLOADED, not queued), and at most
  `max_streams_per_token` open MatchStreams per token (TOO_MANY_STREAMS): one client's idle streams cannot
  lock the others out.
* `authorization` must appear once: two headers are refused rather than one of them picked.
Without a token source (--no-auth, loopback only) every caller is one client, "anonymous".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import grpc

from grpc_api.auth import Role, TokenSource
from grpc_api.errors import abort
from hashing.errors import ReasonCode

OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ADMIN_METHODS = "/hashmatch.v1.ListAdmin/"
AUDIT_METHODS = "/hashmatch.v1.Audit/"
STREAM_METHOD = "/hashmatch.v1.Matcher/MatchStream"
VIDEO_UPLOAD_METHOD = "/hashmatch.v1.Matcher/MatchVideo"  # an upload holds its slot as long as a stream
ANONYMOUS = "anonymous"
# The token name of the call a thread is serving: what the audit log records as the actor. Set before every
# authenticated handler runs (so never left over from an earlier call on the same thread).
CALLER: ContextVar[str] = ContextVar("hashmatch_caller", default=ANONYMOUS)


class Slots:
    """Matching calls in flight, in total and streams per token."""

    def __init__(self, max_calls: int, max_streams_per_token: int) -> None:
        self.max_calls = max_calls
        self.max_streams_per_token = max_streams_per_token
        self.calls = 0
        self.streams: Counter[str] = Counter()
        self._lock = threading.Lock()

    def enter(self, who: str, stream: bool) -> ReasonCode | None:
        """Take a slot; the reason when there is none."""
        with self._lock:
            if self.calls >= self.max_calls:
                return ReasonCode.OVERLOADED
            if stream and self.streams[who] >= self.max_streams_per_token:
                return ReasonCode.TOO_MANY_STREAMS
            self.calls += 1
            if stream:
                self.streams[who] += 1
        return None

    def leave(self, who: str, stream: bool) -> None:
        with self._lock:
            self.calls -= 1
            if stream:
                self.streams[who] -= 1
                if not self.streams[who]:
                    del self.streams[who]


class Gate(grpc.ServerInterceptor):
    def __init__(self, tokens: TokenSource | None, slots: Slots, max_audit_calls: int = 2) -> None:
        self.tokens = tokens
        self.slots = slots
        self.max_audit_calls = max_audit_calls
        # An export holds a thread from the reserve while it streams: a few at most, or readers would starve
        # health checks and an admin's rollback.
        self.audit_calls = threading.BoundedSemaphore(max_audit_calls)

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        method = str(details.method)
        if handler is None or method.startswith(OPEN_METHODS):
            return handler
        who, refusal = self._identify(details.invocation_metadata or (), method)
        if refusal is not None:
            return _refusing(handler, *refusal)
        if method.startswith(AUDIT_METHODS):
            return _as_caller(handler, who, self._audit_slot)
        if method.startswith(ADMIN_METHODS):
            return _as_caller(handler, who)
        return self._admitted(handler, who, stream=method in (STREAM_METHOD, VIDEO_UPLOAD_METHOD))

    def _identify(self, metadata: Any, method: str) -> tuple[str, tuple[ReasonCode, str] | None]:
        if self.tokens is None:
            return ANONYMOUS, None
        headers = [str(value) for key, value in metadata if key == "authorization"]
        if len(headers) != 1:
            detail = "send one 'authorization: Bearer <token>' header" + (f", not {len(headers)}" if headers else "")
            return "", (ReasonCode.UNAUTHENTICATED, detail)
        scheme, _, token = headers[0].partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "", (ReasonCode.UNAUTHENTICATED, "send 'authorization: Bearer <token>'")
        record = self.tokens.current().authenticate(token.strip())
        if record is None:
            return "", (ReasonCode.UNAUTHENTICATED, "unknown or revoked token")
        allowed = _ROLES_OF.get(method.split("/")[1], (Role.MATCHER, Role.ADMIN))
        if record.role not in allowed:
            needed = " or ".join(role.value for role in allowed)
            return "", (ReasonCode.PERMISSION_DENIED, f"token {record.name!r} ({record.role}) lacks the {needed} role")
        return record.name, None

    @contextmanager
    def _audit_slot(self, context: grpc.ServicerContext) -> Iterator[None]:
        if not self.audit_calls.acquire(blocking=False):
            abort(context, ReasonCode.OVERLOADED, f"{self.max_audit_calls} audit reads are running already; retry")
        try:
            yield
        finally:
            self.audit_calls.release()

    def _admitted(self, handler: grpc.RpcMethodHandler, who: str, stream: bool) -> grpc.RpcMethodHandler:
        """The same handler, holding a slot while it runs (a stream: until its last answer is sent)."""
        slots = self.slots

        def take(context: grpc.ServicerContext) -> None:
            CALLER.set(who)
            refused = slots.enter(who, stream)
            if refused is ReasonCode.TOO_MANY_STREAMS:
                abort(context, refused, f"{slots.max_streams_per_token} streams are open for this token already")
            if refused is not None:
                abort(context, refused, f"the server is at its limit of {slots.max_calls} matching calls; retry")

        if handler.request_streaming and handler.response_streaming:

            def streaming(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
                take(context)
                try:
                    yield from handler.stream_stream(requests, context)
                finally:
                    slots.leave(who, stream)

            return _like(handler, stream_stream=streaming)

        if handler.request_streaming:

            def uploading(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                take(context)
                try:
                    return handler.stream_unary(requests, context)
                finally:
                    slots.leave(who, stream)

            return _like(handler, stream_unary=uploading)

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            take(context)
            try:
                return handler.unary_unary(request, context)
            finally:
                slots.leave(who, stream)

        return _like(handler, unary_unary=unary)


# Who may call each service (by its full name); anything else is the Matcher's.
_ROLES_OF = {
    ADMIN_METHODS.strip("/").split("/")[0]: (Role.ADMIN,),
    AUDIT_METHODS.strip("/").split("/")[0]: (Role.AUDITOR, Role.ADMIN),
}


def _as_caller(
    handler: grpc.RpcMethodHandler,
    who: str,
    slot: Callable[[grpc.ServicerContext], AbstractContextManager[None]] | None = None,
) -> grpc.RpcMethodHandler:
    """An admin or audit handler (unary, or an export's server stream) that runs with CALLER set to its
    token's name, holding `slot` (if any) while it runs."""
    held = slot or (lambda _context: nullcontext())
    if handler.response_streaming:

        def exporting(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            CALLER.set(who)
            with held(context):
                yield from handler.unary_stream(request, context)

        return grpc.unary_stream_rpc_method_handler(
            exporting, handler.request_deserializer, handler.response_serializer
        )

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        CALLER.set(who)
        with held(context):
            return handler.unary_unary(request, context)

    return _like(handler, unary_unary=unary)


def _like(handler: grpc.RpcMethodHandler, **behaviour: Any) -> grpc.RpcMethodHandler:
    """A handler with `handler`'s (de)serializers and the given behaviour."""
    if "stream_stream" in behaviour:
        return grpc.stream_stream_rpc_method_handler(
            behaviour["stream_stream"], handler.request_deserializer, handler.response_serializer
        )
    if "stream_unary" in behaviour:
        return grpc.stream_unary_rpc_method_handler(
            behaviour["stream_unary"], handler.request_deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        behaviour["unary_unary"], handler.request_deserializer, handler.response_serializer
    )


def _refusing(handler: grpc.RpcMethodHandler, reason: ReasonCode, detail: str) -> grpc.RpcMethodHandler:
    """A handler of the same streaming kind as `handler` that only refuses the call."""

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        abort(context, reason, detail)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, handler.request_deserializer, handler.response_serializer)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, handler.request_deserializer, handler.response_serializer)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, handler.request_deserializer, handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(refuse, handler.request_deserializer, handler.response_serializer)
