"""vPDQ: conformance with Meta's sample hashes, the two published match rules, the index against the
reference comparison, video limits, and video lists through the store and the matcher."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from engine.importers.formats import ImportFormat, detect_format, read_records
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.matcher import Decision, Matcher
from engine.query import QueryHashes
from engine.signal_types.spec import LiveSignals, SearchRequest
from engine.signal_types.vpdq import VPDQ as VPDQ_SPEC
from engine.signal_types.vpdq import FrameRule, VpdqMatchOptions
from engine.signals import SignalType, SignalValueError, parse_value
from engine.store import Store
from hashing.errors import MediaError, ReasonCode
from hashing.pdq_hash import PdqHash
from hashing.video import VideoHasher, VideoLimits, VideoOptions, frame_step, is_video
from hashing.vpdq import VpdqHash

DATA = Path(__file__).resolve().parent / "data" / "vpdq"
VIDEOS = sorted((DATA / "videos").glob("*.mp4"))
VPDQ = VPDQ_SPEC
EVERY_FRAME = VideoHasher(VideoOptions(seconds_per_hash=0))
# Files of the match tests: the pattern family (one scene, edited), another scene, and a padded video.
MATCH_FILES = [
    "pattern-hd-no-bar",
    "pattern-longer-no-bar",
    "pattern-sd-grey-bar",
    "pattern-sd-with-large-logo-bar",
    "pattern-sd-with-small-logo-bar",
    "doorknob-hd-no-bar",
    "test-padded-dimensions",
]


def expected(name: str) -> VpdqHash:
    with (DATA / "hashes" / f"{name}.txt").open() as lines:
        return VpdqHash.from_lines(lines)


def conformance(video: Path) -> tuple[int, int, int]:
    """(frames, frames compared, bit-identical frames); fails on the upstream rule."""
    ours = EVERY_FRAME.hash_bytes(video.read_bytes()).vpdq
    with (DATA / "hashes" / f"{video.stem}.txt").open() as lines:
        reference = VpdqHash.from_lines(lines)
    assert [f.frame_number for f in ours.features] == [f.frame_number for f in reference.features]
    compared = identical = 0
    for mine, theirs in zip(ours.features, reference.features, strict=True):
        assert abs(mine.timestamp - theirs.timestamp) < 0.0015
        identical += mine.pdq.digest == theirs.pdq.digest
        if mine.quality >= 50 and theirs.quality >= 50:
            compared += 1
            assert mine.pdq.distance(theirs.pdq) < 31, f"frame {mine.frame_number}"
    return len(ours), compared, identical


@pytest.mark.parametrize("video", VIDEOS, ids=lambda p: p.stem)
def test_every_frame_conforms_to_the_reference(video: Path) -> None:
    frames, compared, identical = conformance(video)
    assert compared > 0.4 * frames  # the rule must have been exercised
    assert identical > 0  # and most videos give many bit-identical frames (see the benchmark's report)


def test_one_hash_per_second_samples_as_the_reference() -> None:
    data = (DATA / "videos" / "pattern-sd-grey-bar.mp4").read_bytes()
    every = EVERY_FRAME.hash_bytes(data)
    sampled = VideoHasher(VideoOptions(seconds_per_hash=1.0)).hash_bytes(data)
    step = frame_step(1.0, every.fps)
    assert step == 30
    assert [f.frame_number for f in sampled.vpdq.features] == list(range(0, every.frames_decoded, step))
    by_number = {f.frame_number: f for f in every.vpdq.features}
    assert all(by_number[f.frame_number] == f for f in sampled.vpdq.features)
    half = VideoHasher(VideoOptions(seconds_per_hash=0.5)).hash_bytes(data)
    assert [f.frame_number for f in half.vpdq.features] == list(range(0, every.frames_decoded, 15))


def test_text_forms_round_trip() -> None:
    video = expected("doorknob-hd-no-bar")
    lines = (DATA / "hashes" / "doorknob-hd-no-bar.txt").read_text().splitlines()
    assert video.lines() == lines
    assert VpdqHash.from_bytes(video.to_bytes()) == video
    from_json = VpdqHash.from_json(video.to_json())  # frame numbers become positions
    assert [f.pdq for f in from_json.features] == [f.pdq for f in video.features]
    assert [f.timestamp for f in from_json.features] == [f.timestamp for f in video.features]
    parsed = parse_value(SignalType.VPDQ, video.to_json())
    assert VPDQ.format(parsed) == video.to_json()
    assert parsed.value == VpdqHash.from_json(video.to_json()).identity()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", ReasonCode.MALFORMED),
        ("[]", ReasonCode.MALFORMED),
        ("0,100,abc,0.000", ReasonCode.BAD_LENGTH),
        ("0,100," + "zz" * 32 + ",0.000", ReasonCode.NOT_HEX),
        ("0,101," + "ab" * 32 + ",0.000", ReasonCode.MALFORMED),
        ("0,100," + "ab" * 32, ReasonCode.MALFORMED),
        ("x,100," + "ab" * 32 + ",0.000", ReasonCode.MALFORMED),
        ('["' + "ab" * 32 + ',100"]', ReasonCode.MALFORMED),
        ("[1, 2]", ReasonCode.MALFORMED),
        ("[broken", ReasonCode.MALFORMED),
    ],
)
def test_invalid_vpdq_text_has_a_reason(text: str, reason: ReasonCode) -> None:
    with pytest.raises(SignalValueError) as caught:
        parse_value(SignalType.VPDQ, text)
    assert caught.value.reason is reason


# ----- the match rules -----


def reference_rule(query: VpdqHash, target: VpdqHash, rule: FrameRule, threshold: int = 31) -> tuple[float, float]:
    """Both upstream rules written out plainly, as their sources read (independent of the engine's code)."""

    def prepared(video: VpdqHash) -> list[int]:
        features = list(video.features)
        if rule is FrameRule.THREATEXCHANGE:  # dedupe by hash first, then the quality filter
            seen: set[bytes] = set()
            unique = []
            for f in features:
                if f.pdq.digest not in seen:
                    seen.add(f.pdq.digest)
                    unique.append(f)
            features = unique
        return [int.from_bytes(f.pdq.digest, "big") for f in features if f.quality >= 50]

    def close(a: int, b: int) -> bool:
        distance = (a ^ b).bit_count()
        return distance < threshold if rule is FrameRule.CPP else distance <= threshold

    q, t = prepared(query), prepared(target)
    if not q or not t:
        return 0.0, 0.0
    q_count = sum(any(close(a, b) for b in t) for a in q)
    t_count = sum(any(close(b, a) for a in q) for b in t)
    return q_count * 100.0 / len(q), t_count * 100.0 / len(t)


@pytest.mark.parametrize("rule", list(FrameRule))
def test_comparison_follows_the_reference_rule_on_the_sample_hash_files(rule: FrameRule) -> None:
    videos = {name: expected(name) for name in MATCH_FILES}
    options = VpdqMatchOptions(rule=rule)
    matched_pairs = 0
    for a, query in videos.items():
        for b, target in videos.items():
            want = reference_rule(query, target, rule)
            got = VPDQ.compare(VPDQ.value_of(query), VPDQ.value_of(target), 31, options)
            assert got.evidence is not None
            assert got.evidence["query_match_percent"] == pytest.approx(want[0], abs=1e-3), (a, b)
            assert got.evidence["compared_match_percent"] == pytest.approx(want[1], abs=1e-3), (a, b)
            assert got.matched == (want[0] >= 80.0 and want[0] > 0), (a, b)
            matched_pairs += got.matched
    assert matched_pairs > len(videos)  # the edited copies of one scene match each other, not only themselves


def test_the_rules_differ_where_the_sources_differ() -> None:
    """A frame pair at exactly 31 bits matches under python-threatexchange's `<=`, not under C++'s `<`; a
    video with a repeated frame counts it twice under C++ only."""
    base = expected("pattern-sd-grey-bar").features[0]
    bits = base.pdq.bits().copy()
    bits.flat[:31] = ~bits.flat[:31]
    far = PdqHash.from_bits(bits, 100)
    assert far.distance(base.pdq) == 31
    query = VpdqHash((base,))
    target = VpdqHash((type(base)(0, far, 0.0),))
    cpp = VpdqMatchOptions(rule=FrameRule.CPP)
    assert not VPDQ.compare(VPDQ.value_of(query), VPDQ.value_of(target), 31, cpp).matched
    assert VPDQ.compare(VPDQ.value_of(query), VPDQ.value_of(target), 31).matched
    other = expected("doorknob-hd-no-bar").features[10]
    repeated = VpdqHash((base, base, other))
    against = VpdqHash((base,))
    cpp_result = VPDQ.compare(VPDQ.value_of(repeated), VPDQ.value_of(against), 31, cpp).evidence
    te_result = VPDQ.compare(VPDQ.value_of(repeated), VPDQ.value_of(against), 31).evidence
    assert cpp_result is not None and te_result is not None
    assert cpp_result["query_match_percent"] == pytest.approx(200 / 3, abs=1e-3)
    assert te_result["query_match_percent"] == pytest.approx(50.0)


@pytest.mark.parametrize("rule", list(FrameRule))
@pytest.mark.parametrize(("query_percent", "compared_percent"), [(80.0, 0.0), (50.0, 90.0), (0.0, 0.0)])
def test_the_index_agrees_with_the_reference_comparison(
    rule: FrameRule, query_percent: float, compared_percent: float
) -> None:
    videos = [VPDQ.value_of(expected(name)) for name in MATCH_FILES]
    options = VpdqMatchOptions(rule=rule, query_percent=query_percent, compared_percent=compared_percent)
    ids = np.arange(100, 100 + len(videos), dtype=np.int64)
    live = LiveSignals(
        np.stack([np.frombuffer(v.value, np.uint8) for v in videos]), ids, tuple(v.payload or b"" for v in videos)
    )
    for backend in ("bruteforce", "mih"):
        index = VPDQ.build_index(live, 31, backend)
        queries = [QueryHashes(others={SignalType.VPDQ: v}) for v in videos]
        request = SearchRequest(queries, 31, [False] * len(queries), options={SignalType.VPDQ: options})
        found = {(hit.query, hit.entry_id): hit for hit in index.search(request)}
        for q, query in enumerate(videos):
            for e, entry in enumerate(videos):
                want = VPDQ.compare(query, entry, 31, options)
                hit = found.get((q, int(ids[e])))
                assert (hit is not None) == want.matched, (backend, MATCH_FILES[q], MATCH_FILES[e])
                if hit is not None:
                    assert hit.distance == want.distance
                    assert hit.evidence == want.evidence


def test_hashed_videos_match_as_the_reference_hashes_do() -> None:
    """Our hashes of the sample videos, compared with each other, give the reference's decisions, and
    percentages within one frame of those of the reference's hash files."""
    names = [v.stem for v in VIDEOS]
    ours = {
        name: VPDQ.value_of(EVERY_FRAME.hash_bytes((DATA / "videos" / f"{name}.mp4").read_bytes()).vpdq)
        for name in names
    }
    for rule in FrameRule:
        options = VpdqMatchOptions(rule=rule)
        for a in names:
            for b in names:
                mine = VPDQ.compare(ours[a], ours[b], 31, options)
                want = reference_rule(expected(a), expected(b), rule)
                assert mine.matched == (want[0] >= 80.0 and want[0] > 0), (rule, a, b)
                assert mine.evidence is not None
                one_frame = 100.0 / min(mine.evidence["query_frames"], mine.evidence["compared_frames"]) + 1e-3
                assert abs(mine.evidence["query_match_percent"] - want[0]) <= one_frame, (rule, a, b)
                assert abs(mine.evidence["compared_match_percent"] - want[1]) <= one_frame, (rule, a, b)


# ----- limits and damaged input -----


def sample_bytes(name: str = "pattern-sd-grey-bar") -> bytes:
    return (DATA / "videos" / f"{name}.mp4").read_bytes()


@pytest.mark.parametrize(
    ("data", "limits", "reason"),
    [
        (b"", VideoLimits(), ReasonCode.EMPTY_INPUT),
        (b"not a video at all" * 100, VideoLimits(), ReasonCode.UNDECODABLE),
        (None, VideoLimits(max_bytes=1000), ReasonCode.TOO_LARGE),
        (None, VideoLimits(max_pixels=100_000), ReasonCode.TOO_LARGE),
        (None, VideoLimits(max_frames=100), ReasonCode.VIDEO_TOO_LONG),
        (None, VideoLimits(max_seconds=2.0), ReasonCode.VIDEO_TOO_LONG),
        (None, VideoLimits(deadline_s=1e-6), ReasonCode.DECODE_TIMEOUT),
    ],
)
def test_limits_and_bad_input_give_their_reason(data: bytes | None, limits: VideoLimits, reason: ReasonCode) -> None:
    with pytest.raises(MediaError) as caught:
        VideoHasher(VideoOptions(limits=limits)).hash_bytes(sample_bytes() if data is None else data)
    assert caught.value.reason is reason


def test_a_truncated_video_is_hashed_as_far_as_it_goes_and_says_so() -> None:
    data = sample_bytes()
    whole = EVERY_FRAME.hash_bytes(data)
    cut = EVERY_FRAME.hash_bytes(data[: len(data) // 2])
    assert not whole.truncated
    assert cut.truncated
    assert 0 < len(cut.vpdq) < len(whole.vpdq)


def test_random_damage_never_crashes_or_hangs() -> None:
    rng = np.random.default_rng(7)
    data = bytearray(sample_bytes("test-padded-dimensions"))
    hasher = VideoHasher(VideoOptions(seconds_per_hash=0, limits=VideoLimits(deadline_s=30)))
    for _ in range(8):
        damaged = bytearray(data)
        spots = rng.integers(0, len(damaged), 40)
        damaged[spots[0] : spots[0] + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()[
            : len(damaged) - spots[0]
        ]
        for spot in spots[1:]:
            damaged[spot] = int(rng.integers(0, 256))
        try:
            result = hasher.hash_bytes(bytes(damaged))
        except MediaError as exc:
            assert exc.reason in {ReasonCode.UNDECODABLE, ReasonCode.TOO_LARGE, ReasonCode.VIDEO_TOO_LONG}
        else:
            assert len(result.vpdq) > 0


def test_videos_are_told_from_images_by_signature() -> None:
    assert all(is_video(path.read_bytes()[:4096]) for path in VIDEOS)
    assert not is_video(b"\xff\xd8\xff\xe0" + bytes(100))
    assert not is_video(b"\x89PNG\r\n\x1a\n" + bytes(100))


# ----- video lists -----


def video_list(store: Store, name: str = "videos") -> None:
    store.create_list(HashList(name, SourceProgramme.NCMEC, frozenset({SignalType.VPDQ, SignalType.MD5})))


def test_hash_files_import_as_one_entry_each_and_match_a_video(tmp_path: Path) -> None:
    folder = tmp_path / "listed"
    folder.mkdir()
    for name in ("pattern-sd-grey-bar", "doorknob-hd-no-bar", "chair-19-sd-bar"):
        (folder / f"{name}.txt").write_text((DATA / "hashes" / f"{name}.txt").read_text())
    (folder / "broken.txt").write_text("0,100,nothex,0.000\n")
    assert detect_format(folder) is ImportFormat.VPDQ
    assert detect_format(folder / "chair-19-sd-bar.txt") is ImportFormat.VPDQ
    with Store(tmp_path / "store.db") as store:
        video_list(store)
        report = import_records(store, "videos", read_records(folder), source_file=str(folder))
        assert (report.added, report.rejected) == (3, 1)
        assert report.rejects[0].reason is ReasonCode.BAD_LENGTH
        again = import_records(store, "videos", read_records(folder), source_file=str(folder))
        assert (again.added, again.unchanged) == (0, 3)

        matcher = Matcher.from_store(store)
        query_video = EVERY_FRAME.hash_bytes(sample_bytes("pattern-sd-with-small-logo-bar"))
        query = QueryHashes(others={SignalType.VPDQ: VPDQ.value_of(query_video.vpdq)})
        verdict = matcher.match(query)
        assert verdict.decision is Decision.MATCH
        (matched,) = verdict.matches
        assert (matched.external_id, matched.signal_type) == ("pattern-sd-grey-bar", SignalType.VPDQ)
        evidence = verdict.to_dict()["matches"][0]["evidence"]
        assert evidence["query_match_percent"] > 95.0
        assert len(evidence["frame_pairs"]) == 5
        assert {"query_frame", "query_time", "entry_frame", "entry_time", "distance"} <= set(evidence["frame_pairs"][0])

        unrelated = EVERY_FRAME.hash_bytes(sample_bytes("test-padded-dimensions"))
        assert (
            matcher.match(QueryHashes(others={SignalType.VPDQ: VPDQ.value_of(unrelated.vpdq)})).decision
            is Decision.NO_MATCH
        )
        strict = Matcher.from_store(store, signal_options={SignalType.VPDQ: VpdqMatchOptions(compared_percent=99.9)})
        assert strict.match(query).decision is Decision.NO_MATCH  # the logo hides a few listed frames


def test_video_entries_export_and_re_import_unchanged(tmp_path: Path) -> None:
    from engine.exporters import ExportFormat, export_entries

    with Store(tmp_path / "store.db") as store:
        video_list(store)
        import_records(store, "videos", read_records(DATA / "hashes" / "doorknob-hd-no-bar.txt"))
        (entry,) = list(store.entries("videos"))
        assert entry.payload is not None
        assert VpdqHash.from_bytes(entry.payload) == expected("doorknob-hd-no-bar")
        assert store.entries_by_id([entry.entry_id])[entry.entry_id].payload == entry.payload
        out = io.StringIO()
        export_entries([entry], out, ExportFormat.CSV)
        exported = tmp_path / "export.csv"
        exported.write_text(out.getvalue())
        video_list(store, "copy")
        report = import_records(store, "copy", read_records(exported))
        assert report.added == 1
        (copy,) = list(store.entries("copy"))
        assert [f.pdq for f in VpdqHash.from_bytes(copy.payload or b"").features] == [
            f.pdq for f in expected("doorknob-hd-no-bar").features
        ]
        assert json.loads(copy.text)[0].startswith(expected("doorknob-hd-no-bar").features[0].pdq.hex())
        store.delete_list("videos")
        assert store.db.execute("SELECT COUNT(*) FROM entry_payloads").fetchone()[0] == 1


# ----- the command line -----


def test_cli_hashes_videos_imports_their_files_and_matches_videos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    hashes = tmp_path / "hashes"
    hashes.mkdir()
    listed = DATA / "videos" / "pattern-sd-grey-bar.mp4"
    image = DATA.parent / "threatexchange" / "pdq" / "data" / "misc-images" / "wee.jpg"
    assert main(["hash", "--seconds-per-hash", "0", "--vpdq-dir", str(hashes), str(listed), str(image)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("0,") and lines[0].endswith(f",{listed}")
    assert lines[-1].endswith(str(image)) and len(lines) == 206 + 1
    written = (hashes / "pattern-sd-grey-bar.txt").read_text().splitlines()
    assert written == [line.rsplit(",", 1)[0] for line in lines[:-1]]

    db = str(tmp_path / "store.db")
    assert main(["lists", "import", "--list", "videos", str(hashes), "--types", "vpdq", "--db", db]) == 0
    query = DATA / "videos" / "pattern-sd-with-small-logo-bar.mp4"
    other = DATA / "videos" / "doorknob-hd-no-bar.mp4"
    capsys.readouterr()
    assert main(["match", "--db", db, str(query), str(other)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"match,{query},videos:")
    assert out[1] == f"no_match,{other},"
    # The C++ rule with every listed frame required: the logo hides some of them.
    assert main(["match", "--db", db, "--video-rule", "cpp", "--video-compared-percent", "100", str(query)]) == 0
    assert capsys.readouterr().out.startswith("no_match,")


def test_cli_reports_a_cut_video_and_refuses_bad_video_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    cut = tmp_path / "cut.mp4"
    data = sample_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert main(["hash", str(cut)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("0,")
    assert f"ERROR,VIDEO_TRUNCATED,{cut}," in captured.err
    assert main(["match", "--video-query-percent", "120", str(cut)]) == 2
    assert "USAGE" in capsys.readouterr().err
    assert main(["match", "--server", "localhost:1", "--seconds-per-hash", "0", str(cut)]) == 2
    assert "--seconds-per-hash" in capsys.readouterr().err  # the server samples as its settings say


def test_a_scan_hashes_videos_and_matches_them_against_video_lists(tmp_path: Path) -> None:
    import zipfile

    from cli.main import main

    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    copy = sample_bytes("pattern-sd-with-small-logo-bar")
    (tree / "clip.mp4").write_bytes(copy)
    (tree / "other.mp4").write_bytes(sample_bytes("doorknob-hd-no-bar"))
    (tree / "cut.mp4").write_bytes(copy[: len(copy) // 2])
    with zipfile.ZipFile(tree / "bundle.zip", "w") as bundle:
        bundle.writestr("inside.mp4", copy)
    with Store(db) as store:
        video_list(store)
        import_records(store, "videos", read_records(DATA / "hashes" / "pattern-sd-grey-bar.txt"))
    assert main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "0"]) == 1  # 1: matches
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    results = {Path(r["path"]).name: r for r in lines}
    for name in ("clip.mp4", "bundle.zip!inside.mp4"):
        record = results[name]
        assert (record["decision"], record["type"], record["vpdq_frames"]) == ("match", "video", 7)
        (matched,) = record["matches"]
        assert (matched["signal_type"], matched["external_id"]) == ("vpdq", "pattern-sd-grey-bar")
        assert matched["evidence"]["query_match_percent"] == 100.0
    assert (results["other.mp4"]["decision"], results["other.mp4"]["vpdq_frames"]) == ("no_match", 4)
    cut = results["cut.mp4"]
    assert cut["reasons"] == ["VIDEO_TRUNCATED"] and cut["vpdq_frames"] >= 1
    assert "vpdq_frames" not in results["bundle.zip"]  # written for videos only


def test_ncmec_video_entries_carry_a_vpdq_fingerprint_beside_their_digests(tmp_path: Path) -> None:
    from engine.importers.formats import records_from_text

    video = expected("doorknob-hd-no-bar")
    page = (
        "<queryResult><images></images><videos><video><id>V-9</id><classification>A1</classification>"
        f"<fingerprints><md5>{'ab' * 16}</md5><vpdq>{video.to_json()}</vpdq></fingerprints></video>"
        "</videos></queryResult>"
    )
    with Store(tmp_path / "store.db") as store:
        video_list(store)
        report = import_records(store, "videos", records_from_text(page, ImportFormat.NCMEC_XML))
        assert (report.added, report.rejected) == (2, 0)
        entries = {entry.signal_type: entry for entry in store.entries("videos")}
        assert entries[SignalType.VPDQ].external_id == entries[SignalType.MD5].external_id == "V-9"
        assert VpdqHash.from_bytes(entries[SignalType.VPDQ].payload or b"").lines()[0].split(",")[2] == (
            video.features[0].pdq.hex()
        )


def test_a_vpdq_hash_given_as_text_is_matched_as_a_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    db = str(tmp_path / "store.db")
    assert (
        main(
            [
                "lists",
                "import",
                "--list",
                "videos",
                str(DATA / "hashes" / "pattern-sd-grey-bar.txt"),
                "--types",
                "vpdq",
                "--db",
                db,
            ]
        )
        == 0
    )
    sampled = VpdqHash(expected("pattern-sd-with-small-logo-bar").features[::30])
    capsys.readouterr()
    assert main(["match", "--db", db, "--hash", f"vpdq:{sampled.to_json()}", "--hash", "vpdq:[broken"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("match,vpdq:[")
    assert "ERROR,INVALID_HASH,vpdq:[broken" in captured.err


def test_sampled_frames_reach_the_gpu_hasher_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the GPU path (its kernels emulated here) a video's frames go in batches, and hash as on the CPU."""
    from hashing.pdq_gpu import GpuImageHasher
    from hashing.pdq_hasher import DihedralMode, PdqContract, PdqResult
    from kernels.runtime import emulated_runtime

    gpu = GpuImageHasher(emulated_runtime())
    sizes: list[int] = []
    original = gpu._hash_many

    def counted(images: list[np.ndarray], key: tuple[PdqContract, DihedralMode]) -> list[PdqResult]:
        sizes.append(len(images))
        return original(images, key)

    monkeypatch.setattr(gpu.batcher, "_process", counted)
    data = sample_bytes("test-padded-dimensions")
    try:
        on_gpu = VideoHasher(VideoOptions(), gpu).hash_bytes(data)
    finally:
        gpu.close()
    on_cpu = VideoHasher(VideoOptions()).hash_bytes(data)
    assert [f.pdq for f in on_gpu.vpdq.features] == [f.pdq for f in on_cpu.vpdq.features]
    assert max(sizes) > 1 and sum(sizes) == len(on_cpu.vpdq) == 5


def rotation_tagged(data: bytes) -> bytes:
    """The same video with its track's display matrix set to a 90-degree rotation, as phones record."""
    import struct

    tagged = bytearray(data)
    box = tagged.index(b"tkhd")
    assert tagged[box + 4] == 0  # version 0: the matrix follows 36 bytes of times, ids and sizes
    matrix = box + 4 + 4 + 20 + 8 + 8
    tagged[matrix : matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    return bytes(tagged)


def test_a_rotation_tag_is_not_applied_as_the_reference_does_not() -> None:
    import cv2

    data = sample_bytes("test-padded-dimensions")
    tagged = rotation_tagged(data)
    stream = io.BytesIO(tagged)  # OpenCV keeps no reference to its stream
    capture = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, [])  # type: ignore[call-overload]
    assert capture.get(cv2.CAP_PROP_ORIENTATION_META) == 90.0  # the tag is there, and OpenCV would apply it
    capture.release()
    assert EVERY_FRAME.hash_bytes(tagged).vpdq == EVERY_FRAME.hash_bytes(data).vpdq


def test_frame_numbers_out_of_range_are_malformed_and_imports_keep_frame_numbers(tmp_path: Path) -> None:
    with pytest.raises(SignalValueError) as caught:
        parse_value(SignalType.VPDQ, f"99999999999,80,{'ab' * 32},0.0")
    assert caught.value.reason is ReasonCode.MALFORMED
    sampled = VpdqHash(expected("doorknob-hd-no-bar").features[::30])
    listed = tmp_path / "sampled.txt"
    listed.write_text("\n".join(sampled.lines()) + "\n")
    with Store(tmp_path / "store.db") as store:
        video_list(store)
        import_records(store, "videos", read_records(listed))
        (entry,) = list(store.entries("videos"))
        assert VpdqHash.from_bytes(entry.payload or b"") == sampled  # frames 0, 30, 60, 90: not renumbered


def test_vpdq_dir_never_overwrites_another_video_s_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(sample_bytes("test-padded-dimensions"))
    out = tmp_path / "hashes"
    out.mkdir()
    assert main(["hash", "--vpdq-dir", str(out), str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert f"ERROR,USAGE,{tmp_path / 'b' / 'clip.mp4'},clip.txt was written" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["clip.txt"]
