"""`hashmatch serve`: the gRPC matching service (hashmatch.v1), with health checking and reflection.

Media lives in memory for one request only: it is hashed and dropped, never written or logged. Requests
run on a thread pool (hashing releases the GIL in its Numba kernel); their index lookups go through one
MatchBatcher, so concurrent requests share index searches. Activating a list version builds a new Matcher
beside the serving one and swaps the reference: batches already running finish on the old index, whose
memory is freed once the last of them returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.importers.formats import ImportFormat, detect_format_of_text, records_from_text
from engine.importers.records import ParsedRecord
from engine.importing import ImportGuard, ImportMode, ImportReport, import_records
from engine.lists import DEFAULT_THRESHOLD, HashList, ListAction, ListSettingsError, SourceProgramme
from engine.matcher import Matcher, QueryHashes, Verdict
from engine.signals import SignalType, SignalValueError, signal_type_named
from engine.store import ListExistsError, Store, StoreError
from grpc_api.auth import TokenAuthInterceptor, TokenStore
from grpc_api.batching import MatchBatcher, ServerShuttingDownError
from grpc_api.convert import hashes_from_proto, media_hashes_to_proto, verdict_to_proto
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2_grpc as pb_grpc
from grpc_api.memory import return_freed_memory_to_os
from grpc_api.metrics import ServerMetrics
from hashing.decode import DecodeLimits, DecodeOptions
from hashing.errors import HashmatchError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode

log = logging.getLogger("hashmatch.server")
REASON_KEY = "hashmatch-reason"
STREAM_WINDOW = 32  # items of one stream read but not yet sent; beyond it the server stops reading
ITEM_TIMEOUT_S = 60.0  # the longest any item waits for the index, deadline or not
MAX_HASH_QUERIES = 10_000  # per MatchHashes call
HASH_CHUNK = 1_000  # MatchHashes answers in chunks, checking between them that the caller is still there
T = TypeVar("T")


@dataclass(frozen=True)
class ServerConfig:
    db_path: Path
    address: str = "127.0.0.1:50051"
    tokens_path: Path | None = None  # None: no authentication (only for loopback demos and tests)
    max_message_bytes: int = 64 * 1024 * 1024
    max_concurrent_rpcs: int = 64  # more at once are refused with RESOURCE_EXHAUSTED, not queued
    workers: int = 16
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: clients must present a certificate it signed (mutual TLS)
    metrics_port: int | None = None
    lists: tuple[str, ...] = ()  # serve these lists only; empty: every list with an active version
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)


class ServingState:
    """What requests read: the matcher (swapped on activation), the hasher, the batcher, metrics."""

    def __init__(self, store: Store, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.hasher = MediaHasher(
            HashOptions(dihedral=DihedralMode.DCT, decode=DecodeOptions(limits=config.decode_limits))
        )
        self._swap_lock = threading.Lock()
        self.matcher = self._load()
        self.batcher = MatchBatcher(self._match_many)

    def _load(self) -> Matcher:
        matcher = Matcher.from_store(self.store, list(self.config.lists) or None)
        for loaded in matcher.lists:
            self.metrics.index_entries.labels(loaded.spec.name).set(len(loaded.pdq_ids))
            self.metrics.active_version.labels(loaded.spec.name).set(loaded.version)
        return matcher

    def _match_many(self, queries: list[QueryHashes]) -> list[Verdict]:
        matcher = self.matcher  # one reference per batch: a swap mid-batch does not mix versions
        self.metrics.batch_size.observe(len(queries))
        return matcher.match_many(queries)

    def reload(self) -> Matcher:
        """Build the new matcher beside the serving one, then swap; one reload at a time."""
        with self._swap_lock:
            fresh = self._load()
            self.matcher = fresh
        return fresh

    def record(self, verdict: Verdict) -> None:
        self.metrics.verdicts.labels(verdict.decision.value).inc()
        for match in verdict.matches:
            self.metrics.matches.labels(match.list_name).inc()


class CallerGoneError(Exception):
    """The client cancelled or its deadline passed while the server was still working."""


class ReloadError(StoreError):
    """A committed version could not be loaded for serving."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.INTERNAL, message)


def _reason_trailer(context: grpc.ServicerContext, reason: str) -> None:
    context.set_trailing_metadata(((REASON_KEY, reason),))


