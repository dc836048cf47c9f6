"""Where hashmatch's CUDA kernels run: on a GPU through CuPy, or on the CPU through the emulation harness.

Both runtimes offer the same two things, so that the host code around a kernel (grids, buffers, overflow
reruns, copies) is one piece of code that the emulator checks on every machine and the GPU runs unchanged:
`xp`, the array module the kernels' arrays live in (CuPy or NumPy), and `kernel(source, name)`, a callable
with `cupy.RawKernel`'s shape `(grid, block, args)`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from kernels.cuda_sources import NVRTC_OPTIONS, source
from kernels.optional import require_module

Kernel = Callable[[Sequence[int], Sequence[int], Sequence[Any]], None]
SANITIZER_VARIABLE = "HASHMATCH_EMULATION_SANITIZER"  # "thread" or "address": emulated kernels built with it


@dataclass
class KernelRuntime:
    name: str  # "cuda" or "emulated"
    xp: ModuleType
    _load: Callable[[str], Any]
    _modules: dict[str, Any] = field(default_factory=dict)

    def kernel(self, source_name: str, kernel_name: str) -> Kernel:
        module = self._modules.get(source_name)
        if module is None:
            module = self._modules[source_name] = self._load(source_name)
        function: Kernel = module.get_function(kernel_name)
        return function

    def to_host(self, array: Any) -> np.ndarray:
        if self.xp is np:
            return np.asarray(array)
        return self.xp.asnumpy(array)  # type: ignore[no-any-return]

    @property
    def on_device(self) -> bool:
        return self.name == "cuda"


def cuda_runtime() -> KernelRuntime:
    """CuPy on the current CUDA device; the kernels are compiled by CuPy (NVRTC) on first use."""
    cupy = require_module("cupy", "the GPU path")

    def load(name: str) -> Any:
        return cupy.RawModule(code=source(name), options=NVRTC_OPTIONS)

    return KernelRuntime("cuda", cupy, load)


def emulated_runtime(sanitizer: str | None = None) -> KernelRuntime:
    """NumPy arrays and the kernels compiled for the CPU (tests, and machines without a GPU)."""
    from kernels.emulation.emulator import emulated_module

    chosen = sanitizer or os.environ.get(SANITIZER_VARIABLE) or None
    return KernelRuntime("emulated", np, lambda name: emulated_module(name, chosen))
