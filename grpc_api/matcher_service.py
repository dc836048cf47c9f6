"""The Matcher service: Match, MatchStream, MatchHashes and Hash.

Media lives in memory for one request only: it is hashed and dropped, never written or logged. Requests run
on the server's thread pool (hashing releases the GIL in its Numba kernel); their index lookups go through
one MatchBatcher, so concurrent requests share index searches. Every decode first reserves its estimated
memory from the server's decode budget. Each request may narrow what it is matched with (MatchOptions: the
lists, the dihedral variants, the quality gate), as the local `hashmatch match` options do.
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
from dataclasses import dataclass, replace
from typing import TypeVar

import grpc

from engine.evidence.referrals import ClientIds
from engine.matcher import MAX_NEAREST, MatchScope, Verdict
from engine.signal_types.vpdq import DEFAULT_OPTIONS as DEFAULT_VIDEO_OPTIONS
from engine.signal_types.vpdq import FrameRule, VpdqMatchOptions
from engine.signals import SignalType
from grpc_api.batching import ServerShuttingDownError
from grpc_api.convert import hashes_from_proto, media_hashes_to_proto, verdict_to_proto
from grpc_api.errors import abort, abort_with, status_of
from grpc_api.gate import CALLER
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2_grpc as pb_grpc
from grpc_api.handlers import MALFORMED_DETAIL, Malformed
from grpc_api.serving import ServingState
from hashing.errors import HashmatchError, ReasonCode
from hashing.query_variants import ALL_FAMILIES, VariantFamily, families_off

log = logging.getLogger("hashmatch.server")
ITEM_TIMEOUT_S = 60.0  # the longest any item waits for the index, deadline or not
MAX_HASH_QUERIES = 10_000  # per MatchHashes call
HASH_CHUNK = 1_000  # MatchHashes answers in chunks, checking between them that the caller is still there
MAX_METADATA_BYTES = 4096  # client metadata is echoed in every answer: a stalled reader must not pin much
T = TypeVar("T")


@dataclass(frozen=True)
class StreamLimits:
    window_items: int = 32  # items of one stream read but not yet answered and sent
    window_bytes: int = 64 << 20  # their request bytes; at least one item is always let through
    idle_timeout_s: float = 60.0  # a stream with nothing in flight that sends nothing for this long is ended


class CallerGoneError(Exception):
    """The client cancelled or its deadline passed while the server was still working."""


def scope_of(
    options: pb.MatchOptions,
    defaults: VpdqMatchOptions = DEFAULT_VIDEO_OPTIONS,
    variants: frozenset[VariantFamily] = ALL_FAMILIES,
) -> MatchScope:
    """The request's scope over the server's defaults; `variants`: the query-variant families the server
    hashes with, so that variants a client sends in `MatchHashes` are matched no more than the server's own."""
    if not 0 <= options.nearest <= MAX_NEAREST:
        raise HashmatchError(
            ReasonCode.USAGE, f"nearest is {options.nearest}; ask for 0..{MAX_NEAREST} entries per list"
        )
    return MatchScope(
        lists=frozenset(options.lists) or None,
        dihedral=not options.no_dihedral,
        variants=families_off(no_content_box=options.no_content_box, no_crops=options.no_crops) & variants,
        dihedral_threshold=_dihedral_threshold(options),
        quality_gate=options.quality_gate if options.HasField("quality_gate") else None,
        nearest=options.nearest,
        signal_options=_video_options(options, defaults),
    )


def _dihedral_threshold(options: pb.MatchOptions) -> int | None:
    if not options.HasField("dihedral_threshold"):
        return None
    if not 0 <= options.dihedral_threshold <= 256:
        raise HashmatchError(ReasonCode.USAGE, f"dihedral_threshold is {options.dihedral_threshold}; 0..256 bits")
    return options.dihedral_threshold


