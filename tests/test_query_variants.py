"""Query variants (hashing/query_variants.py): the operator fast path against its plain reference, the content
box on generated borders and screenshots, each family finding its transform and nothing on distractors, the
verdict naming the variant and its region, the switches and the per-list opt-out."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from benchmarks.distractors import documents, flat_images, generated_scenes, photo_tiles, screenshots
from cli.main import main
from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, ListSettings, SourceProgramme
from engine.matcher import Decision, Matcher, MatchScope, QueryHashes
from engine.signal_types.pdq import DIHEDRAL_THRESHOLD
from engine.signals import SignalType
from engine.store import Store
from grpc_api.convert import hashes_from_proto, hashes_to_proto, verdict_from_proto, verdict_to_proto
from hashing.errors import InvalidHashError
from hashing.jarosz import axis_operator
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, DownsampleKernel, PdqHasher
from hashing.query_variants import (
    ALL_FAMILIES,
    MAX_VARIANTS,
    QueryVariant,
    Region,
    VariantFamily,
    VariantPlan,
    content_box,
    families_off,
    plan_variants,
    reference_pixels,
    region_operator,
)

HASHER = PdqHasher(backend="numpy")
UPLOADS = MediaHasher(HashOptions(dihedral=DihedralMode.PIXELS, variants=ALL_FAMILIES))
SCENES = [np.asarray(image) for _, image in generated_scenes(8, seed=101)]


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def bordered(pixels: np.ndarray, border: int, colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    return np.asarray(ImageOps.expand(Image.fromarray(pixels), border=border, fill=colour))


def screenshot(pixels: np.ndarray) -> tuple[np.ndarray, Region]:
    """The picture on a white page under a dark title bar; and where it was put."""
    height, width = pixels.shape[:2]
    page = Image.new("RGB", (int(width * 1.3), int(height * 1.4)), (255, 255, 255))
    ImageDraw.Draw(page).rectangle((0, 0, page.width, int(height * 0.12)), fill=(40, 40, 60))
    x, y = int(width * 0.15), int(height * 0.2)
    page.paste(Image.fromarray(pixels), (x, y))
    return np.asarray(page), Region(x, y, width, height)


def center_crop(pixels: np.ndarray, percent: float) -> np.ndarray:
    height, width = pixels.shape[:2]
    dy, dx = int(height * percent / 100), int(width * percent / 100)
    return np.ascontiguousarray(pixels[dy : height - dy, dx : width - dx])


# ----- the fast path against the reference -----


@pytest.mark.parametrize(
    ("length", "start", "size", "before", "after"),
    [(37, 0, 37, 0, 0), (200, 10, 150, 0, 0), (200, 0, 200, 5, 6), (513, 40, 400, 21, 3), (64, 3, 9, 30, 30)],
)
def test_a_region_operator_is_the_padded_operator_folded_onto_the_axis(
    length: int, start: int, size: int, before: int, after: int
) -> None:
    padded = size + before + after
    positions = start + np.clip(np.arange(padded) - before, 0, size - 1)
    selection = np.zeros((padded, length))
    selection[np.arange(padded), positions] = 1.0
    expected = axis_operator(padded).dense @ selection
    np.testing.assert_allclose(region_operator(length, start, size, before, after).dense, expected, atol=1e-15)


@pytest.mark.parametrize("kernel", [DownsampleKernel.FUSED, DownsampleKernel.DENSE])
@pytest.mark.parametrize("grey", [False, True])
def test_variant_hashes_equal_hashing_the_sliced_and_padded_pixels(kernel: DownsampleKernel, grey: bool) -> None:
    hasher = PdqHasher(backend="numpy", kernel=kernel)
    image = bordered(SCENES[0][:301, :457], 23, (250, 250, 250))
    if grey:
        image = np.ascontiguousarray(image[..., 1])
    plans = [
        *plan_variants(image),
        VariantPlan("corner", VariantFamily.CROP, Region(0, 0, 400, 250), extend_bottom=40, extend_right=60),
        VariantPlan("inner", VariantFamily.CROP, Region(31, 17, 123, 99)),
    ]
    assert {p.name for p in plans} >= {"content_box", "crop_98_center", "crop_90_center", "wider_90_center"}
    fast = hasher.hash_variants(image, plans)
    reference = [hasher.hash_image(reference_pixels(image, plan)).hash for plan in plans]
    assert fast == reference


def test_the_reference_pixels_are_the_region_with_its_edges_repeated() -> None:
    image = np.arange(5 * 6, dtype=np.uint8).reshape(5, 6)
    plan = VariantPlan("x", VariantFamily.CROP, Region(1, 2, 3, 2), extend_top=1, extend_left=2)
    assert reference_pixels(image, plan).tolist() == [
        [13, 13, 13, 14, 15],
        [13, 13, 13, 14, 15],
        [19, 19, 19, 20, 21],
    ]


# ----- the content box -----


@pytest.mark.parametrize(
    "frame",
    ["black border", "white border", "coloured border", "letterbox", "pillarbox", "screenshot", "screenshot jpeg"],
)
def test_the_content_box_finds_the_picture_inside_its_frame(frame: str) -> None:
    picture = SCENES[1]
    height, width = picture.shape[:2]
    if frame.startswith("screenshot"):
        framed, where = screenshot(picture)
        if frame.endswith("jpeg"):
            framed = np.asarray(Image.open(io.BytesIO(jpeg(framed, 70))).convert("RGB"))
    elif frame == "letterbox":
        framed, where = bordered(picture, 0), Region(0, (width - height) // 2, width, height)
        canvas = np.zeros((width, width, 3), np.uint8)
        canvas[where.y : where.y + height] = picture
        framed = canvas
    elif frame == "pillarbox":
        canvas = np.zeros((height, height * 2, 3), np.uint8)
        where = Region((height * 2 - width) // 2, 0, width, height)
        canvas[:, where.x : where.x + width] = picture
        framed = canvas
    else:
        colour = {"black border": (0, 0, 0), "white border": (255, 255, 255), "coloured border": (200, 40, 90)}[frame]
        framed, where = bordered(picture, 24, colour), Region(24, 24, width, height)
    box = content_box(framed)
    assert box is not None
    slack = 2 if frame.endswith("jpeg") else 0  # JPEG blocks blur the picture's edge by a pixel or two
    for got, wanted in zip(
        (box.x, box.y, box.width, box.height), (where.x, where.y, where.width, where.height), strict=True
    ):
        assert abs(got - wanted) <= slack, (box, where)
    assert HASHER.hash_variants(framed, [VariantPlan("b", VariantFamily.CONTENT_BOX, box)])[0] - HASHER.hash_image(
        picture
    ).hash <= (16 if slack else 0)


def test_a_resized_screenshot_is_trimmed_through_the_blend_between_its_bar_and_its_page() -> None:
    framed, where = screenshot(SCENES[2])
    half = np.asarray(
        Image.fromarray(framed).resize((framed.shape[1] // 2, framed.shape[0] // 2), Image.Resampling.LANCZOS)
    )
    box = content_box(half)
    assert box is not None and abs(box.y - where.y // 2) <= 2 and abs(box.height - where.height // 2) <= 2


def test_a_pictures_own_flat_sky_is_kept_below_a_black_bar() -> None:
    picture = SCENES[3].copy()
    picture[:60] = (150, 190, 230)  # a flat sky: a run of one colour that is part of the picture
    framed = bordered(picture, 20)
    box = content_box(framed)
    assert box == Region(20, 20, picture.shape[1], picture.shape[0])


@pytest.mark.parametrize("name", ["plain picture", "flat image", "stripe"])
def test_no_content_box_where_there_is_no_frame(name: str) -> None:
    if name == "plain picture":
        image = SCENES[4]
    elif name == "flat image":
        image = np.full((200, 300, 3), 90, np.uint8)
    else:  # the picture is a thin stripe on a flat page: a stripe, not a picture
        image = np.full((400, 400, 3), 255, np.uint8)
        image[190:210] = SCENES[4][:20, :400]
    assert content_box(image) is None


# ----- matching: each family finds its transform, nothing on distractors -----


def store_of(pictures: list[np.ndarray], settings: ListSettings | None = None) -> Store:
    store = Store(":memory:")
    chosen = settings or ListSettings()
    store.create_list(
        HashList(
            "listed",
            SourceProgramme.NCMEC,
            frozenset({SignalType.PDQ}),
            chosen.threshold,
            query_variants=chosen.query_variants,
        )
    )
    lines = "".join(f"{HASHER.hash_image(p).hash.hex()},pdq,E{i}\n" for i, p in enumerate(pictures))
    import_records(store, "listed", records_from_text("hash,type,id\n" + lines, ImportFormat.CSV))
    return store


def upload(pixels: np.ndarray, quality: int = 95) -> QueryHashes:
    return QueryHashes.of_media(UPLOADS.hash_bytes(jpeg(pixels, quality)))


ROTATIONS = {
    "rot270": lambda a: np.rot90(a, 1),  # the upload turned 90 degrees counter-clockwise is undone by rot270
    "rot180": lambda a: np.rot90(a, 2),
    "rot90": lambda a: np.rot90(a, 3),
    "flipy": lambda a: a[:, ::-1],
    "flipx": lambda a: a[::-1],
    "flipplus1": lambda a: np.swapaxes(a, 0, 1),
}


@pytest.mark.parametrize("undone_by", list(ROTATIONS))
def test_a_rotated_or_mirrored_copy_matches_through_its_exact_dihedral_variant(undone_by: str) -> None:
    matcher = Matcher.from_store(store_of(SCENES[:4]))
    verdict = matcher.match(upload(np.ascontiguousarray(ROTATIONS[undone_by](SCENES[0]))))
    assert verdict.decision is Decision.MATCH
    best = verdict.matches[0]
    assert (best.external_id, best.variant, best.region) == ("E0", undone_by, None)
    assert best.distance <= DIHEDRAL_THRESHOLD


def test_a_framed_copy_matches_through_its_content_box_and_the_verdict_says_where() -> None:
    matcher = Matcher.from_store(store_of(SCENES[:4]))
    framed, where = screenshot(SCENES[1])
    verdict = matcher.match(upload(framed))
    assert verdict.decision is Decision.MATCH
    best = verdict.matches[0]
    assert (best.external_id, best.variant) == ("E1", "content_box")
    assert best.region is not None and abs(best.region.x - where.x) <= 2 and abs(best.region.y - where.y) <= 2
    record = verdict.to_dict()["matches"][0]
    assert record["variant"] == "content_box" and record["dihedral_variant"] is None
    assert record["region"] == best.region.to_dict()


def test_a_cropped_copy_matches_through_a_crop_variant_and_a_wider_one_through_its_centre() -> None:
    cropped = center_crop(SCENES[1], 2.5)
    matcher = Matcher.from_store(store_of(SCENES[:4]))
    verdict = matcher.match(upload(cropped))
    assert verdict.decision is Decision.MATCH and verdict.matches[0].variant == "crop_95_center"
    assert verdict.matches[0].region == Region(0, 0, cropped.shape[1], cropped.shape[0])
    # The list holds a crop; the wider original is uploaded.
    matcher = Matcher.from_store(store_of([center_crop(SCENES[3], 5)]))
    verdict = matcher.match(upload(SCENES[3]))
    assert verdict.decision is Decision.MATCH and verdict.matches[0].variant == "wider_90_center"


def test_the_variants_match_nothing_among_distractors() -> None:
    """Every family on, against a list of distractors: none of the other distractors' uploads matches."""
    images = (
        [np.asarray(i) for _, i in generated_scenes(12, seed=202)]
        + [np.asarray(i) for _, i in documents(6)]
        + [np.asarray(i) for _, i in screenshots(8)]
        + [np.asarray(i) for _, i in flat_images(8)]
        + [np.asarray(i) for _, i in photo_tiles([("scene", Image.fromarray(SCENES[5]))])]
    )
    for half in (0, 1):  # each half listed, the other half uploaded
        listed = images[half::2]
        matcher = Matcher.from_store(store_of(listed))
        uploads = [upload(pixels) for pixels in images[1 - half :: 2]]
        assert sum(len(q.variants) for q in uploads) > len(uploads)  # the variants were there to match
        verdicts = matcher.match_many(uploads)
        assert [v.decision for v in verdicts] == [Decision.NO_MATCH] * len(uploads)