# The gRPC status of each reason code that is not plain bad input (INVALID_ARGUMENT).
_STATUS_OF_REASON = {
    ReasonCode.LIST_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ReasonCode.VERSION_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ReasonCode.LIST_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ReasonCode.NO_ACTIVE_LIST: grpc.StatusCode.FAILED_PRECONDITION,
    ReasonCode.LIST_WOULD_SHRINK: grpc.StatusCode.FAILED_PRECONDITION,
    ReasonCode.STORE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ReasonCode.INTERNAL: grpc.StatusCode.INTERNAL,
}


def _status_for(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, ServerShuttingDownError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, HashmatchError):
        return _STATUS_OF_REASON.get(exc.reason, grpc.StatusCode.INVALID_ARGUMENT)
    return grpc.StatusCode.INTERNAL


def _reason_of(exc: Exception) -> str:
    if isinstance(exc, ServerShuttingDownError):
        return "SHUTTING_DOWN"
    return str(exc.reason) if isinstance(exc, HashmatchError) else ReasonCode.INTERNAL.value


class MatcherService(pb_grpc.MatcherServicer):
    def __init__(self, state: ServingState, pool: futures.ThreadPoolExecutor) -> None:
        self.state = state
        self.pool = pool

    def _verdict_for_media(self, media: bytes, context: grpc.ServicerContext | None) -> Verdict:
        """Media that cannot be decoded is still matched on its exact digests; the verdict's reasons say
        why it has no PDQ (UNDECODABLE, UNSUPPORTED_FORMAT, TOO_LARGE). Only empty media is an error."""
        outcome = self.state.hasher.outcome_of_bytes(media)
        if outcome.error is not None:
            self.state.metrics.errors.labels(str(outcome.error.reason)).inc()
        # The time left is read after hashing; without a client deadline the wait is bounded by ours.
        left = context.time_remaining() if context is not None else None
        timeout = ITEM_TIMEOUT_S if left is None or left > ITEM_TIMEOUT_S else max(left, 0.0)
        verdict = self.state.batcher.match(QueryHashes.of_outcome(outcome), timeout=timeout)
        self.state.record(verdict)
        return verdict

    def Match(self, request: pb.MatchRequest, context: grpc.ServicerContext) -> pb.MatchResponse:  # noqa: N802
        return _observed(
            self.state,
            "Match",
            context,
            lambda: pb.MatchResponse(
                client_id=request.client_id,
                metadata=request.metadata,
                verdict=verdict_to_proto(self._verdict_for_media(request.media, context)),
            ),
        )

    def MatchHashes(  # noqa: N802
        self, request: pb.MatchHashesRequest, context: grpc.ServicerContext
    ) -> pb.MatchHashesResponse:
        def run() -> pb.MatchHashesResponse:
            if len(request.queries) > MAX_HASH_QUERIES:
                raise HashmatchError(
                    ReasonCode.TOO_LARGE, f"{len(request.queries)} queries; send at most {MAX_HASH_QUERIES} per call"
                )
            queries = [hashes_from_proto(q.hashes) for q in request.queries]
            matcher = self.state.matcher  # one version for the whole call
            verdicts: list[Verdict] = []
            for start in range(0, len(queries), HASH_CHUNK):
                if not context.is_active():
                    raise CallerGoneError("the caller went away")
                verdicts.extend(matcher.match_many(queries[start : start + HASH_CHUNK]))
            for verdict in verdicts:
                self.state.record(verdict)
            return pb.MatchHashesResponse(
                results=[
                    pb.MatchResponse(client_id=q.client_id, verdict=verdict_to_proto(v))
                    for q, v in zip(request.queries, verdicts, strict=True)
                ]
            )

        return _observed(self.state, "MatchHashes", context, run)

    def Hash(self, request: pb.HashRequest, context: grpc.ServicerContext) -> pb.HashResponse:  # noqa: N802
        def run() -> pb.HashResponse:
            hashes = self.state.hasher.hash_bytes(request.media)
            response = media_hashes_to_proto(hashes)
            if not request.dihedral:
                del response.hashes.dihedral[:]
            return response

        return _observed(self.state, "Hash", context, run)

    def MatchStream(  # noqa: N802
        self, request_iterator: Iterator[pb.MatchRequest], context: grpc.ServicerContext
    ) -> Generator[pb.MatchResponse, None, None]:
        """Items are hashed in parallel and answered as each is ready. At most STREAM_WINDOW items are read
        but not yet sent: a client that stops reading answers stops being read from (flow control)."""
        started = time.perf_counter()
        window = threading.BoundedSemaphore(STREAM_WINDOW)
        results: queue.Queue[pb.MatchResponse | None] = queue.Queue()
        submitted = [0]
        ended = threading.Event()

        def answer(request: pb.MatchRequest) -> None:
            results.put(self._stream_answer(request))

        def read() -> None:
            try:
                for request in request_iterator:
                    while not window.acquire(timeout=0.5):  # a full window stops the reading
                        if ended.is_set():
                            return
                    try:
                        self.pool.submit(answer, request)
                    except RuntimeError:  # the item pool is shut down: the server is stopping
                        window.release()
                        return
                    submitted[0] += 1
            except (grpc.RpcError, RuntimeError):
                pass  # the client went away, or the server is shutting down
            finally:
                results.put(None)  # submitted[0] is final from here on

        threading.Thread(target=read, name="hashmatch-stream-reader", daemon=True).start()
        answered, total, code = 0, None, "OK"
        try:
            while total is None or answered < total:
                try:
                    item = results.get(timeout=0.5)
                except queue.Empty:
                    if not context.is_active():  # cancelled, or the server stopped: answers owed are dropped
                        code = "CANCELLED"
                        break
                    continue
                if item is None:
                    total = submitted[0]
                    continue
                answered += 1
                yield item
                window.release()  # only once the answer has gone out
        except GeneratorExit:
            code = "CANCELLED"
            raise
        finally:
            ended.set()
            elapsed = time.perf_counter() - started
            self.state.metrics.requests.labels("MatchStream", code).inc()
            self.state.metrics.latency.labels("MatchStream").observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                record = {
                    "event": "rpc",
                    "method": "MatchStream",
                    "code": code,
                    "ms": round(elapsed * 1e3, 3),
                    "items": answered,
                }
                log.info(json.dumps(record | {"peer": context.peer()}))

    def _stream_answer(self, request: pb.MatchRequest) -> pb.MatchResponse:
        try:
            verdict = self._verdict_for_media(request.media, None)
            return pb.MatchResponse(
                client_id=request.client_id, metadata=request.metadata, verdict=verdict_to_proto(verdict)
            )
        except HashmatchError as exc:
            self.state.metrics.errors.labels(str(exc.reason)).inc()
            error = pb.Error(reason=str(exc.reason), detail=exc.detail)
        except ServerShuttingDownError:
            error = pb.Error(reason="SHUTTING_DOWN", detail="the server stopped before this item was matched")
        except futures.TimeoutError:
            error = pb.Error(reason="DEADLINE_EXCEEDED", detail=f"no index answer within {ITEM_TIMEOUT_S} s")
        except Exception as exc:  # one item's failure must not end the stream
            log.exception("stream item failed")
            error = pb.Error(reason="INTERNAL", detail=type(exc).__name__)
        return pb.MatchResponse(client_id=request.client_id, metadata=request.metadata, error=error)