def _video_options(options: pb.MatchOptions, defaults: VpdqMatchOptions) -> dict[SignalType, object] | None:
    """The request's vPDQ options over the server's; None (the server's) when it sets none."""
    asked = bool(options.video_rule) or options.HasField("video_query_percent")
    if not asked and not options.HasField("video_compared_percent"):
        return None
    try:
        chosen = replace(
            defaults,
            rule=FrameRule(options.video_rule) if options.video_rule else defaults.rule,
            query_percent=options.video_query_percent
            if options.HasField("video_query_percent")
            else defaults.query_percent,
            compared_percent=options.video_compared_percent
            if options.HasField("video_compared_percent")
            else defaults.compared_percent,
        )
    except ValueError as exc:
        raise HashmatchError(ReasonCode.USAGE, f"video options: {exc}") from exc
    return {SignalType.VPDQ: chosen}


def client_ids(metadata: pb.ClientMetadata) -> ClientIds:
    """The platform's upload and user ids as the request carried them (empty: not given)."""
    return ClientIds(metadata.upload_id or None, metadata.user_id or None)


def _check_metadata(metadata: pb.ClientMetadata) -> None:
    size = metadata.ByteSize()
    if size > MAX_METADATA_BYTES:
        raise HashmatchError(
            ReasonCode.TOO_LARGE, f"client metadata of {size} bytes; at most {MAX_METADATA_BYTES} are echoed back"
        )


