"""`hashmatch serve` and `hashmatch tokens add`: run the gRPC service, create API tokens.

Settings come from flags, else HASHMATCH_* environment variables, else a TOML file (`--config`), else the
defaults: `--max-concurrent-rpcs 32` is `HASHMATCH_MAX_CONCURRENT_RPCS=32` is `max_concurrent_rpcs = 32`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, EXIT_USAGE, fail
from engine.store import default_db_path
from grpc_api.auth import Role, TokenStore
from grpc_api.server import RunningServer, ServerConfig, serve_forever
from hashing.decode import DecodeLimits
from hashing.errors import ReasonCode

# setting -> (type, default, help)
SETTINGS: dict[str, tuple[Callable[[str], Any], Any, str]] = {
    "db": (Path, None, "SQLite store (default: $HASHMATCH_DB or the per-user path)"),
    "address": (str, "127.0.0.1:50051", "host:port to listen on (default: loopback only)"),
    "tokens": (Path, None, "token file (default: tokens.json beside the store)"),
    "tls_cert": (Path, None, "server certificate (PEM): enables TLS"),
    "tls_key": (Path, None, "server key (PEM)"),
    "tls_client_ca": (Path, None, "require client certificates signed by this CA (mutual TLS)"),
    "max_message_bytes": (int, 64 * 1024 * 1024, "largest request or response"),
    "max_concurrent_rpcs": (int, 64, "RPCs in progress at once; more get RESOURCE_EXHAUSTED"),
    "workers": (int, 16, "server threads"),
    "metrics_port": (int, None, "serve Prometheus metrics on 127.0.0.1:PORT"),
    "max_pixels": (int, DecodeLimits.max_pixels, "refuse larger images with TOO_LARGE"),
}


def default_tokens_path(db: Path | None) -> Path:
    return (db or default_db_path()).with_name("tokens.json")


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gRPC matching service",
        description="Serve hashmatch.v1 (Matcher and ListAdmin), gRPC health checking and reflection. Clients "
        "authenticate with 'authorization: Bearer <token>' (create tokens with 'hashmatch tokens add'). Every "
        "setting can also come from HASHMATCH_<NAME> or from a TOML --config file (flags win, then environment).",
    )
    serve.add_argument("--config", type=Path, help="TOML file with any of the settings below")
    for name, (kind, _, text) in SETTINGS.items():
        serve.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text)
    serve.add_argument("--no-auth", action="store_true", help="accept calls without a token (loopback demos)")
    serve.add_argument("--list", dest="lists", action="append", default=[], help="serve only these lists")
    serve.set_defaults(run=run_serve)

    tokens = commands.add_parser("tokens", help="manage API tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a token (printed once; only its SHA-256 is stored)")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MATCHER.value)
    add.add_argument("--tokens", type=Path, help="token file (default: tokens.json beside the store)")
    add.add_argument("--db", type=Path, default=None, help="the store the tokens sit beside")
    add.set_defaults(run=run_tokens_add)


def resolve_settings(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, Any]:
    """flags > HASHMATCH_* environment > --config TOML > defaults; unknown TOML keys are an error."""
    from_file: dict[str, Any] = {}
    if args.config is not None:
        from_file = tomllib.loads(args.config.read_text())
        unknown = set(from_file) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings in {args.config}: {', '.join(sorted(unknown))}")
    settings: dict[str, Any] = {}
    for name, (kind, default, _) in SETTINGS.items():
        flag = getattr(args, name)
        env = environ.get("HASHMATCH_" + name.upper())
        if flag is not None:
            settings[name] = flag
        elif env is not None:
            settings[name] = kind(env)
        elif name in from_file:
            settings[name] = kind(str(from_file[name])) if kind is Path else from_file[name]
        else:
            settings[name] = default
    return settings


def run_tokens_add(args: argparse.Namespace) -> int:
    path = args.tokens or default_tokens_path(args.db)
    token = TokenStore.add(path, args.name, Role(args.role))
    print(token)
    print(f"token {args.name!r} ({args.role}) stored as a SHA-256 digest in {path}", file=sys.stderr)
    return EXIT_OK


def build_config(args: argparse.Namespace, environ: dict[str, str]) -> ServerConfig:
    settings = resolve_settings(args, environ)
    db = settings["db"] or default_db_path()
    tokens = None if args.no_auth else (settings["tokens"] or default_tokens_path(db))
    if tokens is not None and len(TokenStore.load(tokens)) == 0:
        raise ValueError(f"no API tokens in {tokens}: create one with 'hashmatch tokens add NAME', or pass --no-auth")
    return ServerConfig(
        db_path=db,
        address=settings["address"],
        tokens_path=tokens,
        max_message_bytes=settings["max_message_bytes"],
        max_concurrent_rpcs=settings["max_concurrent_rpcs"],
        workers=settings["workers"],
        tls_cert=settings["tls_cert"],
        tls_key=settings["tls_key"],
        tls_client_ca=settings["tls_client_ca"],
        metrics_port=settings["metrics_port"],
        lists=tuple(args.lists),
        decode_limits=DecodeLimits(max_pixels=settings["max_pixels"]),
    )


def run_serve(args: argparse.Namespace) -> int:
    try:
        config = build_config(args, dict(os.environ))
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        return fail(ReasonCode.INVALID_SETTING, str(exc), EXIT_USAGE)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    def ready(running: RunningServer) -> None:
        print(f"hashmatch serving on {config.address} (port {running.port}); Ctrl-C stops", file=sys.stderr)

    serve_forever(config, on_ready=ready)
    return EXIT_OK
