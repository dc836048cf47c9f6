"""`hashmatch scan --ray` on a local Ray instance: the generated tree gives the same expected result for every
input as the local scan, line for line; a scan interrupted locally resumes on Ray without hashing done inputs
again; a node without the hash store and a missing extra are reported with their reasons."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cli.main import main
from engine.matcher import Matcher
from engine.scan.journal import ScanJournal
from engine.scan.ray_runner import RayScanRunner, RayTarget
from engine.scan.runner import ScanSettings
from engine.store import Store
from hashing.errors import HashmatchError
from hashing.exact import ExactDigests
from tests.test_scan import _zip, assert_tree_results, build_store, build_tree, image_bytes, planted_rows

ray = pytest.importorskip("ray", reason="scan --ray needs the 'distributed' extra")
INTERRUPTED_FILES = 300


def _lines(out: Path) -> list[str]:
    return sorted((out / "results.jsonl").read_text().splitlines())


def _hashed_per_run(out: Path) -> list[int]:
    with sqlite3.connect(out / "scan.sqlite") as journal:
        return [hashed for (hashed,) in journal.execute("SELECT hashed FROM runs ORDER BY rowid")]


def test_a_ray_scan_gives_every_input_the_result_a_local_scan_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, db = tmp_path / "tree", tmp_path / "h.db"
    tree.mkdir()
    build_store(db, planted_rows(build_tree(tree)))
    options = ["--db", str(db), "--workers", "2", "--max-bytes", str(1 << 20), "--progress", "none"]
    assert main(["scan", str(tree), "--out", str(tmp_path / "on-ray"), "--ray", *options]) == 1
    assert_tree_results(tree, tmp_path / "on-ray")
    assert main(["scan", str(tree), "--out", str(tmp_path / "local"), *options]) == 1
    assert _lines(tmp_path / "on-ray") == _lines(tmp_path / "local")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "scanned 15 inputs" in err


def test_a_scan_interrupted_locally_resumes_on_ray_without_hashing_done_inputs_again(tmp_path: Path) -> None:
    """The journal is the same whichever way the scan runs. Interrupted after the archive's own line and one
    plain file: the Ray run does the rest, the archive's members included, and nothing done is hashed again."""
    tree, out, db = tmp_path / "tree", tmp_path / "out", tmp_path / "h.db"
    tree.mkdir()
    listed = image_bytes(14)
    (tree / "bundle.zip").write_bytes(_zip({"a.jpg": listed, "b.png": image_bytes(15, kind="PNG")}))
    for number in range(6):
        (tree / f"c{number}.jpg").write_bytes(image_bytes(16 + number))
    (tree / "d-copy-of-c1.jpg").write_bytes(image_bytes(17))
    build_store(db, [f"{_pdq(listed)},pdq,A"])
    command = ["scan", str(tree), "--out", str(out), "--db", str(db), "--workers", "0", "--progress", "none"]
    assert main(command) == 1
    whole = _lines(out)
    with sqlite3.connect(out / "scan.sqlite") as journal:
        journal.execute(
            "DELETE FROM results WHERE instr(CAST(label AS TEXT), '!') > 0 OR CAST(label AS TEXT) NOT LIKE '%c0.jpg'"
            " AND CAST(label AS TEXT) NOT LIKE '%bundle.zip'"
        )
        (kept,) = journal.execute("SELECT count(*) FROM results").fetchone()
    assert kept == 2  # the archive's own line and c0.jpg
    assert main([*command[:-4], "--workers", "2", "--ray", "--progress", "none"]) == 1
    assert _lines(out) == whole
    first, resumed = _hashed_per_run(out)
    # 10 inputs: the archive, its 2 members, 7 files of which one a copy of c1.jpg. The Ray run hashes the
    # 2 members and c1..c5.jpg: 7.
    assert (first, resumed) == (9, 7)


def _pdq(data: bytes) -> str:
    from hashing.media_hasher import MediaHasher

    return MediaHasher().hash_bytes(data).pdq.hex()


def test_a_node_without_the_hash_store_fails_the_scan_with_its_reason(tmp_path: Path) -> None:
    tree, db = tmp_path / "tree", tmp_path / "h.db"
    tree.mkdir()
    (tree / "a.jpg").write_bytes(image_bytes(30))
    build_store(db, [f"{_pdq(image_bytes(31))},pdq,A"])
    journal = ScanJournal(tmp_path / "out")
    with Store(db) as store:
        runner = RayScanRunner(
            tmp_path / "elsewhere.db", Matcher.from_store(store), journal, ScanSettings(workers=1), RayTarget(actors=1)
        )
        with pytest.raises(HashmatchError) as failure:
            runner.run([tree])
    assert failure.value.reason == "STORE_UNAVAILABLE" and "same paths on every node" in failure.value.detail
    journal.close()