def _observed(state: ServingState, method: str, context: grpc.ServicerContext, run: Callable[[], T]) -> T:
    """Run an RPC body: metrics, one structured log line (never media), and typed errors -> status codes."""
    started = time.perf_counter()
    code = "OK"
    try:
        return run()
    except (HashmatchError, ServerShuttingDownError) as exc:
        status = _status_for(exc)
        code = status.name
        reason = _reason_of(exc)
        state.metrics.errors.labels(reason).inc()
        _reason_trailer(context, reason)
        context.abort(status, exc.detail if isinstance(exc, HashmatchError) else str(exc))
        raise  # unreachable: abort raises
    except futures.TimeoutError:
        code = "DEADLINE_EXCEEDED"
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed while waiting for the index")
        raise
    except CallerGoneError as exc:
        code = "CANCELLED"
        context.abort(grpc.StatusCode.CANCELLED, str(exc))
        raise
    except Exception:
        code = "INTERNAL"
        log.exception("%s failed", method)
        context.abort(grpc.StatusCode.INTERNAL, "internal error; the server log has the details")
        raise
    finally:
        elapsed = time.perf_counter() - started
        state.metrics.requests.labels(method, code).inc()
        state.metrics.latency.labels(method).observe(elapsed)
        if log.isEnabledFor(logging.INFO):  # the JSON is built only when someone reads it
            record = {"event": "rpc", "method": method, "code": code, "ms": round(elapsed * 1e3, 3)}
            log.info(json.dumps(record | {"peer": context.peer()}))


