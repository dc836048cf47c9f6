"""Benchmark set-up: one core, benign camera-like JPEGs made from scikit-image's sample photos."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

# Width x height of the JPEGs the issue names: thumbnail, 0.8 MP upload, 12 MP camera photo.
SIZES: dict[str, tuple[int, int]] = {"256x256": (256, 256), "1024x768": (1024, 768), "4000x3000": (4000, 3000)}


@pytest.fixture(scope="module")
def one_core() -> Iterator[None]:
    """Pin every thread of the process (BLAS and Numba pools included) to one CPU while a module runs, so
    peers compare per core; the index benchmarks, measured on the machine's 2 cores, run unpinned."""
    everything = os.sched_getaffinity(0)
    pin_all_threads({sorted(everything)[0]})
    yield
    pin_all_threads(everything)


def pin_all_threads(cpus: set[int]) -> None:
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that ended while we walked the list
            os.sched_setaffinity(int(task.name), cpus)


# Where scikit-image is absent (the GPU machine: no network, no room to carry it), the repository's own
# benign sample photo stands in; the figures then name it.
FALLBACK_PHOTO = Path(__file__).resolve().parent.parent / "samples" / "images" / "bridge.jpg"


def _sample_photo() -> np.ndarray:
    try:
        data: Any = importlib.import_module("skimage.data")
    except ImportError:
        with Image.open(FALLBACK_PHOTO) as image:
            return np.asarray(image.convert("RGB"))
    return np.asarray(data.astronaut())


@pytest.fixture(scope="session")
def jpeg_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One JPEG (quality 90, 4:2:0) per size, resized from the astronaut sample photo with Lanczos (or from
    samples/images/bridge.jpg without scikit-image)."""
    folder = tmp_path_factory.mktemp("bench-jpegs")
    photo = Image.fromarray(_sample_photo())
    files = {}
    for name, size in SIZES.items():
        buffer = io.BytesIO()
        photo.resize(size, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=90)
        files[name] = folder / f"astronaut-{name}.jpg"
        files[name].write_bytes(buffer.getvalue())
    return files