def test_copies_met_by_different_actors_are_hashed_once(tmp_path: Path) -> None:
    """Many small blocks over 2 actors, 12 copies of one picture among them: one claim wins, every other copy
    names it, and each distinct picture is hashed exactly once."""
    tree, db = tmp_path / "tree", tmp_path / "h.db"
    tree.mkdir()
    copied = image_bytes(50)
    for number in range(36):
        data = copied if number % 3 == 0 else image_bytes(60 + number)
        (tree / f"{number:02}.jpg").write_bytes(data)
    build_store(db, [f"{_pdq(copied)},pdq,A"])
    journal = ScanJournal(tmp_path / "out")
    settings = ScanSettings(workers=2, checkpoint_items=4)  # 9 blocks of 4 rows
    with Store(db) as store:
        outcome = RayScanRunner(db, Matcher.from_store(store), journal, settings, RayTarget(actors=2)).run([tree])
    records = list(journal.records())
    journal.close()
    assert not outcome.interrupted and len(records) == 36 and outcome.counters.hashed == 24 + 1
    originals = [r for r in records if r.duplicate_of is None and r.sha256 == ExactDigests.of(copied).sha256]
    copies = [r for r in records if r.duplicate_of is not None]
    assert len(originals) == 1 and len(copies) == 11
    assert all(r.duplicate_of == originals[0].path and r.decision == "match" for r in copies)


def test_ctrl_c_stops_a_ray_scan_cleanly_and_a_local_run_finishes_it(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C: exit 130 without a traceback, and the same
    command without --ray finishes the scan to the lines an uninterrupted scan gives."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.test_scan import ROOT, _journal_rows

    tree, db = tmp_path / "tree", tmp_path / "h.db"
    tree.mkdir()
    for number in range(INTERRUPTED_FILES):  # enough work that the interrupt lands well before the end
        (tree / f"{number:04}.jpg").write_bytes(image_bytes(300 + number, (480, 360)))
    build_store(db, [f"{ExactDigests.of(image_bytes(303, (480, 360))).md5},md5,A"])

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "cli.main", "scan", str(tree), "--out", str(out), "--db", str(db),
                "--workers", "2", "--progress", "none", *extra]  # fmt: skip

    whole = tmp_path / "whole"
    assert subprocess.run(command(whole), cwd=ROOT, timeout=600).returncode == 1
    out = tmp_path / "out"
    scan = subprocess.Popen(command(out, "--ray"), cwd=ROOT, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _journal_rows(out) < 10:
        assert scan.poll() is None, "the scan ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(scan.pid, signal.SIGINT)
    _, err = scan.communicate(timeout=300)
    assert scan.returncode == 130 and "interrupted: run the same command again" in err and "Traceback" not in err
    assert 10 <= _journal_rows(out) < INTERRUPTED_FILES
    assert subprocess.run(command(out), cwd=ROOT, timeout=600).returncode == 1
    assert _lines(out) == _lines(whole)


class _FlakyRay:
    """Just enough of the ray module for _connect: init fails `failures` times, then starts."""

    def __init__(self, failures: int) -> None:
        self.failures, self.inits, self.shutdowns = failures, 0, 0
        context = type("Context", (), {"enable_progress_bars": True, "print_on_execution_start": True})()
        self.data = type("Data", (), {"DataContext": type("DC", (), {"get_current": staticmethod(lambda: context)})})

    def init(self, **_: object) -> None:
        self.inits += 1
        if self.inits <= self.failures:
            raise RuntimeError("Failed to start the GCS")

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_local_ray_start_that_fails_once_is_retried_on_a_clean_slate(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.scan.ray_runner import LOCAL_START_ATTEMPTS, _connect

    flaky = _FlakyRay(failures=1)
    _connect(flaky, RayTarget(actors=1), workers=1)  # type: ignore[arg-type]
    assert (flaky.inits, flaky.shutdowns) == (2, 1)
    assert "local Ray start 1 of 2 failed" in capsys.readouterr().out

    broken = _FlakyRay(failures=LOCAL_START_ATTEMPTS)
    with pytest.raises(HashmatchError) as failure:
        _connect(broken, RayTarget(actors=1), workers=1)  # type: ignore[arg-type]
    assert failure.value.reason == "SERVER_UNREACHABLE" and broken.inits == LOCAL_START_ATTEMPTS


def test_an_unreachable_ray_cluster_is_not_retried() -> None:
    from engine.scan.ray_runner import _connect

    flaky = _FlakyRay(failures=1)
    with pytest.raises(HashmatchError) as failure:
        _connect(flaky, RayTarget(address="ray://nowhere:10001", actors=1), workers=1)  # type: ignore[arg-type]
    assert failure.value.reason == "SERVER_UNREACHABLE" and "ray://nowhere:10001" in failure.value.detail
    assert flaky.inits == 1
