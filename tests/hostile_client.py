"""The hostile client of tests/test_hostile_load.py, run as its own process: token A opens 64 idle streams and
sends 6 maximum-size images at once (zero-filled 9400 x 9400 PNGs: 0.3 MB on the wire, 265 MB of pixels),
while token B keeps matching an ordinary photo and checking health. Prints one JSON object of what each got.

    python -m tests.hostile_client ADDRESS TOKEN_A TOKEN_B PHOTO
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from grpc_api.client import HashmatchClient
from grpc_api.errors import reason_of_error

SIDE = 9400  # 88.4 MP: just under the default pixel limit of 89,000,000
BIG_UPLOADS = 6
IDLE_STREAMS = 64


def _outcome(call: object) -> str:
    try:
        response = call()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return f"{exc.code().name}:{reason_of_error(exc)}"
    return "verdict" + "".join(f":{r}" for r in response.verdict.reasons)


def _refused(stream: Any) -> bool:
    return bool(stream.done() and stream.code() is grpc.StatusCode.RESOURCE_EXHAUSTED)


def main(address: str, token_a: str, token_b: str, photo: Path) -> dict[str, object]:
    buffer = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE)).save(buffer, format="PNG")
    big = buffer.getvalue()
    ordinary = photo.read_bytes()
    release = threading.Event()

    def idle() -> Iterator[tuple[str, bytes]]:
        release.wait(120)
        return
        yield

    greedy = HashmatchClient(address, token_a, timeout_s=120)
    streams = [greedy.match_stream(idle()) for _ in range(IDLE_STREAMS)]
    big_outcomes: list[str] = []
    lock = threading.Lock()

    def upload() -> None:
        outcome = _outcome(lambda: greedy.match(big, timeout_s=120))
        with lock:
            big_outcomes.append(outcome)

    uploads = [threading.Thread(target=upload) for _ in range(BIG_UPLOADS)]
    for thread in uploads:
        thread.start()
    other: dict[str, int] = {}
    health_failures = 0
    health_checks = 0
    with HashmatchClient(address, token_b, timeout_s=30) as polite:
        health = health_pb2_grpc.HealthStub(polite.channel)
        while any(thread.is_alive() for thread in uploads):
            outcome = _outcome(lambda: polite.match(ordinary, timeout_s=30))
            other[outcome] = other.get(outcome, 0) + 1
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                health_failures += answer.status != health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                health_failures += 1
            health_checks += 1
            time.sleep(0.05)
    for thread in uploads:
        thread.join()
    refused_streams = len([s for s in streams if _refused(s)])
    release.set()
    greedy.close()
    return {
        "big": big_outcomes,
        "other": other,
        "health_checks": health_checks,
        "health_failures": health_failures,
        "refused_streams": refused_streams,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
