"""The kernels run clean under ThreadSanitizer and AddressSanitizer in the emulator, and the sanitizers do
catch what they are there for: a missing __syncthreads (a data race) and a shared array that is too small."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernels.emulation.emulator import COMPILER, sanitizer_preload

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which(COMPILER) is None, reason=f"{COMPILER} is not on the PATH")
REPORTS = {"thread": "WARNING: ThreadSanitizer: data race", "address": "ERROR: AddressSanitizer"}


def _run(sanitizer: str, what: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "LD_PRELOAD": sanitizer_preload(sanitizer),
        "ASAN_OPTIONS": "detect_leaks=0",  # the interpreter's own allocations are not the kernels' business
        "TSAN_OPTIONS": "halt_on_error=0",
        # OpenBLAS's own worker threads are not instrumented: they would be reported, not the kernels.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "tests.emulation_sanitizer_run", sanitizer, what]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_the_kernels_run_clean_under_the_sanitizer(sanitizer: str) -> None:
    result = _run(sanitizer, "real")
    assert REPORTS[sanitizer] not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.parametrize(
    ("sanitizer", "what", "line"), [("thread", "race", "broken.cu:4"), ("address", "overflow", "broken.cu:4")]
)
def test_the_sanitizers_catch_broken_kernels_at_their_line(sanitizer: str, what: str, line: str) -> None:
    result = _run(sanitizer, what)
    assert REPORTS[sanitizer] in result.stderr and line in result.stderr, result.stderr[-4000:]
