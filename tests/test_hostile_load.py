"""One hostile client cannot take the service down. The server runs as its own process, the hostile client as
another (tests/hostile_client.py): 6 concurrent maximum-size images and 64 idle streams from one token, while
another token matches and checks health. The server's peak resident memory (VmHWM) stays within its stated
bound, health answers SERVING throughout, and the other token's requests all succeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from grpc_api.auth import Role, TokenStore
from tests.grpc_fixtures import BRIDGE, make_store

REPO = Path(__file__).resolve().parents[1]
DECODE_BUDGET_MB = 1024  # the default
# Beyond the pixels in flight: a few requests' bytes, thread stacks and gRPC's buffers.
MARGIN_MB = 160


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_hostile_client_cannot_take_the_service_down(tmp_path: Path) -> None:
    db = make_store(tmp_path)
    tokens = tmp_path / "tokens.json"
    token_a = TokenStore.add(tokens, "hostile", Role.MATCHER)
    token_b = TokenStore.add(tokens, "platform", Role.MATCHER)
    address = f"127.0.0.1:{_free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--db", str(db), "--tokens", str(tokens), "--address", address],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "hashmatch serving" in line:
                break
        time.sleep(0.5)
        baseline = _memory(server.pid, "VmRSS")
        client = subprocess.run(
            [sys.executable, "-m", "tests.hostile_client", address, token_a, token_b, str(BRIDGE)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert client.returncode == 0, client.stderr[-3000:]
        peak = _memory(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(30)
    result = json.loads(client.stdout)
    print(f"server: {baseline >> 20} MiB at rest, {peak >> 20} MiB at the peak; client: {result}")
    assert peak - baseline <= (DECODE_BUDGET_MB + MARGIN_MB) << 20, f"{(peak - baseline) >> 20} MiB over rest"
    assert result["health_failures"] == 0 and result["health_checks"] > 0
    assert set(result["other"]) == {"verdict"}, result["other"]  # every ordinary upload was answered
    assert result["refused_streams"] == 64 - 8  # the per-token stream cap
    # Each is hashed (a verdict: zero pixels have quality 0), or refused for memory in words.
    for outcome in result["big"]:
        assert outcome == "verdict:QUALITY_TOO_LOW" or outcome == "RESOURCE_EXHAUSTED:OVERLOADED", outcome
    assert "verdict:QUALITY_TOO_LOW" in result["big"]