def test_switches_and_the_per_list_opt_out_leave_the_query_its_own_hash() -> None:
    framed, _ = screenshot(SCENES[1])
    rotated = np.ascontiguousarray(np.rot90(SCENES[0]))
    queries = [upload(framed), upload(rotated)]
    matcher = Matcher.from_store(store_of(SCENES[:4]))
    assert [v.decision for v in matcher.match_many(queries)] == [Decision.MATCH] * 2
    off = MatchScope(dihedral=False, variants=families_off(no_content_box=True, no_crops=True))
    assert [v.decision for v in matcher.match_many(queries, off)] == [Decision.NO_MATCH] * 2
    only_box = MatchScope(dihedral=False, variants=frozenset({VariantFamily.CONTENT_BOX}))
    assert [v.decision for v in matcher.match_many(queries, only_box)] == [Decision.MATCH, Decision.NO_MATCH]
    opted_out = Matcher.from_store(store_of(SCENES[:4], ListSettings(query_variants=False)))
    assert [v.decision for v in opted_out.match_many(queries)] == [Decision.NO_MATCH] * 2


def test_rotations_are_held_to_the_dihedral_threshold() -> None:
    listed = HASHER.hash_image(SCENES[0]).hash
    matcher = Matcher.from_store(store_of(SCENES[:1]))

    def with_rotation_at(bits: int) -> QueryHashes:
        raw = bytearray(listed.digest)
        for bit in range(bits):
            raw[bit] ^= 0xFF  # 8 bits each
        far = PdqHash(bytes(x ^ 0xFF for x in listed.digest), 100)
        return QueryHashes(pdq=far, dihedral=(far, PdqHash(bytes(raw), 100), *(far,) * 6))

    assert matcher.match(with_rotation_at(1)).matches[0].variant == "rot90"  # 8 bits
    assert matcher.match(with_rotation_at(2)).decision is Decision.NO_MATCH  # 16 bits > 10
    assert matcher.match_many([with_rotation_at(2)], MatchScope(dihedral_threshold=16))[0].decision is Decision.MATCH


