"""The benchmarks can fail: worker errors are passed back and counted, and loads report what was answered."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from benchmarks import grpc_load
from benchmarks.test_bench_grpc import closed_loop, record
from tests.grpc_fixtures import BRIDGE, Served


class _Benchmark:
    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}


def test_in_process_loops_count_and_report_worker_errors() -> None:
    calls = [0]

    def sometimes_failing() -> None:
        calls[0] += 1
        if calls[0] % 2:
            raise RuntimeError("the index went away")

    result = closed_loop(sometimes_failing, concurrency=2, requests=8, per_call=1)
    assert (result["errors"], result["requests"]) == (4, 4)
    with pytest.raises(AssertionError, match="the index went away"):
        record(_Benchmark(), "media", "in-process", 2, result)


def _stream_args(served: Served, media: Path, requests: int) -> argparse.Namespace:
    return argparse.Namespace(
        target=served.address,
        token=served.matcher_token,
        mode="media-stream",
        media=str(media),
        concurrency=2,
        requests=requests,
        batch=1,
        rate=None,
    )


def test_the_stream_load_counts_the_answers_it_got(served: Served, tmp_path: Path) -> None:
    good = grpc_load.run_streams(_stream_args(served, BRIDGE, 6))
    assert (good["requests"], good["errors"]) == (6, 0)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")  # every item is refused (EMPTY_INPUT): nothing counts as answered
    bad = grpc_load.run_streams(_stream_args(served, empty, 6))
    assert (bad["requests"], bad["errors"]) == (0, 6)
