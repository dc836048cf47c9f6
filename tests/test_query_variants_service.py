"""Query variants through the service and the scan: on by default, named with their region, switched off
per request or per server."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from cli.main import main
from engine.query import QueryHashes
from grpc_api.client import HashmatchClient
from grpc_api.generated.hashmatch.v1 import hashmatch_pb2 as pb
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.query_variants import ALL_FAMILIES, Region
from tests.grpc_fixtures import BRIDGE, Served, serve

BORDER = 24


def framed_bridge() -> bytes:
    """The listed bridge photo inside a black border, re-encoded: new bytes, a new PDQ, the same picture."""
    with Image.open(BRIDGE) as image:
        framed = ImageOps.expand(image.convert("RGB"), border=BORDER, fill=(0, 0, 0))
    buffer = io.BytesIO()
    framed.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def rotated_bridge() -> bytes:
    with Image.open(BRIDGE) as image:
        turned = image.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    turned.save(buffer, format="PNG")
    return buffer.getvalue()


def bridge_size() -> tuple[int, int]:
    with Image.open(BRIDGE) as image:
        return image.size


def test_the_service_matches_a_framed_copy_and_names_its_variant_and_region(served: Served) -> None:
    width, height = bridge_size()
    with HashmatchClient(served.address, served.matcher_token) as client:
        verdict = client.match(framed_bridge()).verdict
        assert verdict.decision == pb.MATCH
        (entry,) = verdict.matches
        assert (entry.external_id, entry.variant, entry.dihedral_variant) == ("D-1", "content_box", "")
        assert (entry.region.x, entry.region.y, entry.region.width, entry.region.height) == (
            BORDER,
            BORDER,
            width,
            height,
        )
        assert any(v.name == "content_box" for v in verdict.query.variants)
        off = pb.MatchOptions(no_content_box=True)
        assert client.match(framed_bridge(), options=off).verdict.decision == pb.NO_MATCH
        turned = client.match(rotated_bridge()).verdict
        assert turned.decision == pb.MATCH and turned.matches[0].variant == turned.matches[0].dihedral_variant
        assert turned.matches[0].variant not in ("", "orig") and not turned.matches[0].HasField("region")
        assert client.match(rotated_bridge(), options=pb.MatchOptions(no_dihedral=True)).verdict.decision == (
            pb.NO_MATCH
        )


def test_a_bad_dihedral_threshold_is_refused_with_usage(served: Served) -> None:
    import grpc

    with HashmatchClient(served.address, served.matcher_token) as client, pytest.raises(grpc.RpcError) as caught:
        client.match(framed_bridge(), options=pb.MatchOptions(dihedral_threshold=300))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_hash_answers_no_query_variants(served: Served) -> None:
    with HashmatchClient(served.address, served.matcher_token) as client:
        response = client.hash(framed_bridge(), dihedral=True)
    assert len(response.hashes.dihedral) == 8 and not response.hashes.variants


def test_a_server_without_query_variants_matches_the_querys_own_hash(tmp_path: Path) -> None:
    """Neither its own hashing nor the variants a client sends with MatchHashes: a server's setting is the most
    a request gets."""
    framed = QueryHashes.of_media(MediaHasher(HashOptions(variants=ALL_FAMILIES)).hash_bytes(framed_bridge()))
    assert any(v.name == "content_box" for v in framed.variants)
    running = serve(tmp_path, query_variants=frozenset())
    try:
        with HashmatchClient(running.address, running.matcher_token) as client:
            verdict = client.match(framed_bridge()).verdict
            assert verdict.decision == pb.NO_MATCH and not verdict.query.variants
            (sent,) = client.match_hashes([("framed", framed)]).results
            assert sent.verdict.decision == pb.NO_MATCH
    finally:
        running.server.stop(0)
    (tmp_path / "with").mkdir()
    running = serve(tmp_path / "with")
    try:
        with HashmatchClient(running.address, running.matcher_token) as client:
            (sent,) = client.match_hashes([("framed", framed)]).results
            assert sent.verdict.decision == pb.MATCH and sent.verdict.matches[0].variant == "content_box"
    finally:
        running.server.stop(0)


def test_a_scan_finds_the_framed_copy_and_its_files_say_where(tmp_path: Path) -> None:
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    (tree / "framed.jpg").write_bytes(framed_bridge())
    (tree / "noise.png").write_bytes(_noise_png())
    listed = tmp_path / "list.txt"
    from hashing.media_hasher import MediaHasher

    listed.write_text(MediaHasher().hash_file(BRIDGE).pdq.hex() + "\n")
    assert main(["lists", "import", str(listed), "--list", "demo", "--db", str(db), "--create"]) == 0
    assert main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "1", "--progress", "none"]) == 1
    results = {json.loads(line)["path"]: json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()}
    framed = next(r for path, r in results.items() if path.endswith("framed.jpg"))
    width, height = bridge_size()
    assert framed["decision"] == "match" and framed["matches"][0]["variant"] == "content_box"
    assert framed["matches"][0]["region"] == Region(BORDER, BORDER, width, height).to_dict()
    rows = list(csv.DictReader((out / "matches.csv").read_text().splitlines()))
    assert [(r["variant"], r["region"]) for r in rows] == [("content_box", f"{width}x{height}+{BORDER}+{BORDER}")]
    assert f"{width}x{height}+{BORDER}+{BORDER}" in (out / "report.html").read_text()
    again = tmp_path / "again"
    args = ["scan", str(tree), "--out", str(again), "--db", str(db), "--workers", "1", "--progress", "none"]
    assert main([*args, "--no-content-box"]) == 0  # nothing matched without the content box


def _noise_png() -> bytes:
    pixels = np.random.default_rng(4).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
