"""`hashmatch serve`: the gRPC matching service (hashmatch.v1), with health checking and reflection.

This module wires the parts together and starts them in an order that fails early and in one line: the
settings are checked, the metrics port is bound, the store opened and its lists loaded, and the gRPC port
bound last. The parts: `gate` (tokens, roles, fair admission), `matcher_service` and `admin_service`,
`serving` (the matcher, the hasher with its decode budget, the batcher, following the store), `handlers`
(malformed requests are INVALID_ARGUMENT), `errors` (reason codes on the wire).

What bounds the server's memory: the lists' indexes; decoded pixels in flight, at most `decode_memory_bytes`
(each decode reserves its estimated peak before it starts); received requests, at most
`max_concurrent_rpcs` unary calls of `max_message_bytes` each plus, per open stream, `stream.window_bytes`
of items and answers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from engine.audit.checkpoints import Signer
from engine.audit.log import AuditLog, default_audit_path
from engine.evidence.flood import FloodSettings
from engine.lists import ListAction
from engine.signal_types.vpdq import VpdqMatchOptions
from engine.store import Store
from grpc_api.admin_service import AdminService
from grpc_api.audit_service import AuditService
from grpc_api.auth import TokenSource
from grpc_api.errors import REASON_KEY
from grpc_api.gate import Gate, Slots
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.handlers import add_service
from grpc_api.matcher_service import MatcherService, StreamLimits
from grpc_api.memory import return_freed_memory_to_os
from grpc_api.metrics import ServerMetrics
from grpc_api.serving import ServingState
from hashing.decode import DecodeLimits, DecodeOptions
from hashing.decode_budget import DecodeBudget
from hashing.device import Device, close_hasher, select_device
from hashing.errors import HashmatchError, ReasonCode
from hashing.media_hasher import HashOptions
from hashing.pdq_hasher import DihedralMode
from hashing.query_variants import ALL_FAMILIES, VariantFamily
from hashing.video import VideoLimits, VideoOptions
from kernels.optional import MissingDependencyError

log = logging.getLogger("hashmatch.server")
RESERVED_THREADS = 8  # beyond the matching slots: health checks, admin calls and refusals never wait for one
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"

__all__ = ["REASON_KEY", "ConnectionLimits", "RunningServer", "ServerConfig", "StreamLimits", "start_server"]


@dataclass(frozen=True)
class ConnectionLimits:
    """gRPC's own connection management: keepalive pings both ways, and connections that do not live forever
    (so that a client cannot pin one, and load balancers can rebalance)."""

    keepalive_time_s: float = 60.0  # the server pings an idle connection this often...
    keepalive_timeout_s: float = 20.0  # ...and closes it when the ping is not answered within this
    min_client_ping_interval_s: float = 30.0  # clients pinging more often are told to go away
    max_connection_idle_s: float = 600.0  # a connection without calls is closed after this
    max_connection_age_s: float = 3600.0  # every connection is closed (gracefully) after this...
    max_connection_age_grace_s: float = 60.0  # ...once its calls finish, or after this much more

    def options(self) -> list[tuple[str, int]]:
        def ms(seconds: float) -> int:
            return int(seconds * 1000)

        return [
            ("grpc.keepalive_time_ms", ms(self.keepalive_time_s)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_s)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", ms(self.min_client_ping_interval_s)),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.max_connection_idle_ms", ms(self.max_connection_idle_s)),
            ("grpc.max_connection_age_ms", ms(self.max_connection_age_s)),
            ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace_s)),
        ]


@dataclass(frozen=True)
class ServerConfig:
    db_path: Path
    address: str = "127.0.0.1:50051"
    tokens_path: Path | None = None  # None: no authentication (only for loopback demos and tests)
    max_message_bytes: int = 64 * 1024 * 1024
    max_concurrent_rpcs: int = 64  # matching calls at once; more are refused (RESOURCE_EXHAUSTED), not queued
    max_streams_per_token: int = 8  # open MatchStreams per token
    workers: int = 16  # threads hashing stream items
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: clients must present a certificate it signed (mutual TLS)
    metrics_port: int | None = None
    lists: tuple[str, ...] = ()  # serve these lists only; empty: every list with an active version
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    decode_memory_bytes: int = 1 << 30  # decoded pixels in flight, all requests together
    decode_wait_s: float = 10.0  # longest wait for decode memory before OVERLOADED
    stream: StreamLimits = field(default_factory=StreamLimits)
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    reload_interval_s: float = 2.0  # how often the store is checked for another process's changes
    token_check_s: float = 1.0  # how often the token file is checked for changes
    insecure_plaintext: bool = False  # allow tokens over plaintext on a non-loopback address
    create_store_dir: bool = False  # create the store's directory when it is missing (the default location)
    device: Device = Device.AUTO  # where hashing and large lists' search run (a GPU only after its self-test)
    # Videos: sampling and limits (an upload is held in memory whole, so the byte limit is lower than a CLI's),
    # and the vPDQ match rule a request gets unless it sets its own.
    video: VideoOptions = field(default_factory=lambda: VideoOptions(limits=VideoLimits(max_bytes=512 << 20)))
    video_match: VpdqMatchOptions = field(default_factory=VpdqMatchOptions)
    # The audit log (engine/audit): every verdict (its hashes, never media) and every admin action, with the
    # token's name. None: beside the store (NAME.audit.jsonl); audit=False turns it off.
    audit_path: Path | None = None
    audit: bool = True
    audit_key: Path | None = None  # an Ed25519 private key (hashmatch audit keygen): signed checkpoints
    audit_checkpoint_s: float = 3600.0  # how often, and once more at stop
    # Flood quarantine: an entry matching far above its own baseline is held for review (engine/evidence/flood).
    flood: FloodSettings = field(default_factory=FloodSettings)
    stats_min_cell: int = 10  # the smallest prevalence cell the Audit service shows: a caller may raise it only
    max_audit_calls: int = 2  # Audit exports at once (each holds a thread while it streams); more: OVERLOADED
    # What every image is hashed with: its rotations and flips (pixel-exact by default) and the query variants'
    # families (hashing.query_variants). A request's options may match fewer, never more.
    dihedral: DihedralMode = DihedralMode.PIXELS
    query_variants: frozenset[VariantFamily] = ALL_FAMILIES


class ServerStartError(HashmatchError):
    """The server cannot start with these settings; nothing is listening."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.INVALID_SETTING, message)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    state: ServingState
    health: health.HealthServicer
    item_pool: futures.ThreadPoolExecutor
    slots: Slots
    metrics_http: Any = None  # the Prometheus HTTP server, when --metrics-port is set
    checkpoints: Checkpointer | None = None

    def stop(self, grace_s: float = 10.0) -> None:
        """Graceful: new RPCs are refused, in-flight ones (streams too) get `grace_s` to finish."""
        self.health.enter_graceful_shutdown()
        self.state.stop_watching()
        if self.checkpoints is not None:
            self.checkpoints.stop()
        self.server.stop(grace_s).wait()
        if self.metrics_http is not None:
            self.metrics_http.shutdown()
        self.state.batcher.close()  # lookups still waiting fail now instead of never
        close_hasher(self.state.pdq)
        self.item_pool.shutdown(wait=True, cancel_futures=True)
        self.state.flush_counts()  # every verdict served is counted before the store closes
        self.state.holds.save_at_stop()
        self.state.store.close()
        audit = self.state.audit
        if audit is not None and not audit.closed:  # stop() may be called twice
            audit.append("system", "server_stopped", {}, wait=True)
            if self.checkpoints is not None:
                audit.checkpoint(self.checkpoints.signer)  # the last records are covered too
            audit.close()


