"""`hashmatch scan` end to end on a generated tree (benign generated images only): the expected result line
for every input, duplicates hashed once, reports written, exit status; and resumption after SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kernels.optional
from cli.main import main
from engine.importers.formats import ImportFormat, records_from_text
from engine.importing import import_records
from engine.lists import HashList, SourceProgramme
from engine.signals import SignalType
from engine.store import Store
from hashing.exact import ExactDigests
from hashing.media_hasher import HashOptions, MediaHasher

ROOT = Path(__file__).resolve().parent.parent


def image_bytes(seed: int, size: tuple[int, int] = (96, 80), kind: str = "JPEG") -> bytes:
    """A benign generated picture: smooth colour gradients with a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([x * rng.uniform(1, 3), y * rng.uniform(1, 3), (x + y) * rng.uniform(0.5, 2)], axis=-1)
    pixels = (base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind, **({"quality": 92} if kind == "JPEG" else {}))
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def build_tree(root: Path) -> dict[str, bytes]:
    listed, other, in_zip, in_tar = (
        image_bytes(1),
        image_bytes(2, kind="PNG"),
        image_bytes(3),
        image_bytes(4, kind="PNG"),
    )
    rotated = io.BytesIO()
    Image.open(io.BytesIO(listed)).rotate(90, expand=True).save(rotated, format="PNG")
    broken = listed[: len(listed) // 2]
    (root / "photos" / "sub").mkdir(parents=True)
    files = {
        "photos/a.jpg": listed,
        "photos/b.png": other,
        "photos/copy-of-a.jpg": listed,
        "photos/sub/rotated.png": rotated.getvalue(),
        "broken.jpg": broken,
        "notes.txt": b"meeting at noon\n",
        "empty.bin": b"",
        "bundle.zip": _zip({"e.jpg": in_zip, "inner/nested.tar.gz": _tar_gz({"f.png": in_tar})}),
        "bomb.zip": _zip({"zeros.bin": bytes(3 << 20)}),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "photos" / "sub" / "loop").symlink_to(root / "photos")
    os.mkfifo(root / "pipe")
    return {"listed": listed, "in_zip": in_zip, "in_tar": in_tar, "broken": broken}


def planted_rows(planted: dict[str, bytes]) -> list[str]:
    hasher = MediaHasher()
    return [
        f"{hasher.hash_bytes(planted['listed']).pdq.hex()},pdq,A",
        f"{hasher.hash_bytes(planted['in_zip']).pdq.hex()},pdq,E",
        f"{ExactDigests.of(planted['in_tar']).md5},md5,F",
        f"{ExactDigests.of(planted['broken']).md5},md5,B",
    ]


def build_store(db: Path, rows: list[str]) -> None:
    with Store(db) as store:
        store.create_list(HashList("ncmec", SourceProgramme.NCMEC, frozenset(SignalType)))
        import_records(store, "ncmec", records_from_text("hash,type,id\n" + "\n".join(rows) + "\n", ImportFormat.CSV))


def read_results(out: Path) -> dict[str, dict[str, object]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len({r["path"] for r in records}) == len(records), "an input appears twice"
    return {r["path"]: r for r in records}


# What the generated tree must give: (decision, type, matched ids, error reason, reasons, duplicate_of).
EXPECTED_TREE = {
    "photos/a.jpg": ("match", "image", ["A"], None, (), None),
    "photos/copy-of-a.jpg": ("match", "image", ["A"], None, (), "photos/a.jpg"),
    "photos/b.png": ("no_match", "image", [], None, (), None),
    "photos/sub/rotated.png": ("match", "image", ["A"], None, (), None),
    "photos/sub/loop": ("error", None, [], "SYMLINK_LOOP", (), None),
    "broken.jpg": ("match", "image", ["B"], None, ("UNDECODABLE",), None),
    "notes.txt": ("no_match", "other", [], None, ("UNSUPPORTED_FORMAT",), None),
    "empty.bin": ("no_match", "other", [], None, ("EMPTY_INPUT",), None),
    "pipe": ("error", None, [], "UNREADABLE", (), None),
    "bundle.zip": ("no_match", "archive", [], None, ("UNSUPPORTED_FORMAT",), None),
    "bundle.zip!e.jpg": ("match", "image", ["E"], None, (), None),
    "bundle.zip!inner/nested.tar.gz": ("no_match", "archive", [], None, ("UNSUPPORTED_FORMAT",), None),
    "bundle.zip!inner/nested.tar.gz!f.png": ("match", "image", ["F"], None, (), None),
    "bomb.zip": ("no_match", "archive", [], None, ("UNSUPPORTED_FORMAT",), None),
    "bomb.zip!zeros.bin": ("error", None, [], "ARCHIVE_LIMIT", (), None),
}


def assert_tree_results(tree: Path, out: Path) -> None:
    """The generated tree's results.jsonl is EXPECTED_TREE exactly, and the other outputs are written."""
    results = read_results(out)
    prefix = str(tree) + "/"

    def summary(record: dict[str, object]) -> tuple[object, ...]:
        ids = sorted(m["external_id"] for m in record["matches"])  # type: ignore[attr-defined]
        error = record["error"]["reason"] if record["error"] else None  # type: ignore[index]
        original = record["duplicate_of"]
        original = original.removeprefix(prefix) if isinstance(original, str) else None
        return record["decision"], record["type"], ids, error, tuple(record["reasons"]), original  # type: ignore[arg-type]

    assert {path.removeprefix(prefix): summary(record) for path, record in results.items()} == EXPECTED_TREE
    rotated = results[prefix + "photos/sub/rotated.png"]["matches"][0]  # type: ignore[index]
    assert rotated["dihedral_variant"] not in (None, "orig")
    summary_json = json.loads((out / "summary.json").read_text())
    assert summary_json["totals"]["hashed"] == 11  # every readable input once; the copy of a.jpg was not
    for name in ("matches.csv", "report.html", "summary.json", "results.jsonl"):
        assert (out / name).stat().st_size > 0


def test_a_scan_reports_every_input_with_its_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    build_store(db, planted_rows(build_tree(tree)))
    code = main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "2", "--max-bytes", str(1 << 20)])
    assert code == 1  # matches found
    assert_tree_results(tree, out)
    assert "Traceback" not in capsys.readouterr().err


