"""Talking to a `hashmatch serve` server from the command line: connection options and errors in the CLI's
own vocabulary (a failed call is `hashmatch: error: REASON: detail`, with the reason the server sent)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from grpc_api.client import HashmatchClient
from grpc_api.errors import reason_of_error
from hashing.errors import HashmatchError, ReasonCode

# Failures without a reason from the server (it was never reached): the transport's own status.
_UNREACHED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN}


def add_connection_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, required: bool) -> None:
    parser.add_argument(
        "--server", metavar="HOST:PORT", required=required, help="a 'hashmatch serve' server to send the work to"
    )
    parser.add_argument("--token", default=os.environ.get("HASHMATCH_TOKEN"), help="API token ($HASHMATCH_TOKEN)")
    parser.add_argument("--tls-ca", type=Path, help="CA certificate of the server (enables TLS)")
    parser.add_argument("--client-cert", type=Path, help="client certificate, for mutual TLS")
    parser.add_argument("--client-key", type=Path, help="client key, for mutual TLS")


@contextmanager
def connected(args: argparse.Namespace) -> Iterator[HashmatchClient]:
    """A client for the server the options name; gRPC failures leave as HashmatchError with their reason."""
    try:
        with HashmatchClient(args.server, args.token, args.tls_ca, args.client_cert, args.client_key) as client:
            yield client
    except grpc.RpcError as exc:
        raise rpc_error(args.server, exc) from None
    except OSError as exc:  # a certificate file that cannot be read
        raise HashmatchError(ReasonCode.UNREADABLE, f"{exc.filename}: {exc.strerror}") from None


def rpc_error(server: str, exc: grpc.RpcError) -> HashmatchError:
    """The server's own reason and words when it sent them (as the local command would say it), else what
    the transport says."""
    reason = reason_of_error(exc)
    code = exc.code()
    if reason in ReasonCode.__members__:
        return HashmatchError(ReasonCode(reason), str(exc.details()))
    if code in _UNREACHED:
        return HashmatchError(ReasonCode.SERVER_UNREACHABLE, f"{server}: cannot reach the server ({code.name})")
    return HashmatchError(ReasonCode.INTERNAL, f"{server}: {exc.details()} ({code.name})")