def start_server(config: ServerConfig) -> RunningServer:
    check_settings(config)
    return_freed_memory_to_os()  # before the first index is built: reloads must not ratchet memory up
    metrics = ServerMetrics()
    metrics_http = _serve_metrics(config.metrics_port, metrics) if config.metrics_port is not None else None
    try:
        return _start(config, metrics, metrics_http)
    except BaseException:
        if metrics_http is not None:
            metrics_http.shutdown()
        raise


def _start(config: ServerConfig, metrics: ServerMetrics, metrics_http: Any) -> RunningServer:
    device = select_device(config.device)  # GPU_UNAVAILABLE for --device gpu without a verified GPU
    signer = _signer(config.audit_key) if config.audit and config.audit_key is not None else None
    store = Store(config.db_path, create_parents=config.create_store_dir)
    budget = DecodeBudget(config.decode_memory_bytes, config.decode_wait_s)
    decode = DecodeOptions(limits=config.decode_limits)
    audit = None
    if config.audit:
        try:
            audit = AuditLog(config.audit_path or default_audit_path(Path(config.db_path)))
        except HashmatchError:
            store.close()
            raise
        audit.append("system", "server_started", _configuration(config))
    state = ServingState(
        store,
        config.lists,
        decode,
        budget,
        metrics,
        device,
        config.video,
        config.video_match,
        audit,
        config.flood,
        HashOptions(dihedral=config.dihedral, variants=config.query_variants, decode=decode),
    )
    if audit is None and any(loaded.spec.action is ListAction.REFER for loaded in state.matcher.lists):
        # Referral records live in the audit log: without it, matches of `refer` lists leave none.
        log.warning(json.dumps({"event": "referrals_off", "reason": "the audit log is off"}))
    slots = Slots(config.max_concurrent_rpcs, config.max_streams_per_token)
    tokens = TokenSource(config.tokens_path, config.token_check_s) if config.tokens_path else None
    # Every admitted matching call gets a thread (an open stream holds one for its whole life), and a reserve
    # beyond them serves health checks, admin calls and refusals: those never queue behind matching.
    pool = futures.ThreadPoolExecutor(
        max_workers=config.max_concurrent_rpcs + RESERVED_THREADS, thread_name_prefix="hashmatch-rpc"
    )
    item_pool = futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="hashmatch-stream")
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # grpcio sets SO_REUSEPORT by default: a second server on a taken port would start and share it.
        ("grpc.so_reuseport", 0),
        *config.connections.options(),
    ]
    server = grpc.server(pool, interceptors=[Gate(tokens, slots, config.max_audit_calls)], options=options)
    add_service(server, "Matcher", MatcherService(state, item_pool, config.stream))
    add_service(server, "ListAdmin", AdminService(state))
    add_service(server, "Audit", AuditService(state, config.stats_min_cell))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = [
        pb.DESCRIPTOR.services_by_name["Matcher"].full_name,
        pb.DESCRIPTOR.services_by_name["ListAdmin"].full_name,
        pb.DESCRIPTOR.services_by_name["Audit"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        REFLECTION_V1,
    ]
    _enable_reflection(services, server)
    port = _bind(server, config)
    server.start()
    for name in ("", *services[:3]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    state.watch_store(config.reload_interval_s)
    log.info(
        json.dumps(
            {
                "event": "serving",
                "address": config.address,
                "port": port,
                "lists": state.versions(),
                "tls": config.tls_cert is not None,
                "auth": config.tokens_path is not None,
                "decode_memory_bytes": config.decode_memory_bytes,
                "device": device.device.value,
                "device_reason": device.reason,
            }
        )
    )
    checkpoints = None
    if audit is not None and signer is not None:
        checkpoints = Checkpointer(audit, signer, config.audit_checkpoint_s)
    return RunningServer(server, port, state, health_servicer, item_pool, slots, metrics_http, checkpoints)


def _configuration(config: ServerConfig) -> dict[str, Any]:
    """What the audit log keeps of a start's configuration: what decides verdicts and who may call (never a
    key or a token)."""
    return {
        "address": config.address,
        "lists": list(config.lists),
        "auth": config.tokens_path is not None,
        "tls": config.tls_cert is not None,
        "mutual_tls": config.tls_client_ca is not None,
        "device": config.device.value,
        "signed_checkpoints": config.audit_key is not None,
        "video_rule": config.video_match.rule.value,
        "video_query_percent": config.video_match.query_percent,
        "video_compared_percent": config.video_match.compared_percent,
        "flood": asdict(config.flood),
        "stats_min_cell": config.stats_min_cell,
        "max_audit_calls": config.max_audit_calls,
        "video_quality": config.video_match.quality,
        "dihedral": config.dihedral.value,
        "query_variants": sorted(f.value for f in config.query_variants),
    }


def _signer(key: Path) -> Signer:
    try:
        return Signer(key)
    except MissingDependencyError as missing:
        raise HashmatchError(ReasonCode.MISSING_DEPENDENCY, str(missing)) from None
    except (OSError, ValueError):
        raise ServerStartError(
            f"audit_key {key} is not a readable Ed25519 private key (hashmatch audit keygen)"
        ) from None


class Checkpointer:
    """Appends a signed checkpoint of the audit log's head every `interval_s`."""

    def __init__(self, audit: AuditLog, signer: Signer, interval_s: float) -> None:
        self.audit = audit
        self.signer = signer
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="hashmatch-audit-checkpoints", daemon=True
        )
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            try:
                self.audit.checkpoint(self.signer)
            except HashmatchError:
                log.exception("a signed audit checkpoint could not be written")

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def check_settings(config: ServerConfig) -> None:
    """Refuse settings that would not work, or would silently be less secure than they read."""
    host, _, port = config.address.rpartition(":")
    if not host or not port.isdigit() or "]" in port:
        raise ServerStartError(f"the address {config.address!r} needs a port: HOST:PORT, e.g. 127.0.0.1:50051")
    host = host.strip("[]")
    if config.tls_cert is None and (config.tls_key is not None or config.tls_client_ca is not None):
        raise ServerStartError("--tls-key and --tls-client-ca need --tls-cert: without it the port would be plaintext")
    if config.tls_cert is not None and config.tls_key is None:
        raise ServerStartError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
    if config.tokens_path is None and host not in LOOPBACK:
        raise ServerStartError(f"refusing to serve {config.address} without authentication: --no-auth is for loopback")
    if (
        config.tokens_path is not None
        and config.tls_cert is None
        and host not in LOOPBACK
        and not config.insecure_plaintext
    ):
        raise ServerStartError(
            f"refusing to send bearer tokens in plaintext on {config.address}: give --tls-cert and --tls-key, "
            "or --insecure-plaintext if a TLS proxy in front of the server terminates it"
        )
    if config.max_audit_calls > RESERVED_THREADS // 2:
        raise ServerStartError(
            f"max_audit_calls is at most {RESERVED_THREADS // 2}: exports must leave threads for health checks "
            "and admin calls"
        )
    for name in (
        "max_message_bytes",
        "max_concurrent_rpcs",
        "max_streams_per_token",
        "workers",
        "decode_memory_bytes",
        "stats_min_cell",
        "max_audit_calls",
    ):
        if getattr(config, name) < 1:
            raise ServerStartError(f"{name} is at least 1")


def _serve_metrics(port: int, metrics: ServerMetrics) -> Any:
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    except OSError as exc:
        raise ServerStartError(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or 'unavailable'}") from exc
    return server


def _bind(server: grpc.Server, config: ServerConfig) -> int:
    try:
        if config.tls_cert is None:
            return int(server.add_insecure_port(config.address))
        assert config.tls_key is not None  # check_settings
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
            root_certificates=config.tls_client_ca.read_bytes() if config.tls_client_ca else None,
            require_client_auth=config.tls_client_ca is not None,
        )
        return int(server.add_secure_port(config.address, credentials))
    except OSError as exc:
        raise ServerStartError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except RuntimeError as exc:  # grpcio's "Failed to bind to address"
        raise ServerStartError(f"cannot listen on {config.address}: in use, or not an address here") from exc


def _enable_reflection(services: list[str], server: grpc.Server) -> None:
    """Reflection under both names: grpcio-reflection serves v1alpha; v1 (what current grpcurl, grpc-js and
    Postman ask for first) has the same messages on the wire, so the same servicer answers it."""
    reflection.enable_server_reflection(services, server)
    servicer = reflection.ReflectionServicer(services)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": handler}),)
    )


def serve_forever(config: ServerConfig, on_ready: Callable[[RunningServer], Any] | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    import signal

    running = start_server(config)
    if on_ready is not None:
        on_ready(running)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    running.stop()
