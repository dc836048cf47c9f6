"""Per-client API tokens with roles, stored hashed; a server interceptor that enforces them.

Tokens travel as `authorization: Bearer <token>` metadata. The token file holds only SHA-256 digests of
the tokens (JSON: [{"name": ..., "sha256": ..., "role": "matcher" | "admin"}]), so reading it does not
reveal a token. No token: UNAUTHENTICATED. A token whose role does not cover the method: PERMISSION_DENIED.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import grpc

HEALTH_AND_REFLECTION = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class Role(StrEnum):
    MATCHER = "matcher"
    ADMIN = "admin"  # everything a matcher may do, and list administration


@dataclass(frozen=True)
class TokenRecord:
    name: str
    sha256: str
    role: Role


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, records: list[TokenRecord]) -> None:
        self._by_digest = {r.sha256: r for r in records}

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        if not path.exists():
            return cls([])
        rows = json.loads(path.read_text())
        return cls([TokenRecord(r["name"], r["sha256"], Role(r["role"])) for r in rows])

    @staticmethod
    def add(path: Path, name: str, role: Role) -> str:
        """Create a token, store its digest, return the token (shown once)."""
        token = "hm_" + secrets.token_urlsafe(32)
        rows = json.loads(path.read_text()) if path.exists() else []
        rows = [r for r in rows if r["name"] != name] + [{"name": name, "sha256": digest(token), "role": role.value}]
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the file with owner-only permissions from the start, then renamed over it: readers
        # never see a half-written file, and it is never readable by others.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps(rows, indent=2))
        os.replace(temporary, path)
        return token

    def authenticate(self, token: str) -> TokenRecord | None:
        wanted = digest(token)
        for stored, record in self._by_digest.items():
            if hmac.compare_digest(stored, wanted):
                return record
        return None

    def __len__(self) -> int:
        return len(self._by_digest)


def required_role(method: str) -> Role | None:
    """The role a fully qualified method needs; None for health checking and reflection (open)."""
    if method.startswith(HEALTH_AND_REFLECTION):
        return None
    if method.startswith("/hashmatch.v1.ListAdmin/"):
        return Role.ADMIN
    return Role.MATCHER


def _denied(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, detail: str) -> grpc.RpcMethodHandler:
    """A handler of the same streaming kind as `handler` that only refuses the call."""

    def deny(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, detail)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        needed = required_role(details.method)
        if needed is None or handler is None:
            return handler
        header = dict(details.invocation_metadata or ()).get("authorization", "")
        scheme, _, token = str(header).partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _denied(handler, grpc.StatusCode.UNAUTHENTICATED, "send 'authorization: Bearer <token>'")
        record = self.tokens.authenticate(token.strip())
        if record is None:
            return _denied(handler, grpc.StatusCode.UNAUTHENTICATED, "unknown token")
        if needed is Role.ADMIN and record.role is not Role.ADMIN:
            return _denied(handler, grpc.StatusCode.PERMISSION_DENIED, f"token {record.name!r} lacks the admin role")
        return handler
