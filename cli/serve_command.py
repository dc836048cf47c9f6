"""`hashmatch serve` and `hashmatch tokens add|rm|ls`: run the gRPC service, manage API tokens.

Settings come from flags, else HASHMATCH_* environment variables, else a TOML file (`--config`), else the
defaults: `--max-concurrent-rpcs 32` is `HASHMATCH_MAX_CONCURRENT_RPCS=32` is `max_concurrent_rpcs = 32`.
Every start-up failure is one line with its reason code; nothing listens until every check has passed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from cli.common import EXIT_OK, EXIT_USAGE, fail, store_path
from engine.audit.log import AuditLog, default_actor, default_audit_path
from engine.evidence.flood import FloodSettings
from engine.signal_types.vpdq import FrameRule, VpdqMatchOptions
from engine.store import default_db_path
from grpc_api.auth import Role, TokenStore
from grpc_api.matcher_service import StreamLimits
from grpc_api.server import ConnectionLimits, RunningServer, ServerConfig, serve_forever
from hashing.decode import DecodeLimits
from hashing.device import Device
from hashing.errors import HashmatchError, ReasonCode
from hashing.pdq_hasher import DihedralMode
from hashing.query_variants import VariantFamily, families_from
from hashing.video import VideoLimits, VideoOptions

MIB = 1 << 20


@dataclass(frozen=True)
class Setting:
    kind: Callable[[str], Any]
    default: Any
    help: str


def _on_off(text: str | bool) -> bool:
    """A boolean setting from a flag, the environment or TOML: true/false, yes/no, on/off, 1/0."""
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not true or false")


SETTINGS: dict[str, Setting] = {
    "db": Setting(Path, None, "SQLite store (default: $HASHMATCH_DB or the per-user path)"),
    "address": Setting(str, "127.0.0.1:50051", "HOST:PORT to listen on (default: loopback only)"),
    "tokens": Setting(Path, None, "token file (default: tokens.json beside the store)"),
    "tls_cert": Setting(Path, None, "server certificate (PEM): enables TLS"),
    "tls_key": Setting(Path, None, "server key (PEM)"),
    "tls_client_ca": Setting(Path, None, "require client certificates signed by this CA (mutual TLS)"),
    "max_message_bytes": Setting(int, 64 * MIB, "largest request or response"),
    "max_concurrent_rpcs": Setting(
        int, 64, "matching calls at once; more get RESOURCE_EXHAUSTED (health, admin: never)"
    ),
    "max_streams_per_token": Setting(int, 8, "open MatchStreams per token"),
    "workers": Setting(int, 16, "threads hashing stream items"),
    "metrics_port": Setting(int, None, "serve Prometheus metrics on 127.0.0.1:PORT"),
    "max_pixels": Setting(int, DecodeLimits.max_pixels, "refuse larger images with TOO_LARGE"),
    "decode_memory_mb": Setting(int, 1024, "decoded pixels in flight, all requests together (MiB)"),
    "stream_window_mb": Setting(int, 64, "request bytes one stream may have read but not yet answered (MiB)"),
    "stream_idle_timeout_s": Setting(float, 60.0, "end a stream that sends nothing for this long (seconds)"),
    "max_connection_age_s": Setting(float, 3600.0, "close connections gracefully after this long (seconds)"),
    "reload_interval_s": Setting(float, 2.0, "check the store for other processes' changes this often (seconds)"),
    "device": Setting(str, "auto", "auto (a GPU only after its self-test passed), cpu, or gpu"),
    "audit_log": Setting(Path, None, "the audit log (default: beside the store, NAME.audit.jsonl)"),
    "audit_key": Setting(Path, None, "Ed25519 private key (hashmatch audit keygen): signed checkpoints of the log"),
    "audit_checkpoint_s": Setting(float, 3600.0, "seconds between signed checkpoints (with audit_key)"),
    "max_video_mb": Setting(int, 512, "largest video upload (MatchVideo) held in memory (MiB); TOO_LARGE beyond"),
    "max_video_seconds": Setting(float, 4 * 3600.0, "refuse longer videos with VIDEO_TOO_LONG (seconds)"),
    "video_deadline_s": Setting(float, 300.0, "longest time to decode and hash one video (DECODE_TIMEOUT)"),
    "video_seconds_per_hash": Setting(float, 1.0, "hash one video frame every this many seconds (0: every frame)"),
    "video_rule": Setting(str, "threatexchange", "vPDQ frame rule: threatexchange (<= threshold) or cpp (<)"),
    "video_query_percent": Setting(float, 80.0, "share of a query video's frames that must match"),
    "video_compared_percent": Setting(float, 0.0, "share of a listed video's frames that must match"),
    "flood_quarantine": Setting(_on_off, True, "hold for review an entry whose match rate jumps (true/false)"),
    "flood_multiple": Setting(float, 10.0, "hold an entry matching this many times its baseline rate"),
    "flood_window_s": Setting(float, 300.0, "time constant of an entry's recent match rate (seconds)"),
    "flood_baseline_s": Setting(float, 7 * 86_400.0, "time constant of an entry's baseline match rate (seconds)"),
    "flood_min_matches": Setting(float, 30.0, "recent matches an entry needs before it can be held"),
    "flood_floor_per_hour": Setting(float, 1.0, "the least baseline an entry is held to (matches an hour)"),
    "stats_min_cell": Setting(int, 10, "smallest prevalence cell the Audit service shows (callers may only raise it)"),
    "max_audit_calls": Setting(int, 2, "Audit reads at once (exports hold a thread while they stream)"),
    "dihedral": Setting(str, "pixels", "rotations and flips hashed for every image: pixels (exact), dct or none"),
    "query_variants": Setting(
        str, "content_box,crop", "query variant families hashed for every image, comma-separated; none: off"
    ),
}


Choice = TypeVar("Choice", bound=StrEnum)


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
    for name, setting in SETTINGS.items():
        serve.add_argument("--" + name.replace("_", "-"), dest=name, type=setting.kind, default=None, help=setting.help)
    serve.add_argument("--no-auth", action="store_true", help="accept calls without a token (loopback demos)")
    serve.add_argument("--no-audit", action="store_true", help="keep no audit log (verdicts and admin actions)")
    serve.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="allow tokens over plaintext on a non-loopback address (a TLS proxy in front terminates TLS)",
    )
    serve.add_argument("--list", dest="lists", action="append", default=[], help="serve only these lists")
    serve.set_defaults(run=run_serve)

    tokens = commands.add_parser("tokens", help="manage API tokens (a running server follows the file)")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create or rotate a token (printed once; only its SHA-256 is stored)")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MATCHER.value)
    add.set_defaults(run=run_tokens_add)
    remove = actions.add_parser("rm", help="revoke a token")
    remove.add_argument("name")
    remove.set_defaults(run=run_tokens_rm)
    listing = actions.add_parser("ls", help="list the tokens' names and roles")
    listing.set_defaults(run=run_tokens_ls)
    for action in (add, remove, listing):
        action.add_argument("--tokens", type=Path, help="token file (default: tokens.json beside the store)")
        action.add_argument("--db", type=Path, default=None, help="the store the tokens sit beside")
    for action in (add, remove):
        action.add_argument(
            "--audit-log",
            type=Path,
            default=None,
            help="the audit log that records the change ($HASHMATCH_AUDIT_LOG; default: the store's, beside it)",
        )


def resolve_settings(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, Any]:
    """flags > HASHMATCH_* environment > --config TOML > defaults; unknown or malformed values are errors."""
    from_file = _read_config(args.config) if args.config is not None else {}
    unknown = set(from_file) - set(SETTINGS)
    if unknown:
        raise _setting_error(f"unknown settings in {args.config}: {', '.join(sorted(unknown))}")
    settings: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        flag = getattr(args, name)
        env = environ.get("HASHMATCH_" + name.upper())
        if flag is not None:
            settings[name] = flag
        elif env is not None:
            settings[name] = _convert(name, setting, env, f"HASHMATCH_{name.upper()}")
        elif name in from_file:
            settings[name] = _convert(name, setting, str(from_file[name]), f"{args.config}")
        else:
            settings[name] = setting.default
    return settings


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise _setting_error(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _setting_error(f"{path} is not valid TOML ({exc})") from exc


def _convert(name: str, setting: Setting, text: str, where: str) -> Any:
    try:
        return setting.kind(text)
    except ValueError:
        kind = "a whole number" if setting.kind is int else "a number" if setting.kind is float else "a value"
        raise _setting_error(f"{name} in {where} is {text!r}, not {kind}") from None


def _setting_error(message: str) -> HashmatchError:
    return HashmatchError(ReasonCode.INVALID_SETTING, message)


def _device(text: str) -> Device:
    if text not in {d.value for d in Device}:
        raise _setting_error(f"device is {text!r}, not one of auto, cpu, gpu")
    return Device(text)


def _token_file(args: argparse.Namespace) -> Path:
    return Path(args.tokens) if args.tokens else default_tokens_path(args.db)


def _token_audit_path(args: argparse.Namespace, tokens: Path) -> Path:
    """--audit-log, $HASHMATCH_AUDIT_LOG, the log of the store --db or $HASHMATCH_DB names, or else the log of
    the store that sits beside the token file (the layout `serve` assumes)."""
    explicit = args.audit_log or os.environ.get("HASHMATCH_AUDIT_LOG")
    if explicit:
        return Path(explicit)
    if args.db or os.environ.get("HASHMATCH_DB") or not args.tokens:
        return default_audit_path(store_path(args))
    return default_audit_path(tokens.parent / default_db_path().name)


def run_tokens_add(args: argparse.Namespace) -> int:
    path = _token_file(args)
    audit_path = _token_audit_path(args, path)
    if audit_path.parent == path.parent:  # the token file's folder, which the token would create anyway
        audit_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with AuditLog(audit_path) as log:  # AUDIT_UNAVAILABLE before anything changes
        token = TokenStore.add(path, args.name, Role(args.role))
        try:  # the name and role only: never the token, nor its digest
            log.append(default_actor(), "token_added", {"name": args.name, "role": args.role, "file": str(path)}, True)
        except HashmatchError:
            print(token)  # it is in the token file already: shown, so it is not lost, and the failure reported
            raise
    print(token)
    print(f"token {args.name!r} ({args.role}) stored as a SHA-256 digest in {path}", file=sys.stderr)
    return EXIT_OK


def run_tokens_rm(args: argparse.Namespace) -> int:
    path = _token_file(args)
    with AuditLog(_token_audit_path(args, path)) as log:
        if not TokenStore.remove(path, args.name):
            return fail(ReasonCode.INVALID_SETTING, f"no token named {args.name!r} in {path}")
        log.append(default_actor(), "token_removed", {"name": args.name, "file": str(path)}, wait=True)
    print(f"token {args.name!r} revoked; a running server refuses it within seconds", file=sys.stderr)
    return EXIT_OK


def run_tokens_ls(args: argparse.Namespace) -> int:
    for record in TokenStore.load(_token_file(args)).records:
        print(f"{record.name}\t{record.role.value}")
    return EXIT_OK


def build_config(args: argparse.Namespace, environ: dict[str, str]) -> ServerConfig:
    settings = resolve_settings(args, environ)
    explicit_db = settings["db"] or environ.get("HASHMATCH_DB")
    db = Path(explicit_db) if explicit_db else default_db_path()
    tokens = None if args.no_auth else (settings["tokens"] or default_tokens_path(db))
    if tokens is not None and len(TokenStore.load(tokens)) == 0:
        raise _setting_error(f"no API tokens in {tokens}: create one with 'hashmatch tokens add NAME', or --no-auth")
    return ServerConfig(
        db_path=db,
        address=settings["address"],
        tokens_path=tokens,
        max_message_bytes=settings["max_message_bytes"],
        max_concurrent_rpcs=settings["max_concurrent_rpcs"],
        max_streams_per_token=settings["max_streams_per_token"],
        workers=settings["workers"],
        tls_cert=settings["tls_cert"],
        tls_key=settings["tls_key"],
        tls_client_ca=settings["tls_client_ca"],
        metrics_port=settings["metrics_port"],
        lists=tuple(args.lists),
        decode_limits=DecodeLimits(max_pixels=settings["max_pixels"]),
        decode_memory_bytes=settings["decode_memory_mb"] * MIB,
        stream=StreamLimits(
            window_bytes=settings["stream_window_mb"] * MIB, idle_timeout_s=settings["stream_idle_timeout_s"]
        ),
        connections=ConnectionLimits(max_connection_age_s=settings["max_connection_age_s"]),
        reload_interval_s=settings["reload_interval_s"],
        insecure_plaintext=args.insecure_plaintext,
        audit_path=settings["audit_log"],
        audit_key=settings["audit_key"],
        audit_checkpoint_s=settings["audit_checkpoint_s"],
        audit=not args.no_audit,
        device=_device(settings["device"]),
        create_store_dir=not explicit_db,
        video=VideoOptions(
            seconds_per_hash=settings["video_seconds_per_hash"],
            limits=VideoLimits(
                max_bytes=settings["max_video_mb"] * MIB,
                max_seconds=settings["max_video_seconds"],
                deadline_s=settings["video_deadline_s"],
            ),
        ),
        video_match=VpdqMatchOptions(
            rule=_choice("video_rule", FrameRule, settings["video_rule"]),
            query_percent=settings["video_query_percent"],
            compared_percent=settings["video_compared_percent"],
        ),
        flood=FloodSettings(
            enabled=settings["flood_quarantine"],
            multiple=settings["flood_multiple"],
            window_s=settings["flood_window_s"],
            baseline_s=settings["flood_baseline_s"],
            min_matches=settings["flood_min_matches"],
            floor_per_hour=settings["flood_floor_per_hour"],
        ),
        stats_min_cell=settings["stats_min_cell"],
        max_audit_calls=settings["max_audit_calls"],
        dihedral=_choice("dihedral", DihedralMode, settings["dihedral"]),
        query_variants=_query_variants(settings["query_variants"]),
    )


def _query_variants(text: str) -> frozenset[VariantFamily]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        return frozenset() if names == ["none"] else families_from(names)
    except ValueError as exc:
        raise _setting_error(f"query_variants: {exc}") from None


def _choice(setting: str, kind: type[Choice], text: str) -> Choice:
    """A setting that names one member of an enum (its value), or INVALID_SETTING listing them."""
    try:
        return kind(text)
    except ValueError:
        raise _setting_error(f"{setting} is one of {', '.join(m.value for m in kind)}, not {text!r}") from None


def run_serve(args: argparse.Namespace) -> int:
    try:
        config = build_config(args, dict(os.environ))
    except HashmatchError as exc:
        return fail(exc.reason, exc.detail, EXIT_USAGE)
    except ValueError as exc:  # a limit out of range (DecodeLimits)
        return fail(ReasonCode.INVALID_SETTING, str(exc), EXIT_USAGE)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    def ready(running: RunningServer) -> None:
        print(f"hashmatch serving on {config.address} (port {running.port}); Ctrl-C stops", file=sys.stderr)

    serve_forever(config, on_ready=ready)  # start-up errors: HashmatchError, one line from cli.main
    return EXIT_OK