def _scan_command(tree: Path, out: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "scan", str(tree), "--out", str(out), "--db", str(db),
            "--workers", "1", "--progress", "none"]  # fmt: skip


def _journal_rows(out: Path) -> int:
    try:
        with sqlite3.connect(out / "scan.sqlite", timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_killed_scan_resumes_to_the_same_results_without_hashing_done_inputs_again(tmp_path: Path) -> None:
    tree, db = tmp_path / "tree", tmp_path / "h.db"
    (tree / "batch").mkdir(parents=True)
    for number in range(240):
        (tree / "batch" / f"{number:04}.png").write_bytes(image_bytes(100 + number, (160, 120), "PNG"))
    (tree / "batch" / "0239-copy.png").write_bytes((tree / "batch" / "0003.png").read_bytes())
    build_store(db, [f"{MediaHasher().hash_bytes(image_bytes(103, (160, 120), 'PNG')).pdq.hex()},pdq,A"])

    whole = tmp_path / "whole"
    assert subprocess.run(_scan_command(tree, whole, db), cwd=ROOT, timeout=600).returncode == 1

    resumed = tmp_path / "resumed"
    first = subprocess.Popen(_scan_command(tree, resumed, db), cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 300
    while _journal_rows(resumed) < 60:
        assert first.poll() is None, "the scan ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the scan and its workers, as a power cut would
    first.wait()
    with sqlite3.connect(resumed / "scan.sqlite") as journal:
        done_before, hashed_before = journal.execute("SELECT count(*), sum(hashed) FROM results").fetchone()
    assert 60 <= done_before < 241
    assert subprocess.run(_scan_command(tree, resumed, db), cwd=ROOT, timeout=600).returncode == 1

    def lines(out: Path) -> list[str]:
        return sorted((out / "results.jsonl").read_text().splitlines())

    assert lines(resumed) == lines(whole)
    with sqlite3.connect(resumed / "scan.sqlite") as journal:
        runs = journal.execute("SELECT hashed FROM runs WHERE ended IS NOT NULL").fetchall()
    with sqlite3.connect(whole / "scan.sqlite") as journal:
        (hashed_whole,) = journal.execute("SELECT hashed FROM runs").fetchone()
    assert len(runs) == 1  # the killed run never ended
    assert hashed_before + runs[0][0] == hashed_whole == 240  # nothing done before the kill was hashed again


def _store_with_one_listed(db: Path, data: bytes) -> None:
    build_store(db, [f"{MediaHasher().hash_bytes(data).pdq.hex()},pdq,LISTED"])


def test_members_of_one_name_each_get_their_own_line(tmp_path: Path) -> None:
    """A tar holding x.jpg twice (harmless first, listed second) must not hide the listed one."""
    harmless, listed = image_bytes(7), image_bytes(8)
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for data in (harmless, listed):
            info = tarfile.TarInfo("x.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tree / "a.tar").write_bytes(buffer.getvalue())
    _store_with_one_listed(db, listed)
    assert main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "0"]) == 1
    results = read_results(out)
    assert results[f"{tree}/a.tar!x.jpg"]["decision"] == "no_match"
    assert results[f"{tree}/a.tar!x.jpg#2"]["decision"] == "match"


def test_names_that_are_not_utf8_never_collide_with_their_escaped_spelling(tmp_path: Path) -> None:
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    listed = image_bytes(9)
    (tree / os.fsdecode(b"x\xff.jpg")).write_bytes(image_bytes(10))  # a name that is not UTF-8
    (tree / "x\\xff.jpg").write_bytes(listed)
    _store_with_one_listed(db, listed)
    assert main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "0"]) == 1
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and sorted(json.loads(line)["decision"] for line in lines) == ["match", "no_match"]


