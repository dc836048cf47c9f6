"""The array backend: NumPy on the CPU or CuPy on an NVIDIA GPU, chosen once and never silently swapped."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType
from typing import Any

import numpy as np

from kernels.optional import optional_module


class BackendName(StrEnum):
    AUTO = "auto"
    NUMPY = "numpy"
    CUPY = "cupy"


class GpuUnavailableError(RuntimeError):
    """A GPU backend was asked for explicitly, and no usable CUDA device (or no CuPy) is present."""


@dataclass(frozen=True)
class ArrayBackend:
    name: BackendName
    xp: ModuleType

    def to_numpy(self, array: Any) -> np.ndarray:
        if self.name is BackendName.CUPY:
            return self.xp.asnumpy(array)  # type: ignore[no-any-return]
        return np.asarray(array)


def _usable_cupy() -> ModuleType | None:
    cupy = optional_module("cupy")
    if cupy is None:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # CUDA driver missing or broken: CuPy raises its own runtime errors
        return None
    return cupy


def select_backend(name: BackendName | str = BackendName.AUTO) -> ArrayBackend:
    """Resolve `auto`, `numpy` or `cupy` to a backend; `cupy` without a usable GPU is an error, not a fallback.

    `auto` is NumPy: code never moves onto a GPU because one is present. Hashing and search reach the GPU only
    through `hashing.device`, after a self-test on that device passed."""
    requested = BackendName(name)
    if requested in (BackendName.NUMPY, BackendName.AUTO):
        return ArrayBackend(BackendName.NUMPY, np)
    cupy = _usable_cupy()
    if cupy is not None:
        return ArrayBackend(BackendName.CUPY, cupy)
    raise GpuUnavailableError(
        "backend 'cupy' was requested but no usable CUDA device with CuPy was found; "
        "use the numpy backend on machines without an NVIDIA GPU"
    )
