"""`hashmatch serve` settings, `hashmatch tokens add`, `hashmatch match --server`, and the metrics endpoint."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from cli.main import build_parser, main
from cli.serve_command import build_config
from grpc_api.client import HashmatchClient
from hashing.errors import HashmatchError
from tests.grpc_fixtures import BRIDGE, OTHER, serve


def parse(*argv: str) -> object:
    return build_parser().parse_args(["serve", *argv])


def test_settings_come_from_flags_then_environment_then_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hashmatch.toml"
    config.write_text('address = "127.0.0.1:6000"\nworkers = 3\nmax_concurrent_rpcs = 7\n')
    args = parse("--config", str(config), "--no-auth", "--db", str(tmp_path / "h.db"), "--workers", "5")
    resolved = build_config(args, {"HASHMATCH_MAX_CONCURRENT_RPCS": "9"})  # type: ignore[arg-type]
    assert (resolved.address, resolved.workers, resolved.max_concurrent_rpcs) == ("127.0.0.1:6000", 5, 9)
    assert resolved.tokens_path is None
    config.write_text("colour = 3\n")
    with pytest.raises(HashmatchError, match="unknown settings"):
        build_config(args, {})  # type: ignore[arg-type]


def test_flood_quarantine_settings(tmp_path: Path) -> None:
    db = ["--no-auth", "--db", str(tmp_path / "h.db")]
    resolved = build_config(parse(*db, "--flood-multiple", "4"), {"HASHMATCH_FLOOD_QUARANTINE": "off"})  # type: ignore[arg-type]
    assert resolved.flood.multiple == 4 and resolved.flood.enabled is False
    assert build_config(parse(*db), {}).flood.enabled is True  # type: ignore[arg-type]
    with pytest.raises(HashmatchError, match="multiple > 1"):
        build_config(parse(*db, "--flood-multiple", "0.5"), {})  # type: ignore[arg-type]
    with pytest.raises(HashmatchError, match="flood_quarantine"):
        build_config(parse(*db), {"HASHMATCH_FLOOD_QUARANTINE": "maybe"})  # type: ignore[arg-type]


def test_query_variant_settings(tmp_path: Path) -> None:
    db = ["--no-auth", "--db", str(tmp_path / "h.db")]
    default = build_config(parse(*db), {})  # type: ignore[arg-type]
    assert default.dihedral.value == "pixels" and {f.value for f in default.query_variants} == {"content_box", "crop"}
    resolved = build_config(parse(*db, "--query-variants", "none"), {"HASHMATCH_DIHEDRAL": "dct"})  # type: ignore[arg-type]
    assert resolved.query_variants == frozenset() and resolved.dihedral.value == "dct"
    assert {f.value for f in build_config(parse(*db, "--query-variants", "crop"), {}).query_variants} == {"crop"}  # type: ignore[arg-type]
    with pytest.raises(HashmatchError, match="query_variants"):
        build_config(parse(*db, "--query-variants", "borders"), {})  # type: ignore[arg-type]
    with pytest.raises(HashmatchError, match="dihedral is one of"):
        build_config(parse(*db, "--dihedral", "sideways"), {})  # type: ignore[arg-type]


def test_serve_refuses_to_start_without_tokens_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", str(tmp_path / "h.db")]) == 2
    assert "no API tokens" in capsys.readouterr().err


def test_tokens_add_prints_the_token_once_and_stores_its_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "add", "edge", "--role", "admin", "--db", str(tmp_path / "h.db")]) == 0
    token = capsys.readouterr().out.strip()
    stored = json.loads((tmp_path / "tokens.json").read_text())
    assert token.startswith("hm_") and token not in json.dumps(stored)
    assert stored[0]["name"] == "edge" and stored[0]["role"] == "admin"
    assert (tmp_path / "tokens.json").stat().st_mode & 0o077 == 0  # owner only
    assert main(["tokens", "rm", "edge", "--db", str(tmp_path / "h.db")]) == 0
    from engine.audit.log import export

    records = [(r["kind"], r["data"]) for r in export(tmp_path / "h.audit.jsonl")]
    assert [kind for kind, _ in records] == ["token_added", "token_removed"]
    assert records[0][1]["name"] == "edge" and records[0][1]["role"] == "admin"
    assert token not in json.dumps(records) and stored[0]["sha256"] not in json.dumps(records)
    new_place = tmp_path / "fresh" / "h.db"  # a folder the token file creates: the log goes beside it
    assert main(["tokens", "add", "x", "--db", str(new_place)]) == 0
    assert (tmp_path / "fresh" / "h.audit.jsonl").exists()


def test_match_through_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    served = serve(tmp_path)
    try:
        argv = ["match", "--server", served.address, "--token", served.matcher_token, str(BRIDGE), str(OTHER)]
        assert main(argv) == 0
        lines = sorted(capsys.readouterr().out.splitlines())
        assert lines[0].startswith(f"match,{BRIDGE},demo:") and lines[1] == f"no_match,{OTHER},"
        assert main([*argv[:5], "--json", "--hash", "md5:" + "00" * 16]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[0])["decision"] == "no_match"
        assert main(["match", "--server", served.address, str(BRIDGE)]) == 1  # no token
        assert "UNAUTHENTICATED" in capsys.readouterr().err
    finally:
        served.server.stop(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_prometheus_metrics(tmp_path: Path) -> None:
    port = free_port()
    served = serve(tmp_path, metrics_port=port)
    try:
        with HashmatchClient(served.address, served.matcher_token) as client:
            client.match(BRIDGE.read_bytes())
            client.match(OTHER.read_bytes())
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        served.server.stop(1)
    for expected in (
        'hashmatch_requests_total{code="OK",method="Match"} 2.0',
        'hashmatch_verdicts_total{decision="match"} 1.0',
        'hashmatch_verdicts_total{decision="no_match"} 1.0',
        'hashmatch_matches_total{list="demo"} 2.0',
        'hashmatch_index_entries{list="demo"} 1.0',
        'hashmatch_serving_version{list="demo"} 1.0',
        "hashmatch_request_seconds_bucket",
        "hashmatch_batch_size_bucket",
        # The prevalence counters: the bridge's verdict under its closest match (PDQ and MD5 are both at distance
        # 0; the PDQ entry was listed first), the other's as a no_match.
        'hashmatch_prevalence_total{classification="A1",decision="match",list="demo",signal_type="pdq",'
        'variant="orig"} 1.0',
        'hashmatch_prevalence_total{classification="",decision="no_match",list="",signal_type="",variant=""} 1.0',
        "hashmatch_entries_held 0.0",
    ):
        assert expected in text, expected
