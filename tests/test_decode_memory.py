"""Decoding costs at most what `decode_cost` charges for it, measured as the peak resident memory of a fresh
process; the decode budget admits what fits and refuses what cannot, in words."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashing.decode import ALLOWED_FORMATS, decode_cost
from hashing.decode_budget import DecodeBudget, OverloadedError
from hashing.errors import MediaError

REPO = Path(__file__).resolve().parents[1]
SIDE = 2500  # 6.25 MP: large enough that the pixels dwarf the interpreter's own noise
CASES = [
    ("PNG", "RGB"),
    ("PNG", "L"),
    ("PNG", "RGBA"),
    ("PNG", "P"),
    ("PNG", "I;16"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("TIFF", "RGB"),
    ("BMP", "RGB"),
    ("GIF", "P"),
    ("WEBP", "RGB"),
    ("AVIF", "RGB"),
]

# Measures one decode in a fresh process: the peak resident set size is reset (Linux clear_refs) after the
# input is in memory and the code warm, so the rise is what decoding and hashing took.
MEASURE = """
import io, json, sys
from pathlib import Path
from PIL import Image
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hasher import DihedralMode

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024

data = Path(sys.argv[1]).read_bytes()
hasher = MediaHasher(HashOptions(dihedral=DihedralMode.DCT))
warm = io.BytesIO()
Image.new("RGB", (64, 64), (9, 99, 199)).save(warm, format=sys.argv[2])
hasher.hash_bytes(warm.getvalue())
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
hasher.hash_bytes(data)
print(json.dumps({"rise": status("VmHWM") - before}))
"""


def _image(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (SIDE // 50 + 1, SIDE // 50 + 1, 3), dtype=np.uint8)
    pixels = np.repeat(np.repeat(coarse, 50, axis=0), 50, axis=1)[:SIDE, :SIDE]
    image = Image.fromarray(pixels)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    elif mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP", "AVIF") else {}))
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "mode"), [c for c in CASES if c[0] in ALLOWED_FORMATS], ids=lambda v: str(v))
def test_decoding_stays_within_its_estimated_cost(tmp_path: Path, fmt: str, mode: str) -> None:
    data = _image(fmt, mode)
    path = tmp_path / "image"
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), fmt], cwd=REPO, capture_output=True, text=True, check=True
    )
    rise = json.loads(result.stdout)["rise"]
    cost = decode_cost(data)
    print(f"{fmt} {mode}: {rise / SIDE**2:.1f} bytes per pixel at the peak, charged {cost / SIDE**2:.1f}")
    assert rise <= cost, f"{fmt} {mode}: decoding took {rise >> 20} MiB, charged {cost >> 20} MiB"
    assert cost <= 21 * SIDE * SIDE  # and the charge is a small constant times the pixels


def test_what_does_not_fit_waits_for_room_and_what_fits_goes_first() -> None:
    budget = DecodeBudget(100, max_wait_s=5)
    order: list[str] = []

    def large() -> None:
        with budget.reserve(60):
            order.append("large")

    with budget.reserve(80):
        waiting = threading.Thread(target=large)
        waiting.start()
        time.sleep(0.1)
        with budget.reserve(20):  # fits beside the 80 although the 60 asked first
            order.append("small")
        assert order == ["small"] and budget.in_use == 80
    waiting.join(5)
    assert order == ["small", "large"] and budget.peak == 100


def test_a_budget_that_stays_full_is_overloaded_and_too_much_is_too_large() -> None:
    budget = DecodeBudget(100, max_wait_s=0.2)
    with budget.reserve(90), pytest.raises(OverloadedError) as overloaded, budget.reserve(20):
        pass
    assert overloaded.value.reason == "OVERLOADED" and budget.in_use == 0
    with pytest.raises(MediaError) as too_large, budget.reserve(101):
        pass
    assert too_large.value.reason == "TOO_LARGE"
