"""Where hashmatch's CUDA kernels run: on a GPU through CuPy, or on the CPU through the emulation harness.

Both runtimes offer the same things, so that the host code around a kernel (grids, buffers, overflow
reruns, copies) is one piece of code that the emulator checks on every machine and the GPU runs unchanged:
`xp`, the array module the kernels' arrays live in (CuPy or NumPy); `kernel(source, name)`, a callable
with `cupy.RawKernel`'s shape `(grid, block, args)`; and what lets several feeding threads overlap their
uploads with the device's compute: `new_stream()` (a CUDA stream, made current by `with`), `pinned_empty`
(page-locked host memory, which a copy on that stream does not wait for) and `upload`. Emulated, a stream
is a no-op and host memory is ordinary: what the emulator checks is that the host code is right, not that
anything overlaps.
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


class InOrderStream:
    """The emulated runtime's stream: work runs in order on the calling thread, so there is nothing to wait for."""

    def __enter__(self) -> InOrderStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def synchronize(self) -> None:
        return None


def _pageable(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.empty(shape, dtype)


@dataclass
class KernelRuntime:
    name: str  # "cuda" or "emulated"
    xp: ModuleType
    _load: Callable[[str], Any]
    _modules: dict[str, Any] = field(default_factory=dict)
    _new_stream: Callable[[], Any] = InOrderStream
    _pinned_empty: Callable[[tuple[int, ...], Any], np.ndarray] = _pageable

    def new_stream(self) -> Any:
        """A stream of its own for one feeding thread; `with stream:` makes it the thread's current one, on
        which uploads, kernels, cuBLAS calls and copies back are queued."""
        return self._new_stream()

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Host memory an upload on a stream copies from without blocking the thread (page-locked on a GPU)."""
        return self._pinned_empty(shape, dtype)

    def upload(self, host: np.ndarray) -> Any:
        """A device copy of `host`, queued on the current stream (asynchronous from pinned memory): `host`
        must stay untouched until the stream has passed the copy (a copy back on the same stream has)."""
        if self.xp is np:
            return host.copy()
        device = self.xp.empty(host.shape, host.dtype)
        device.set(host, stream=self.xp.cuda.get_current_stream())
        return device

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

    def pinned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return require_module("cupyx", "the GPU path").empty_pinned(shape, dtype)  # type: ignore[no-any-return]

    return KernelRuntime("cuda", cupy, load, {}, lambda: cupy.cuda.Stream(non_blocking=True), pinned_empty)


def emulated_runtime(sanitizer: str | None = None) -> KernelRuntime:
    """NumPy arrays and the kernels compiled for the CPU (tests, and machines without a GPU)."""
    from kernels.emulation.emulator import emulated_module

    chosen = sanitizer or os.environ.get(SANITIZER_VARIABLE) or None
    return KernelRuntime("emulated", np, lambda name: emulated_module(name, chosen))