class MatcherService(pb_grpc.MatcherServicer):
    def __init__(self, state: ServingState, pool: futures.ThreadPoolExecutor, limits: StreamLimits) -> None:
        self.state = state
        self.pool = pool
        self.limits = limits

    def _verdict_for_media(
        self,
        media: bytes,
        scope: MatchScope,
        context: grpc.ServicerContext | None,
        started: float,
        actor: str,
        method: str,
        metadata: pb.ClientMetadata,
    ) -> pb.Verdict:
        """Media that cannot be decoded is still matched on its exact digests; the verdict's reasons say
        why it has no PDQ (UNDECODABLE, UNSUPPORTED_FORMAT, TOO_LARGE), and media_error gives the detail.
        Only empty media is an error."""
        self.state.matcher.lists_in(scope)  # an unknown list is an error before any decoding
        # A video is not hashed past the caller's deadline (its hasher has its own as well).
        found = self.state.media.of_bytes(media, context.time_remaining() if context is not None else None)
        if found.error is not None:
            self.state.metrics.errors.labels(str(found.error.reason)).inc()
        assert found.query is not None  # bytes in memory always give at least their digests
        # The time left is read after hashing; without a client deadline the wait is bounded by ours.
        left = context.time_remaining() if context is not None else None
        timeout = ITEM_TIMEOUT_S if left is None or left > ITEM_TIMEOUT_S else max(left, 0.0)
        verdict = self.state.batcher.match(found.query, scope, timeout=timeout)
        self.state.record([verdict], actor, method, lambda _: client_ids(metadata))
        message = verdict_to_proto(replace(verdict, elapsed_ms=(time.perf_counter() - started) * 1e3))
        if found.error is not None:
            message.media_error.CopyFrom(pb.Error(reason=str(found.error.reason), detail=found.error.detail))
        return message

    def _scope(self, options: pb.MatchOptions) -> MatchScope:
        return scope_of(options, self.state.video_options, self.state.hasher.options.variants)

    def MatchVideo(  # noqa: N802
        self, request_iterator: Iterator[pb.VideoChunk | Malformed], context: grpc.ServicerContext
    ) -> pb.MatchResponse:
        """Chunks are joined in memory (never on disk) up to the server's video byte limit; the verdict comes
        once the client has sent its last chunk. The bytes held are reserved from the server's decode budget as
        they arrive (OVERLOADED when it stays full; TOO_LARGE past its capacity), so uploads and decodes share
        one memory bound."""

        def run() -> pb.MatchResponse:
            with contextlib.ExitStack() as held:
                return upload(held)

        def upload(held: contextlib.ExitStack) -> pb.MatchResponse:
            started = time.perf_counter()
            limit = self.state.media.videos.options.limits.max_bytes
            first: pb.VideoChunk | None = None
            data = bytearray()
            for chunk in _chunks(request_iterator):
                if isinstance(chunk, Malformed):
                    raise HashmatchError(ReasonCode.MALFORMED_REQUEST, MALFORMED_DETAIL)
                if first is None:
                    first = chunk
                    _check_metadata(first.metadata)
                    self.state.matcher.lists_in(self._scope(first.options))  # fail before the upload, not after
                if len(data) + len(chunk.data) > limit:
                    raise HashmatchError(ReasonCode.TOO_LARGE, f"a video upload is at most {limit} bytes")
                # Twice its size: the chunks, and the one copy that joins them into the bytes hashed.
                held.enter_context(self.state.budget.reserve(2 * len(chunk.data)))
                data += chunk.data
            if first is None:
                raise HashmatchError(ReasonCode.EMPTY_INPUT, "no chunk was sent")
            media = bytes(data)
            del data
            scope = self._scope(first.options)
            verdict = self._verdict_for_media(
                media, scope, context, started, CALLER.get(), "MatchVideo", first.metadata
            )
            return pb.MatchResponse(client_id=first.client_id, metadata=first.metadata, verdict=verdict)

        return observed(self.state, "MatchVideo", context, run)

    def Match(self, request: pb.MatchRequest, context: grpc.ServicerContext) -> pb.MatchResponse:  # noqa: N802
        def run() -> pb.MatchResponse:
            started = time.perf_counter()
            _check_metadata(request.metadata)
            scope = self._scope(request.options)
            verdict = self._verdict_for_media(
                request.media, scope, context, started, CALLER.get(), "Match", request.metadata
            )
            return pb.MatchResponse(client_id=request.client_id, metadata=request.metadata, verdict=verdict)

        return observed(self.state, "Match", context, run)

    def MatchHashes(  # noqa: N802
        self, request: pb.MatchHashesRequest, context: grpc.ServicerContext
    ) -> pb.MatchHashesResponse:
        def run() -> pb.MatchHashesResponse:
            started = time.perf_counter()
            if len(request.queries) > MAX_HASH_QUERIES:
                raise HashmatchError(
                    ReasonCode.TOO_LARGE, f"{len(request.queries)} queries; send at most {MAX_HASH_QUERIES} per call"
                )
            for query in request.queries:
                if query.HasField("metadata"):  # kept in referral records: bounded as Match's is
                    _check_metadata(query.metadata)
            queries = [hashes_from_proto(q.hashes) for q in request.queries]
            scope = self._scope(request.options)
            matcher = self.state.matcher  # one version for the whole call
            verdicts: list[Verdict] = []
            for start in range(0, len(queries), HASH_CHUNK):
                if not context.is_active():
                    raise CallerGoneError("the caller went away")
                verdicts.extend(matcher.match_many(queries[start : start + HASH_CHUNK], scope))
            elapsed_ms = (time.perf_counter() - started) * 1e3  # the queries are answered together
            queries_sent = request.queries  # ids are read only for the verdicts that refer (few, if any)
            self.state.record(verdicts, CALLER.get(), "MatchHashes", lambda i: client_ids(queries_sent[i].metadata))
            return pb.MatchHashesResponse(
                results=[
                    pb.MatchResponse(client_id=q.client_id, verdict=verdict_to_proto(replace(v, elapsed_ms=elapsed_ms)))
                    for q, v in zip(request.queries, verdicts, strict=True)
                ]
            )

        return observed(self.state, "MatchHashes", context, run)

    def Hash(self, request: pb.HashRequest, context: grpc.ServicerContext) -> pb.HashResponse:  # noqa: N802
        def run() -> pb.HashResponse:
            hashes = self.state.plain_hasher.hash_bytes(request.media)
            response = media_hashes_to_proto(hashes)
            if not request.dihedral:
                del response.hashes.dihedral[:]
            return response

        return observed(self.state, "Hash", context, run)

    def MatchStream(  # noqa: N802
        self, request_iterator: Iterator[pb.MatchRequest | Malformed], context: grpc.ServicerContext
    ) -> Generator[pb.MatchResponse, None, None]:
        """Items are hashed in parallel and answered as each is ready. At most `window_items` items, and
        `window_bytes` of their requests, are read but not yet answered: a client that stops reading answers
        stops being read from (flow control). A stream with nothing in flight that sends nothing for
        `idle_timeout_s` is ended with DEADLINE_EXCEEDED (IDLE_TIMEOUT)."""
        window = _StreamWindow(self.limits)
        results: queue.Queue[tuple[pb.MatchResponse, int] | None] = queue.Queue()
        submitted = [0]
        ended = threading.Event()

        actor = CALLER.get()  # items are answered on other threads

        def answer(request: pb.MatchRequest | Malformed, size: int) -> None:
            results.put((self._stream_answer(request, actor), size))

        def read() -> None:
            try:
                for request in request_iterator:
                    size = 0 if isinstance(request, Malformed) else len(request.media) + request.metadata.ByteSize()
                    if not window.take(size, ended):
                        return
                    try:
                        self.pool.submit(answer, request, size)
                    except RuntimeError:  # the item pool is shut down: the server is stopping
                        window.give_back(size)
                        return
                    submitted[0] += 1
            except (grpc.RpcError, RuntimeError):
                pass  # the client went away, or the server is shutting down
            finally:
                results.put(None)  # submitted[0] is final from here on

        started = time.perf_counter()
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
                    if window.idle_for() > self.limits.idle_timeout_s:
                        code = "DEADLINE_EXCEEDED"
                        abort(context, ReasonCode.IDLE_TIMEOUT, f"no item for {self.limits.idle_timeout_s:g} s")
                    continue
                if item is None:
                    total = submitted[0]
                    continue
                response, size = item
                answered += 1
                yield response
                window.give_back(size)  # only once the answer has gone out
        except GeneratorExit:
            code = "CANCELLED"
            raise
        finally:
            ended.set()
            _log_rpc(self.state, "MatchStream", code, time.perf_counter() - started, context, items=answered)

    def _stream_answer(self, request: pb.MatchRequest | Malformed, actor: str) -> pb.MatchResponse:
        if isinstance(request, Malformed):
            self.state.metrics.errors.labels(ReasonCode.MALFORMED_REQUEST.value).inc()
            return pb.MatchResponse(error=pb.Error(reason=ReasonCode.MALFORMED_REQUEST.value, detail=MALFORMED_DETAIL))
        try:
            started = time.perf_counter()
            _check_metadata(request.metadata)
            scope = self._scope(request.options)
            verdict = self._verdict_for_media(
                request.media, scope, None, started, actor, "MatchStream", request.metadata
            )
            return pb.MatchResponse(client_id=request.client_id, metadata=request.metadata, verdict=verdict)
        except HashmatchError as exc:
            self.state.metrics.errors.labels(str(exc.reason)).inc()
            error = pb.Error(reason=str(exc.reason), detail=exc.detail)
        except ServerShuttingDownError:
            error = pb.Error(reason=ReasonCode.SHUTTING_DOWN.value, detail="the server stopped before this item")
        except futures.TimeoutError:
            error = pb.Error(reason=ReasonCode.DEADLINE_EXCEEDED.value, detail=f"no index answer in {ITEM_TIMEOUT_S} s")
        except Exception:  # one item's failure must not end the stream
            log.exception("stream item failed")
            error = pb.Error(reason=ReasonCode.INTERNAL.value, detail="internal error; the server log has the details")
        if request.metadata.ByteSize() > MAX_METADATA_BYTES:  # never echo what was refused for its size
            return pb.MatchResponse(client_id=request.client_id, error=error)
        return pb.MatchResponse(client_id=request.client_id, metadata=request.metadata, error=error)