def test_a_scan_that_cannot_run_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, db = tmp_path / "tree", tmp_path / "h.db"
    (tree / "inner").mkdir(parents=True)
    (tree / "a.jpg").write_bytes(image_bytes(11))
    _store_with_one_listed(db, image_bytes(12))
    base = ["--db", str(db), "--workers", "0"]
    assert main(["scan", str(tree), str(tree / "inner"), "--out", str(tmp_path / "o1"), *base]) == 2
    assert "is inside" in capsys.readouterr().err
    assert main(["scan", str(tree), "--out", str(tmp_path / "o2"), *base]) == 0
    # The same folder for another scan (other paths) is refused, not mixed.
    assert main(["scan", str(tree / "inner"), "--out", str(tmp_path / "o2"), *base]) == 2
    err = capsys.readouterr().err
    assert "USAGE" in err and "different scan" in err and "Traceback" not in err


def test_a_dead_worker_costs_a_retry_and_never_the_scan(tmp_path: Path) -> None:
    """Inputs in flight when a worker dies are retried alone; one that fails alone too gets INTERNAL."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from engine.matcher import Matcher
    from engine.scan.journal import ScanJournal
    from engine.scan.records import ContentType, ScanItem
    from engine.scan.runner import ScanRunner, ScanSettings

    db = tmp_path / "h.db"
    _store_with_one_listed(db, image_bytes(13))
    with Store(db) as store:
        runner = ScanRunner(Matcher.from_store(store), ScanJournal(tmp_path / "out"), ScanSettings(workers=1))
    item, other = ScanItem("x.jpg", 10, ContentType.IMAGE), ScanItem("y.jpg", 11, ContentType.IMAGE)
    died: Future[object] = Future()
    died.set_exception(BrokenProcessPool("a worker died"))
    assert runner._results_of(died, [item, other]) == []  # type: ignore[arg-type]
    assert runner._retry == [item, other] and runner._broken
    runner._retry.clear()
    runner._retried.add(item.label)  # x.jpg died alone too; y.jpg has its retry still to come
    results = runner._results_of(died, [item, other])  # type: ignore[arg-type]
    assert [(r.label, r.problem.reason if r.problem else None) for r in results] == [("x.jpg", "INTERNAL")]
    assert runner._retry == [other]
    failed: Future[object] = Future()
    failed.set_exception(ValueError("a bug"))
    answers = runner._results_of(failed, [ScanItem("z.jpg")])  # type: ignore[arg-type]
    assert len(answers) == 1 and answers[0].problem is not None and "bug" in answers[0].problem.detail


def test_a_failing_input_costs_its_own_line_and_not_its_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug that raises on one input gives that input an INTERNAL line; the other inputs of its task hash."""
    from engine.scan import workers
    from engine.scan.records import ScanItem

    real = workers.hash_item

    def hash_item(item: ScanItem, state: workers.WorkerState) -> workers.WorkerResult:
        if item.label.endswith("b.jpg"):
            raise RuntimeError("boom")
        return real(item, state)

    monkeypatch.setattr(workers, "hash_item", hash_item)
    (tmp_path / "a.jpg").write_bytes(image_bytes(70))
    (tmp_path / "b.jpg").write_bytes(image_bytes(71))
    state = workers.state_for(HashOptions(), {})
    monkeypatch.setattr(workers, "_STATE", state)
    items = [ScanItem(str(tmp_path / name), path=tmp_path / name) for name in ("a.jpg", "b.jpg")]
    first, second = workers.hash_task_in_worker(items)
    assert first.pdq is not None and first.problem is None
    assert second.problem is not None and second.problem.reason == "INTERNAL" and "boom" not in second.problem.detail


