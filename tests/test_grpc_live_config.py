"""A running server follows its token file and its store: no restart to rotate or revoke a token, or to serve a
list another process imported."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from cli.main import main
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.media_hasher import MediaHasher
from tests.grpc_fixtures import OTHER, reason_of, serve

OTHER_BYTES = OTHER.read_bytes()


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> float:
    """Seconds until `check()` held; fails after `seconds`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "did not happen in time"
        time.sleep(0.2)
    return time.monotonic() - started


def _accepted(address: str, token: str) -> bool:
    with HashmatchClient(address, token) as client:
        try:
            client.match_hashes([], timeout_s=5)
        except grpc.RpcError as exc:
            assert reason_of(exc) == "UNAUTHENTICATED"
            return False
    return True


def test_rotated_and_revoked_tokens_take_effect_without_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = serve(tmp_path)
    tokens = ["--tokens", str(served.directory / "tokens.json")]
    try:
        assert main(["tokens", "add", "platform", *tokens]) == 0  # rotate: same name, new token
        rotated = capsys.readouterr().out.strip()
        assert _eventually(lambda: _accepted(served.address, rotated)) < 5
        assert not _accepted(served.address, served.matcher_token)  # the old token is gone with the rotation
        assert main(["tokens", "ls", *tokens]) == 0
        assert sorted(capsys.readouterr().out.splitlines()) == ["admin\tadmin", "platform\tmatcher"]
        assert main(["tokens", "rm", "platform", *tokens]) == 0
        assert _eventually(lambda: not _accepted(served.address, rotated)) < 5
        assert main(["tokens", "rm", "platform", *tokens]) == 1  # nothing left to revoke
    finally:
        served.server.stop(1)


def test_a_list_imported_by_another_process_is_served_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = serve(tmp_path, reload_interval_s=0.5)
    db = ["--db", str(served.directory / "h.db")]
    listing = tmp_path / "other.txt"
    listing.write_text(MediaHasher().hash_file(OTHER).pdq.hex() + "\n")

    def decision() -> int:
        with HashmatchClient(served.address, served.matcher_token) as client:
            return int(client.match(OTHER_BYTES).verdict.decision)

    try:
        assert decision() == pb.NO_MATCH
        assert main(["lists", "import", str(listing), "--list", "fresh", *db]) == 0  # the CLI, not the server
        assert _eventually(lambda: decision() == pb.MATCH) < 5
        assert main(["lists", "set", "fresh", "--threshold", "0", *db]) == 0  # settings: a new version too
        with HashmatchClient(served.address, served.admin_token) as admin:
            _eventually(lambda: {s.name: s.serving_version for s in admin.status().lists}.get("fresh") == 2)
        assert main(["lists", "rm", "fresh", "--yes", *db]) == 0
        assert _eventually(lambda: decision() == pb.NO_MATCH) < 5
    finally:
        served.server.stop(1)
