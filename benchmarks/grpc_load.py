"""Load generator for the gRPC benchmark: runs as its own process, so client work does not share the
server's interpreter. Prints one JSON object: requests, seconds, throughput, p50_ms, p99_ms, errors.

    python -m benchmarks.grpc_load --target 127.0.0.1:PORT --token T --mode media --media FILE \\
        --concurrency 4 --requests 400 [--rate 200]
    python -m benchmarks.grpc_load ... --mode hashes --batch 100
    python -m benchmarks.grpc_load ... --mode query-file --queries FILE --batch 1000

Mode query-file sends every PDQ hash of FILE (one hex per line) once, through MatchHashes calls of --batch
queries one after another, and also reports how many queries were answered and how many matched.

Closed loop by default (each of `concurrency` threads sends its next request when the last is answered);
with --rate, open loop: requests are scheduled at that rate and latency counts from the scheduled time, so
queueing shows in the percentiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np

from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2_grpc as pb_grpc


def build_call(args: argparse.Namespace) -> tuple[object, object, int]:
    """(stub method, request, lookups per request) with the request built once."""
    channel = grpc.insecure_channel(
        args.target, options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    )
    stub = pb_grpc.MatcherStub(channel)
    if args.mode in ("media", "media-stream"):
        request = pb.MatchRequest(client_id="load", media=Path(args.media).read_bytes())
        if args.mode == "media-stream":
            return _stream_call(stub, request), request, 1
        return stub.Match, request, 1
    rng = np.random.default_rng(3)
    queries = [
        pb.HashQuery(
            client_id=str(i), hashes=pb.Hashes(pdq=pb.PdqHash(digest=rng.bytes(32), quality=100, has_quality=True))
        )
        for i in range(args.batch)
    ]
    return stub.MatchHashes, pb.MatchHashesRequest(queries=queries), args.batch


def _stream_call(stub: pb_grpc.MatcherStub, request: pb.MatchRequest) -> object:
    """Like a unary call, but through MatchStream: `count` items on one stream, answered in any order.
    Returns (answers with a verdict, answers with an error): what was answered, not what was asked."""

    def call(_request: object, metadata: object, timeout: float, count: int = 1) -> tuple[int, int]:
        answered = failed = 0
        for answer in stub.MatchStream(iter([request] * count), metadata=metadata, timeout=timeout):
            if answer.HasField("error"):
                failed += 1
            else:
                answered += 1
        return answered, failed

    return call


def run(args: argparse.Namespace) -> dict[str, float]:
    if args.mode == "media-stream":
        return run_streams(args)
    method, request, per_request = build_call(args)
    metadata = (("authorization", f"Bearer {args.token}"),)
    for _ in range(5):  # warm the channel and the server
        method(request, metadata=metadata, timeout=30)  # type: ignore[operator]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def one(scheduled: float) -> None:
        try:
            method(request, metadata=metadata, timeout=30)  # type: ignore[operator]
        except grpc.RpcError:
            with lock:
                errors[0] += 1
            return
        with lock:
            latencies.append(time.perf_counter() - scheduled)

    started = time.perf_counter()
    if args.rate:
        interval = 1.0 / args.rate
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            for i in range(args.requests):
                due = started + i * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(one, due)
    else:

        def worker(count: int) -> None:
            for _ in range(count):
                one(time.perf_counter())

        share = [
            args.requests // args.concurrency + (1 if i < args.requests % args.concurrency else 0)
            for i in range(args.concurrency)
        ]
        threads = [threading.Thread(target=worker, args=(n,)) for n in share]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = time.perf_counter() - started
    answered = len(latencies)
    return {
        "requests": answered,
        "lookups": answered * per_request,
        "seconds": seconds,
        "throughput": answered * per_request / seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3) if latencies else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3) if latencies else float("nan"),
        "errors": errors[0],
    }


def run_streams(args: argparse.Namespace) -> dict[str, float]:
    """`concurrency` streams, each carrying its share of the requests; throughput only (no per-item latency)."""
    method, request, _ = build_call(args)
    metadata = (("authorization", f"Bearer {args.token}"),)
    method(request, metadata=metadata, timeout=30, count=5)  # type: ignore[operator]
    share = [
        args.requests // args.concurrency + (1 if i < args.requests % args.concurrency else 0)
        for i in range(args.concurrency)
    ]
    answered = [0]
    errors = [0]
    lock = threading.Lock()

    def worker(count: int) -> None:
        try:
            ok, failed = method(request, metadata=metadata, timeout=300, count=count)  # type: ignore[operator]
        except grpc.RpcError:
            ok, failed = 0, count  # the stream broke: none of its items counts as answered
        with lock:
            answered[0] += ok
            errors[0] += failed

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests": answered[0],
        "lookups": answered[0],
        "seconds": seconds,
        "throughput": answered[0] / seconds,
        "p50_ms": float("nan"),
        "p99_ms": float("nan"),
        "errors": errors[0] + (args.requests - answered[0] - errors[0]),  # asked but never answered
    }


def run_query_file(args: argparse.Namespace) -> dict[str, float]:
    """Every query of the file once, in MatchHashes calls of --batch, back to back; counts what was answered."""
    channel = grpc.insecure_channel(
        args.target, options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    )
    stub = pb_grpc.MatcherStub(channel)
    metadata = (("authorization", f"Bearer {args.token}"),)
    digests = [bytes.fromhex(line) for line in Path(args.queries).read_text().split()]
    requests = [
        pb.MatchHashesRequest(
            queries=[
                pb.HashQuery(
                    client_id=str(start + i), hashes=pb.Hashes(pdq=pb.PdqHash(digest=d, quality=100, has_quality=True))
                )
                for i, d in enumerate(digests[start : start + args.batch])
            ]
        )
        for start in range(0, len(digests), args.batch)
    ]
    stub.MatchHashes(requests[0], metadata=metadata, timeout=60)  # warm the channel and the server
    answered = matched = errors = 0
    latencies: list[float] = []
    started = time.perf_counter()
    for request in requests:
        sent = time.perf_counter()
        try:
            response = stub.MatchHashes(request, metadata=metadata, timeout=300)
        except grpc.RpcError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - sent)
        answered += len(response.results)
        matched += sum(1 for r in response.results if r.HasField("verdict") and len(r.verdict.matches) > 0)
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "lookups": answered,
        "answered": answered,
        "matched": matched,
        "seconds": seconds,
        "throughput": answered / seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3) if latencies else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3) if latencies else float("nan"),
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--mode", choices=["media", "media-stream", "hashes", "query-file"], required=True)
    parser.add_argument("--media")
    parser.add_argument("--queries", help="query-file mode: one PDQ hex per line")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rate", type=float)
    args = parser.parse_args(argv)
    print(json.dumps(run_query_file(args) if args.mode == "query-file" else run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