class AdminService(pb_grpc.ListAdminServicer):
    def __init__(self, state: ServingState) -> None:
        self.state = state

    def ImportList(  # noqa: N802
        self, request: pb.ImportListRequest, context: grpc.ServicerContext
    ) -> pb.ImportListResponse:
        def run() -> pb.ImportListResponse:
            store = self.state.store
            with contextlib.suppress(ListExistsError):  # another import may create it at the same moment
                store.create_list(_new_list_spec(request))
            text = request.content.decode("utf-8-sig", errors="replace")
            fmt = _choice(ImportFormat, request.format or "auto", "format")
            if fmt is ImportFormat.AUTO:
                fmt = detect_format_of_text(text[:8192])
            report = import_records(
                store,
                request.list,
                records_from_text(text, fmt),
                mode=_choice(ImportMode, request.mode or "replace", "mode"),
                source_file="(grpc upload)",
                activate=request.activate,
                guard=ImportGuard(allow_shrink=request.allow_shrink),
            )
            if request.activate:
                self._reload_after(report)
            return _report_to_proto(report)

        return _observed(self.state, "ImportList", context, run)

    def AddEntries(self, request: pb.EntriesRequest, context: grpc.ServicerContext) -> pb.ImportListResponse:  # noqa: N802
        return _observed(self.state, "AddEntries", context, lambda: self._delta(request, deleted=False))

    def RemoveEntries(  # noqa: N802
        self, request: pb.EntriesRequest, context: grpc.ServicerContext
    ) -> pb.ImportListResponse:
        return _observed(self.state, "RemoveEntries", context, lambda: self._delta(request, deleted=True))

    def _delta(self, request: pb.EntriesRequest, deleted: bool) -> pb.ImportListResponse:
        records = [
            ParsedRecord(
                number, e.hash, e.signal_type or None, e.external_id or None, e.classification or None, deleted=deleted
            )
            for number, e in enumerate(request.entries, start=1)
        ]
        report = import_records(
            self.state.store, request.list, records, mode=ImportMode.DELTA, source_file="(grpc entries)", activate=True
        )
        self._reload_after(report)
        return _report_to_proto(report)

    def _reload_after(self, report: ImportReport) -> None:
        """The version is committed already: a failed reload must say so, or a retry would import it again."""
        try:
            self.state.reload()
        except Exception as exc:
            log.exception("reload after import failed")
            raise ReloadError(
                f"list {report.list_name!r} version {report.version} is imported and active in the store, but "
                f"the server could not load it ({type(exc).__name__}); it serves the previous versions"
            ) from exc

    def ListVersions(  # noqa: N802
        self, request: pb.ListVersionsRequest, context: grpc.ServicerContext
    ) -> pb.ListVersionsResponse:
        def run() -> pb.ListVersionsResponse:
            active = self.state.store.get_list(request.list).active_version
            return pb.ListVersionsResponse(
                versions=[
                    pb.ListVersion(
                        version=v.number,
                        created_at=v.created_at,
                        kind=v.kind,
                        added=v.added,
                        removed=v.removed,
                        total=v.total,
                        rejected=v.rejected,
                        active=v.number == active,
                    )
                    for v in self.state.store.versions(request.list)
                ]
            )

        return _observed(self.state, "ListVersions", context, run)

    def Activate(self, request: pb.ActivateRequest, context: grpc.ServicerContext) -> pb.ActivateResponse:  # noqa: N802
        def run() -> pb.ActivateResponse:
            self.state.store.activate(request.list, int(request.version))
            return pb.ActivateResponse(serving_versions=self.state.reload().list_versions)

        return _observed(self.state, "Activate", context, run)

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:  # noqa: N802
        def run() -> pb.StatusResponse:
            serving = self.state.matcher
            sizes = {loaded.spec.name: len(loaded.pdq_ids) for loaded in serving.lists}
            return pb.StatusResponse(
                lists=[
                    pb.ListStatus(
                        name=h.name,
                        active_version=h.active_version or 0,
                        serving_version=serving.list_versions.get(h.name, 0),
                        entries=sizes.get(h.name, 0),
                    )
                    for h in self.state.store.lists()
                ],
                version="hashmatch.v1",
            )

        return _observed(self.state, "Status", context, run)


def _new_list_spec(request: pb.ImportListRequest) -> HashList:
    """The settings of a list an import creates; refused in plain words when a value is unknown."""
    try:
        signal_types = frozenset(signal_type_named(s) for s in request.signal_types) or frozenset(SignalType)
    except SignalValueError as exc:
        raise ListSettingsError(exc.detail) from exc
    return HashList(
        name=request.list,
        source=_choice(SourceProgramme, request.source or "local", "source"),
        signal_types=signal_types,
        threshold=request.threshold or DEFAULT_THRESHOLD,
        action=_choice(ListAction, request.action or "remove", "action"),
        negative=request.negative,
    )