def test_a_low_quality_query_is_matched_on_its_own_hash_alone() -> None:
    listed = HASHER.hash_image(SCENES[0]).hash
    matcher = Matcher.from_store(store_of(SCENES[:1]))
    variant = QueryVariant("content_box", VariantFamily.CONTENT_BOX, PdqHash(listed.digest, 100), Region(0, 0, 9, 9))
    far = PdqHash(bytes(x ^ 0xFF for x in listed.digest), 40)
    query = QueryHashes(pdq=far, variants=(variant,))
    assert matcher.match_many([query], MatchScope(quality_gate=0))[0].decision is Decision.NO_MATCH
    assert matcher.match(QueryHashes(pdq=PdqHash(far.digest, 90), variants=(variant,))).decision is Decision.MATCH
    weak = QueryVariant("content_box", VariantFamily.CONTENT_BOX, PdqHash(listed.digest, 30), Region(0, 0, 9, 9))
    assert matcher.match(QueryHashes(pdq=PdqHash(far.digest, 90), variants=(weak,))).decision is Decision.NO_MATCH


# ----- the wire, the CLI and the store -----


def test_variants_and_regions_cross_the_wire() -> None:
    framed, _ = screenshot(SCENES[1])
    query = upload(framed)
    back_query = hashes_from_proto(hashes_to_proto(query))
    assert back_query.variants == query.variants
    assert [v.hash.quality for v in back_query.variants] == [v.hash.quality for v in query.variants]
    verdict = Matcher.from_store(store_of(SCENES[:4])).match(query)
    back = verdict_from_proto(verdict_to_proto(verdict))
    assert back.matches[0].variant == "content_box" and back.matches[0].region == verdict.matches[0].region
    message = hashes_to_proto(query)
    message.variants.extend([message.variants[0]] * MAX_VARIANTS)
    with pytest.raises(InvalidHashError, match="at most"):
        hashes_from_proto(message)
    for what in ("family", "name", "quality", "region"):
        message = hashes_to_proto(query)
        spoiled = message.variants[0]
        if what == "family":
            spoiled.family = "nope"
        elif what == "name":
            spoiled.name = "rot90"  # a content box sent as a rotation
        elif what == "quality":
            spoiled.hash.has_quality = False
        else:
            spoiled.ClearField("region")
        with pytest.raises(InvalidHashError, match=what):
            hashes_from_proto(message)


