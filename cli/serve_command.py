"""`hashmatch serve` and `hashmatch tokens add`: run the gRPC service, create API tokens."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, add_db_argument, fail
from engine.store import default_db_path
from grpc_api.auth import Role, TokenStore
from grpc_api.server import RunningServer, ServerConfig, serve_forever
from hashing.decode import DecodeLimits


def default_tokens_path(db: Path | None) -> Path:
    return (db or default_db_path()).with_name("tokens.json")


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gRPC matching service",
        description="Serve hashmatch.v1 (Matcher and ListAdmin), gRPC health checking and reflection. Clients "
        "authenticate with 'authorization: Bearer <token>' (create tokens with 'hashmatch tokens add').",
    )
    add_db_argument(serve)
    serve.add_argument("--address", default="127.0.0.1:50051", help="host:port to listen on (default: loopback)")
    serve.add_argument("--tokens", type=Path, help="token file (default: tokens.json beside the store)")
    serve.add_argument("--no-auth", action="store_true", help="accept calls without a token (loopback demos)")
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA (mTLS)")
    serve.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024)
    serve.add_argument("--max-concurrent-rpcs", type=int, default=64)
    serve.add_argument("--workers", type=int, default=16)
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    serve.add_argument("--list", dest="lists", action="append", default=[], help="serve only these lists")
    serve.add_argument("--max-pixels", type=int, default=DecodeLimits.max_pixels)
    serve.set_defaults(run=run_serve)

    tokens = commands.add_parser("tokens", help="manage API tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a token (printed once; only its SHA-256 is stored)")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MATCHER.value)
    add.add_argument("--tokens", type=Path, help="token file (default: tokens.json beside the store)")
    add_db_argument(add)
    add.set_defaults(run=run_tokens_add)


def run_tokens_add(args: argparse.Namespace) -> int:
    path = args.tokens or default_tokens_path(args.db)
    token = TokenStore.add(path, args.name, Role(args.role))
    print(token)
    print(f"token {args.name!r} ({args.role}) stored as a SHA-256 digest in {path}", file=sys.stderr)
    return EXIT_OK


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    tokens = None if args.no_auth else (args.tokens or default_tokens_path(args.db))
    if tokens is not None and len(TokenStore.load(tokens)) == 0:
        return fail(f"no API tokens in {tokens}: create one with 'hashmatch tokens add NAME', or pass --no-auth")
    config = ServerConfig(
        db_path=args.db or default_db_path(),
        address=args.address,
        tokens_path=tokens,
        max_message_bytes=args.max_message_bytes,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        workers=args.workers,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        metrics_port=args.metrics_port,
        lists=tuple(args.lists),
        decode_limits=DecodeLimits(max_pixels=args.max_pixels),
    )

    def ready(running: RunningServer) -> None:
        print(f"hashmatch serving on {config.address} (port {running.port}); Ctrl-C stops", file=sys.stderr)

    serve_forever(config, on_ready=ready)
    return EXIT_OK