def test_a_resumed_scan_expands_archives_recorded_before_their_members(tmp_path: Path) -> None:
    """Interrupted after an archive's own line but before its members': the rerun reads the archive again."""
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    listed = image_bytes(14)
    (tree / "bundle.zip").write_bytes(_zip({"a.jpg": listed, "b.png": image_bytes(15, kind="PNG")}))
    (tree / "c.jpg").write_bytes(image_bytes(16))
    _store_with_one_listed(db, listed)
    command = ["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "0"]
    assert main(command) == 1
    whole = sorted((out / "results.jsonl").read_text().splitlines())
    with sqlite3.connect(out / "scan.sqlite") as journal:
        journal.execute("DELETE FROM results WHERE instr(CAST(label AS TEXT), '!') > 0")
    assert main(command) == 1
    assert sorted((out / "results.jsonl").read_text().splitlines()) == whole
    with sqlite3.connect(out / "scan.sqlite") as journal:
        assert [hashed for (hashed,) in journal.execute("SELECT hashed FROM runs ORDER BY rowid")] == [4, 2]


def test_without_ray_the_option_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(kernels.optional._cache, "ray", None)
    tree = tmp_path / "tree"
    tree.mkdir()
    assert main(["scan", str(tree), "--out", str(tmp_path / "out"), "--db", str(tmp_path / "h.db"), "--ray"]) == 2
    err = capsys.readouterr().err
    assert "MISSING_DEPENDENCY" in err and "hashmatch[distributed]" in err and "Traceback" not in err


def test_progress_lines_carry_an_eta_from_the_census(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    for number in range(12):
        (tree / f"{number:02}.jpg").write_bytes(image_bytes(40 + number, (320, 240)))
    _store_with_one_listed(db, image_bytes(39))
    assert main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "1", "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert events and all(event["event"] == "scan_progress" for event in events)
    assert events[-1]["done"] == 12 and events[-1]["eta_s"] == 0  # the census counted every byte, all done


def test_the_eta_is_the_bytes_ahead_at_this_runs_rate() -> None:
    from engine.scan.progress import ScanCounters, _duration

    counters = ScanCounters(total_bytes=1_000, input_bytes=200, skipped_bytes=300)
    counters.started -= 10.0  # 200 bytes in 10 s: 20 bytes/s, 500 bytes ahead
    eta = counters.eta_seconds()
    assert eta is not None and 24.9 < eta < 25.1
    assert ScanCounters(input_bytes=200).eta_seconds() is None  # not counted yet
    assert (_duration(None), _duration(25.2), _duration(3 * 3600 + 125)) == ("counting", "0m25s", "3h02m")


def test_a_path_after_ray_is_not_taken_for_a_cluster_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`scan --ray /ev1 /ev2` would scan /ev2 only, on a cluster named /ev1: refused before anything is claimed."""
    (tmp_path / "ev1").mkdir()
    (tmp_path / "ev2").mkdir()
    out = tmp_path / "out"
    command = ["scan", "--ray", str(tmp_path / "ev1"), str(tmp_path / "ev2"), "--out", str(out)]
    assert main([*command, "--db", str(tmp_path / "h.db")]) == 2
    err = capsys.readouterr().err
    assert "USAGE" in err and "put --ray after the paths" in err and not out.exists()


def test_tasks_carry_up_to_four_files_and_an_archive_member_alone(tmp_path: Path) -> None:
    from engine.matcher import Matcher
    from engine.scan.journal import ScanJournal
    from engine.scan.records import ScanItem
    from engine.scan.runner import ScanRunner, ScanSettings

    db = tmp_path / "h.db"
    _store_with_one_listed(db, image_bytes(80))
    with Store(db) as store:
        runner = ScanRunner(Matcher.from_store(store), ScanJournal(tmp_path / "out"), ScanSettings(workers=2))
    files = [ScanItem(f"f{n}", 1, path=tmp_path / f"f{n}") for n in range(7)]
    member = ScanItem("a.zip!m", 1, data=b"bytes")
    runner._walker = iter([files[0], files[1], member, *files[2:]])
    tasks = [[item.label for item in runner._next_task()] for _ in range(5)]
    assert tasks == [["f0", "f1"], ["a.zip!m"], ["f2", "f3", "f4", "f5"], ["f6"], []]


def test_a_dead_task_s_claims_are_all_dropped_before_any_retry(tmp_path: Path) -> None:
    """Otherwise a retried input could be taken for a duplicate of one still waiting for its own retry."""
    import multiprocessing

    from engine.matcher import Matcher
    from engine.scan.journal import ScanJournal
    from engine.scan.records import ScanItem
    from engine.scan.runner import ScanRunner, ScanSettings

    db = tmp_path / "h.db"
    _store_with_one_listed(db, image_bytes(81))
    with Store(db) as store:
        runner = ScanRunner(Matcher.from_store(store), ScanJournal(tmp_path / "out"), ScanSettings(workers=2))
    runner._retry = [ScanItem("a"), ScanItem("b")]
    claims = {"s1": "a", "s2": "b", "s3": "c"}
    runner._stop.set()  # only the clearing runs
    runner._retry_alone(multiprocessing.get_context("fork"), claims)
    assert claims == {"s3": "c"}


def test_claims_that_cannot_answer_end_the_scan_instead_of_recording_inputs(tmp_path: Path) -> None:
    """The manager process gone: its inputs must be redone by a rerun, not journalled as INTERNAL."""
    import multiprocessing
    from concurrent.futures import Future

    from engine.matcher import Matcher
    from engine.scan.journal import ScanJournal
    from engine.scan.records import ScanItem
    from engine.scan.runner import ScanRunner, ScanSettings
    from engine.scan.workers import ClaimsUnavailableError, ManagerClaims
    from hashing.errors import HashmatchError

    manager = multiprocessing.get_context("fork").Manager()
    claims = ManagerClaims(manager.dict())
    assert claims.setdefault("s1", "a") == "a" and claims.setdefault("s1", "b") == "a"
    manager.shutdown()
    with pytest.raises(ClaimsUnavailableError):
        claims.setdefault("s2", "c")

    db = tmp_path / "h.db"
    _store_with_one_listed(db, image_bytes(82))
    with Store(db) as store:
        runner = ScanRunner(Matcher.from_store(store), ScanJournal(tmp_path / "out"), ScanSettings(workers=1))
    lost: Future[object] = Future()
    lost.set_exception(ClaimsUnavailableError())
    with pytest.raises(HashmatchError) as failure:
        runner._results_of(lost, [ScanItem("x.jpg")])  # type: ignore[arg-type]
    assert failure.value.reason == "INTERNAL"


def test_a_scan_is_audited_with_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.audit.log import Finding, export, verify

    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    (tree / "listed.jpg").write_bytes(image_bytes(21))
    (tree / "other.jpg").write_bytes(image_bytes(22))
    (tree / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    _store_with_one_listed(db, image_bytes(21))
    assert main(["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "0"]) == 1  # a match
    capsys.readouterr()
    log = tmp_path / "h.audit.jsonl"
    assert verify(log).finding is Finding.OK
    records = [r for r in export(log) if r["kind"].startswith("scan_")]
    assert [r["kind"] for r in records] == ["scan_started", "scan_finished"]
    started, finished = (r["data"] for r in records)
    assert started["paths"] == [str(tree)] and started["lists"] == {"ncmec": 1} and started["resumed"] is False
    assert (finished["done"], finished["matches"], finished["interrupted"]) == (3, 1, False)
    assert all(r["actor"].startswith("os:") for r in records)