def _chunks(requests: Iterator[pb.VideoChunk | Malformed]) -> Iterator[pb.VideoChunk | Malformed]:
    """An upload's chunks; a client that cancels part-way is gone, not an internal error."""
    try:
        yield from requests
    except grpc.RpcError as exc:
        raise CallerGoneError("the caller cancelled the upload") from exc


class _StreamWindow:
    """Items and request bytes read but not yet answered, and when the stream was last active."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self.items = 0
        self.bytes = 0
        self.active = time.monotonic()
        self._changed = threading.Condition()

    def take(self, size: int, ended: threading.Event) -> bool:
        """Wait for room; False when the stream ended meanwhile."""
        with self._changed:
            while self.items and (
                self.items >= self.limits.window_items or self.bytes + size > self.limits.window_bytes
            ):
                if ended.is_set():
                    return False
                self._changed.wait(0.5)
            self.items += 1
            self.bytes += size
            self.active = time.monotonic()
        return True

    def give_back(self, size: int) -> None:
        with self._changed:
            self.items -= 1
            self.bytes -= size
            self.active = time.monotonic()
            self._changed.notify_all()

    def idle_for(self) -> float:
        """Seconds with nothing in flight and nothing read; 0 while items are in flight."""
        with self._changed:
            return 0.0 if self.items else time.monotonic() - self.active


def observed(state: ServingState, method: str, context: grpc.ServicerContext, run: Callable[[], T]) -> T:
    """Run an RPC body: metrics, one structured log line (never media), and typed errors -> status codes."""
    with handled(state, method, context):
        return run()
    raise AssertionError("unreachable: handled() aborts the call on every error")  # pragma: no cover


@contextlib.contextmanager
def handled(state: ServingState, method: str, context: grpc.ServicerContext) -> Iterator[None]:
    """What `observed` does, for a body that is not one call (a server-streaming method's generator)."""
    started = time.perf_counter()
    code = "OK"
    try:
        yield
    except HashmatchError as exc:
        code = status_of(exc.reason).name
        state.metrics.errors.labels(str(exc.reason)).inc()
        abort_with(context, exc)
    except ServerShuttingDownError:
        code = status_of(ReasonCode.SHUTTING_DOWN).name
        abort(context, ReasonCode.SHUTTING_DOWN, "the server is shutting down")
    except futures.TimeoutError:
        code = status_of(ReasonCode.DEADLINE_EXCEEDED).name
        abort(context, ReasonCode.DEADLINE_EXCEEDED, "the deadline passed while waiting for the index")
    except CallerGoneError as exc:
        code = "CANCELLED"
        context.abort(grpc.StatusCode.CANCELLED, str(exc))
        raise
    except GeneratorExit:  # a streamed answer the caller stopped reading (it cancelled, or went away)
        code = "CANCELLED"
        raise
    except Exception:
        code = status_of(ReasonCode.INTERNAL).name
        log.exception("%s failed", method)
        abort(context, ReasonCode.INTERNAL, "internal error; the server log has the details")
    finally:
        _log_rpc(state, method, code, time.perf_counter() - started, context)


def _log_rpc(
    state: ServingState, method: str, code: str, seconds: float, context: grpc.ServicerContext, **extra: object
) -> None:
    state.metrics.requests.labels(method, code).inc()
    state.metrics.latency.labels(method).observe(seconds)
    if log.isEnabledFor(logging.INFO):  # the JSON is built only when someone reads it
        record = {"event": "rpc", "method": method, "code": code, "ms": round(seconds * 1e3, 3), **extra}
        log.info(json.dumps(record | {"peer": context.peer()}))
