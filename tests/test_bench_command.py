"""`hashmatch bench` on a tiny configuration: it runs, and writes the JSON, the Markdown and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.distractors import distractors
from benchmarks.robustness import TRANSFORMS, evaluate, sample_photos
from cli import bench_command
from cli.main import main
from hashing.device import Device, DeviceChoice


def test_bench_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert (
        main(["bench", "--quick", "--out", str(out), "--suites", "import,robustness", "--robustness-photos", "3"]) == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["quick"] and report["versions"]["numpy"] != "absent" and report["date"]
    assert report["suites"]["import"]["tests_passed"] and report["suites"]["import"]["bars_met"]
    assert report["robustness"]["images"] == 3
    assert report["robustness"]["distinct_pairs"] > 3000  # the photos' tiles and the generated distractors
    found = report["robustness"]["random_list"]
    assert found["entries"] == bench_command.QUICK_RANDOM_LIST and found["pdq_variants"]["searched"] > 1000
    markdown = (out / "report.md").read_text()
    assert "## import" in markdown and "## robustness" in markdown and "jpeg q50" in markdown
    assert "PDQ + query variants (now)" in markdown and "random PDQ hashes" in markdown
    for plot in report["robustness"]["plots"]:
        assert (out / plot).read_bytes().startswith(b"\x89PNG")


def test_unknown_suites_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--out", str(tmp_path), "--suites", "nope"]) == 1
    assert "unknown suites" in capsys.readouterr().err


def test_robustness_reproduces_what_pdq_is_known_for() -> None:
    """JPEG and resizing keep matching; crops and screenshots do not; dihedral matching recovers rotations."""
    names = ["jpeg q50", "resize 0.5x", "crop 20%", "screenshot padding", "rotate 90", "grayscale"]
    result = evaluate(sample_photos(6), {name: TRANSFORMS[name] for name in names})
    assert result.recall("pdq", "jpeg q50", 31) == 1.0
    assert result.recall("pdq", "grayscale", 31) == 1.0
    assert result.recall("pdq", "resize 0.5x", 31) >= 0.8
    assert result.recall("pdq", "crop 20%", 31) == 0.0
    assert result.recall("pdq", "screenshot padding", 31) == 0.0
    assert result.recall("pdq", "rotate 90", 31) == 0.0 < result.recall("pdq_dihedral", "rotate 90", 31)
    assert result.false_match_rate("pdq", 31) == 0.0


def test_the_query_variants_find_rotations_and_frames_without_false_matches() -> None:
    names = ["rotate 90", "mirror", "border 5%", "screenshot padding", "crop 2.5%", "jpeg q50"]
    # The fundus photo's tiles are near-rotations of one another: the confusions a dihedral match can make.
    photos = [
        photo for photo in sample_photos() if photo[0] in ("skimage:astronaut", "skimage:coffee", "skimage:retina")
    ]
    result = evaluate(photos, {name: TRANSFORMS[name] for name in names}, distractors(photos, quick=True))
    for name in ["rotate 90", "mirror", "border 5%", "screenshot padding", "jpeg q50"]:
        assert result.recall("pdq_variants", name, 31) == 1.0, name
    assert result.recall("pdq_variants", "crop 2.5%", 31) > result.recall("pdq", "crop 2.5%", 31)
    for gated in (False, True):
        assert result.false_matches("pdq_variants", 31, gated) <= result.false_matches("pdq", 31, gated)
    assert result.false_matches("pdq_dihedral", 31, gated=True) > 0  # before: the tiles' rotations matched


def test_the_gpu_suite_says_why_it_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--out", str(tmp_path), "--suites", "gpu"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["device"]["device"] == "cpu"
    assert "CuPy is not installed" in report["suites"]["gpu"]["skipped"]
    assert "Skipped: CuPy is not installed" in (tmp_path / "report.md").read_text()
    assert main(["bench", "--out", str(tmp_path), "--suites", "gpu", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["suites"]["gpu"]["skipped"] == "--device cpu"
    capsys.readouterr()
    assert main(["bench", "--out", str(tmp_path / "strict"), "--suites", "gpu", "--device", "gpu"]) == 1
    assert "GPU_UNAVAILABLE" in capsys.readouterr().err
    assert not (tmp_path / "strict").exists()


def test_the_gpu_suite_runs_where_the_self_test_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for a verified GPU: the emulated kernels, which the suite's own process is told to use."""
    monkeypatch.setattr(bench_command, "select_device", lambda _: DeviceChoice(Device.GPU, "stand-in", None))
    monkeypatch.setenv("HASHMATCH_BENCH_GPU_EMULATE", "1")
    monkeypatch.setenv("HASHMATCH_BENCH_GPU_ROWS", "2e3")
    monkeypatch.setenv("HASHMATCH_BENCH_GPU_BIG_ROWS", "4e3")
    monkeypatch.setenv("HASHMATCH_BENCH_GPU_FILES", "24")
    assert main(["bench", "--out", str(tmp_path), "--suites", "gpu", "--device", "gpu"]) == 0
    suite = json.loads((tmp_path / "report.json").read_text())["suites"]["gpu"]
    assert suite["tests_passed"] and suite["bars_met"]
    assert "| device luma to hash | gpu |" in (tmp_path / "report.md").read_text()