def test_the_match_command_shows_the_variant_and_obeys_its_switches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(tmp_path / "h.db")]
    listed = tmp_path / "list.txt"
    listed.write_text(HASHER.hash_image(SCENES[1]).hash.hex() + "\n")
    assert main(["lists", "import", str(listed), "--list", "demo", *db]) == 0
    framed, _ = screenshot(SCENES[1])
    path = tmp_path / "framed.jpg"
    path.write_bytes(jpeg(framed))
    capsys.readouterr()
    assert main(["match", str(path), "--json", *db]) == 0
    match = json.loads(capsys.readouterr().out)["matches"][0]
    assert match["variant"] == "content_box" and set(match["region"]) == {"x", "y", "width", "height"}
    assert main(["match", str(path), "--json", "--no-content-box", *db]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "no_match"
    assert main(["lists", "set", "demo", "--no-query-variants", *db]) == 0
    capsys.readouterr()
    assert main(["match", str(path), "--json", *db]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "no_match"
    assert main(["lists", "show", "demo", "--json", *db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["query_variants"] is False and [v["query_variants"] for v in shown["versions"]] == [True, False]
    with pytest.raises(SystemExit):
        main(["match", str(path), "--dihedral-threshold", "300", *db])


def test_a_false_positive_seen_in_a_crop_does_not_explain_a_match_of_the_whole_image() -> None:
    """A negative list's entry found through the content box suppresses a match found through the content box,
    never one of the whole image (nor the other way round)."""
    framed, _ = screenshot(SCENES[1])
    query = upload(framed)
    whole = query.pdq
    assert whole is not None
    store = Store(":memory:")
    for name, negative, value in (("listed", False, whole), ("known-fp", True, HASHER.hash_image(SCENES[1]).hash)):
        store.create_list(HashList(name, SourceProgramme.NCMEC, frozenset({SignalType.PDQ}), negative=negative))
        csv_text = f"hash,type,id\n{value.hex()},pdq,{name}-1\n"
        import_records(store, name, records_from_text(csv_text, ImportFormat.CSV))
    verdict = Matcher.from_store(store).match(query)
    assert [(m.list_name, m.variant) for m in verdict.matches] == [("listed", "orig")]
    assert [(m.list_name, m.variant) for m in verdict.negative_matches] == [("known-fp", "content_box")]
    assert verdict.decision is Decision.MATCH and verdict.suppressed == ()


def test_a_store_of_schema_4_is_migrated_with_query_variants_on(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store(path) as store:
        store.create_list(HashList("old", SourceProgramme.LOCAL, frozenset({SignalType.PDQ})))
        csv_text = f"hash,type,id\n{HASHER.hash_image(SCENES[0]).hash.hex()},pdq,E0\n"
        import_records(store, "old", records_from_text(csv_text, ImportFormat.CSV))
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE lists DROP COLUMN query_variants")
    db.execute("ALTER TABLE versions DROP COLUMN query_variants")
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.get_list("old").query_variants is True  # read through the active version's row
        assert store.latest_settings("old").query_variants is True
        assert [v.settings.query_variants for v in store.versions("old")] == [True]
        assert Matcher.from_store(store).match(upload(np.ascontiguousarray(np.rot90(SCENES[0])))).matches
