"""Registering the hashmatch.v1 services so that a malformed request is the caller's error, not the server's.

The generated `add_*Servicer_to_server` hand grpcio the messages' own parsers; a request that does not parse
(a truncated varint, deep unknown groups, invalid UTF-8 in a string) then fails inside grpcio, which logs a
traceback and answers INTERNAL. Here each parser is wrapped: a request that does not parse becomes a
`Malformed` value, which unary methods and MatchVideo answer with INVALID_ARGUMENT (MALFORMED_REQUEST) and
which MatchStream answers as one failed item while the stream goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from grpc_api.errors import abort
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.errors import ReasonCode

MALFORMED_DETAIL = "the request is not a valid hashmatch.v1 message"


class Malformed:
    """A request that could not be parsed."""


def _parser(message: type[Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except (DecodeError, RecursionError, ValueError):
            return Malformed()

    return parse


def _unary(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    def checked(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            abort(context, ReasonCode.MALFORMED_REQUEST, MALFORMED_DETAIL)
        return behaviour(request, context)

    return checked


def add_service(server: grpc.Server, service_name: str, servicer: object) -> None:
    """Register `servicer`'s methods for the hashmatch.v1 service `service_name` ("Matcher", "ListAdmin")."""
    service = pb.DESCRIPTOR.services_by_name[service_name]
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        parse = _parser(getattr(pb, method.input_type.name))
        serialize = getattr(pb, method.output_type.name).SerializeToString
        behaviour = getattr(servicer, method.name)
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(behaviour, parse, serialize)
        elif not method.client_streaming and not method.server_streaming:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(_unary(behaviour), parse, serialize)
        elif method.client_streaming:  # MatchVideo: its body refuses a Malformed chunk
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(behaviour, parse, serialize)
        elif method.server_streaming:  # the Audit service's exports
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(_unary(behaviour), parse, serialize)
        else:  # pragma: no cover - hashmatch.v1 has no such method
            raise ValueError(f"{service.full_name}/{method.name}: unsupported streaming kind")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
