"""`hashmatch serve` refuses what would not work, or would be less secure than it reads, in one line each,
before anything listens."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from grpc_api.auth import Role, TokenStore
from grpc_api.server import ServerStartError
from tests.grpc_fixtures import serve


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[list[str]]:
    path = tmp_path / "tokens.json"
    TokenStore.add(path, "platform", Role.MATCHER)
    yield ["--tokens", str(path), "--db", str(tmp_path / "h.db")]


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["serve", *argv])
    err = capsys.readouterr().err
    assert code in (1, 2), err
    assert err.count("\n") == 1 and err.startswith("hashmatch: error: ") and "Traceback" not in err, err
    return err


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_tokens_in_plaintext_on_a_public_address_are_refused(
    tokens: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(capsys, "--address", "0.0.0.0:0", *tokens)
    assert "INVALID_SETTING" in err and "plaintext" in err and "--insecure-plaintext" in err


def test_an_address_needs_a_port(tokens: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert "needs a port" in _refused(capsys, "--address", "localhost", *tokens)


def test_a_port_in_use_is_one_line(tokens: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with _listening_socket() as taken:
        port = taken.getsockname()[1]
        err = _refused(capsys, "--address", f"127.0.0.1:{port}", *tokens)
    assert "cannot listen on" in err


def test_a_metrics_port_in_use_stops_the_start_before_the_service_listens(
    tokens: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with _listening_socket() as taken, _listening_socket() as probe:
        free = probe.getsockname()[1]
        probe.close()  # a port that was free a moment ago: the service would have taken it
        err = _refused(capsys, "--address", f"127.0.0.1:{free}", "--metrics-port", str(taken.getsockname()[1]), *tokens)
        assert "cannot serve metrics" in err
        with socket.socket() as again:
            again.bind(("127.0.0.1", free))  # nothing took the service port


def test_bad_settings_files_and_values_are_one_line(
    tmp_path: Path, tokens: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text("workers = \n")
    assert "not valid TOML" in _refused(capsys, "--config", str(config), *tokens)
    config.write_text('workers = "many"\n')
    assert "workers" in _refused(capsys, "--config", str(config), *tokens)
    config.write_text("colour = 3\n")
    assert "unknown settings" in _refused(capsys, "--config", str(config), *tokens)


def test_a_missing_store_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tokens.json"
    TokenStore.add(path, "platform", Role.MATCHER)
    err = _refused(capsys, "--tokens", str(path), "--db", str(tmp_path / "typo" / "h.db"), "--address", "127.0.0.1:0")
    assert "STORE_UNAVAILABLE" in err


def test_a_second_server_on_the_same_port_is_refused(tmp_path: Path) -> None:
    """grpcio would share the port (SO_REUSEPORT) and split the traffic between the two."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    first = serve(tmp_path / "one")
    try:
        with pytest.raises(ServerStartError, match="cannot listen"):
            serve(tmp_path / "two", address=first.address)
    finally:
        first.server.stop(0)