E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E], value: str, what: str) -> E:
    """`kind(value)`, or INVALID_SETTING in plain words (never Python's "'x' is not a valid ...")."""
    try:
        return kind(value)
    except ValueError:
        raise ListSettingsError(f"unknown {what} {value!r}; one of {', '.join(kind)}") from None


def _report_to_proto(report: ImportReport) -> pb.ImportListResponse:
    return pb.ImportListResponse(
        list=report.list_name,
        version=report.version,
        added=report.added,
        changed=report.changed,
        unchanged=report.unchanged,
        removed=report.removed,
        total=report.total,
        rejects=[pb.RejectedLine(line=r.line, reason=r.reason.value, detail=r.detail) for r in report.rejects],
    )


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    state: ServingState
    health: health.HealthServicer
    item_pool: futures.ThreadPoolExecutor
    metrics_http: Any = None  # the Prometheus HTTP server, when --metrics-port is set

    def stop(self, grace_s: float = 10.0) -> None:
        """Graceful: new RPCs are refused, in-flight ones (streams too) get `grace_s` to finish."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        if self.metrics_http is not None:
            self.metrics_http.shutdown()
        self.state.batcher.close()  # lookups still waiting fail now instead of never
        self.item_pool.shutdown(wait=True, cancel_futures=True)
        self.state.store.close()


def start_server(config: ServerConfig) -> RunningServer:
    _check_transport(config)
    return_freed_memory_to_os()  # before the first index is built: reloads must not ratchet memory up
    store = Store(config.db_path)
    metrics = ServerMetrics()
    state = ServingState(store, config, metrics)
    # Every admitted RPC gets a thread (an open stream holds one for its whole life): with fewer threads than
    # the concurrency limit, idle streams would starve everything else, health checks included.
    pool = futures.ThreadPoolExecutor(max_workers=config.max_concurrent_rpcs + 4, thread_name_prefix="hashmatch-rpc")
    item_pool = futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="hashmatch-stream")
    interceptors = [TokenAuthInterceptor(TokenStore.load(config.tokens_path))] if config.tokens_path else []
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
    ]
    server = grpc.server(
        pool, interceptors=interceptors, options=options, maximum_concurrent_rpcs=config.max_concurrent_rpcs
    )
    pb_grpc.add_MatcherServicer_to_server(MatcherService(state, item_pool), server)
    pb_grpc.add_ListAdminServicer_to_server(AdminService(state), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = [
        pb.DESCRIPTOR.services_by_name["Matcher"].full_name,
        pb.DESCRIPTOR.services_by_name["ListAdmin"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    ]
    reflection.enable_server_reflection(services, server)
    port = _bind(server, config)
    server.start()
    for name in ("", *services[:2]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics_http = None
    if config.metrics_port is not None:
        from prometheus_client import start_http_server

        metrics_http, _ = start_http_server(config.metrics_port, addr="127.0.0.1", registry=metrics.registry)
    log.info(
        json.dumps(
            {
                "event": "serving",
                "address": config.address,
                "port": port,
                "lists": state.matcher.list_versions,
                "tls": config.tls_cert is not None,
                "auth": config.tokens_path is not None,
            }
        )
    )
    return RunningServer(server, port, state, health_servicer, item_pool, metrics_http)


def _check_transport(config: ServerConfig) -> None:
    """Refuse configurations that would silently be less secure than they read."""
    if config.tls_cert is None and (config.tls_key is not None or config.tls_client_ca is not None):
        raise ValueError("--tls-key and --tls-client-ca need --tls-cert: without it the port would be plaintext")
    host = config.address.rsplit(":", 1)[0].strip("[]")
    if config.tokens_path is None and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to serve {config.address} without authentication: --no-auth is for loopback only")


def _bind(server: grpc.Server, config: ServerConfig) -> int:
    if config.tls_cert is None:
        return int(server.add_insecure_port(config.address))
    if config.tls_key is None:
        raise ValueError("TLS needs both a certificate and its key")
    credentials = grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=config.tls_client_ca.read_bytes() if config.tls_client_ca else None,
        require_client_auth=config.tls_client_ca is not None,
    )
    return int(server.add_secure_port(config.address, credentials))


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
