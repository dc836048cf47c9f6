"""vPDQ hashing throughput on Meta's sample videos: hashed frames/s, decoded frames/s and seconds of video per
second, at one hash per second (the default) and at every frame, on all the machine's cores (FFmpeg decodes on
its own threads while the caller's thread hashes). Each row also carries the conformance of its every-frame
hashes against the reference files: frames compared (both qualities >= 50), how many are bit-identical, and the
largest distance (the upstream rule: < 31).

Videos: the four in tests/data/vpdq (with their reference hash files in tests/data/vpdq/hashes), or, with
HASHMATCH_BENCH_VIDEO_DIR=DIR, every *.mp4 in DIR, each with its reference file NAME.txt in DIR or in
HASHMATCH_BENCH_VIDEO_HASHES (Meta's fourteen sample videos: tmk/sample-videos and vpdq/sample-hashes of the
ThreatExchange repository). The upstream figure to compare with: every-frame
hashing at ~4.8 ms per native-resolution frame on an M1 Pro (the vpdq README).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hashing.video import VideoHasher, VideoHashes, VideoOptions, frame_step
from hashing.vpdq import VpdqHash

ROOT = Path(__file__).resolve().parents[1]
REPO_VIDEOS = ROOT / "tests" / "data" / "vpdq"
MODES = {"every frame": 0.0, "1 hash/s": 1.0}


def videos() -> list[Path]:
    folder = os.environ.get("HASHMATCH_BENCH_VIDEO_DIR")
    return sorted(Path(folder).glob("*.mp4")) if folder else sorted((REPO_VIDEOS / "videos").glob("*.mp4"))


def reference(video: Path) -> VpdqHash:
    hashes = os.environ.get("HASHMATCH_BENCH_VIDEO_HASHES")
    for folder in (*([Path(hashes)] if hashes else []), video.parent, REPO_VIDEOS / "hashes"):
        path = folder / f"{video.stem}.txt"
        if path.exists():
            with path.open() as lines:
                return VpdqHash.from_lines(lines)
    raise FileNotFoundError(video.stem)


def conformance(hashes: VideoHashes, expected: VpdqHash) -> dict[str, int]:
    assert [f.frame_number for f in hashes.vpdq.features] == [f.frame_number for f in expected.features]
    compared = identical = worst = 0
    for mine, theirs in zip(hashes.vpdq.features, expected.features, strict=True):
        identical += mine.pdq.digest == theirs.pdq.digest
        if mine.quality >= 50 and theirs.quality >= 50:
            compared += 1
            worst = max(worst, mine.pdq.distance(theirs.pdq))
    assert worst < 31, "a frame is outside the upstream rule"
    return {"frames": len(expected), "compared": compared, "identical": identical, "max_distance": worst}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("video", videos(), ids=lambda p: p.stem)
def test_video_hashing(benchmark: pytest.FixtureRequest, video: Path, mode: str) -> None:
    data = video.read_bytes()
    hasher = VideoHasher(VideoOptions(seconds_per_hash=MODES[mode], exact_digests=False))
    hasher.hash_bytes(data)  # warm: Numba's kernels, FFmpeg's codecs
    timings: list[float] = []

    def run() -> VideoHashes:
        started = time.perf_counter()
        result = hasher.hash_bytes(data)
        timings.append(time.perf_counter() - started)
        return result

    result: VideoHashes = benchmark.pedantic(run, rounds=3, iterations=1)  # type: ignore[attr-defined]
    step = 1 if MODES[mode] == 0 else frame_step(MODES[mode], result.fps)
    assert len(result.vpdq) == -(-result.frames_decoded // step)  # every sampled frame was hashed
    seconds = sorted(timings)[len(timings) // 2]
    info = {
        "kind": "video",
        "video": video.stem,
        "mode": mode,
        "width": result.width,
        "height": result.height,
        "fps": round(result.fps, 3),
        "frames_decoded": result.frames_decoded,
        "frames_hashed": len(result.vpdq),
        "video_seconds": round(result.duration_s, 3),
        "seconds": seconds,
        "cores": len(os.sched_getaffinity(0)),
    }
    if MODES[mode] == 0:
        info["conformance"] = conformance(result, reference(video))
    benchmark.extra_info.update(info)  # type: ignore[attr-defined]
