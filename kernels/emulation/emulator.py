"""Launch hashmatch's CUDA kernels on the CPU, with the call shape of `cupy.RawKernel`: `kernel(grid, block,
args)`, where args are NumPy arrays (device pointers on a GPU) and NumPy scalars of the exact parameter types.

The .cu source is compiled once with g++ against `cuda_emulation.h` (see there for what it models and what
it cannot), into a shared library cached by the hash of everything that goes into it. A scalar of the wrong
type is an error here, as it would be a silent misread on the device: the host code that launches kernels is
checked along with the kernels. `sanitizer="thread"` or `"address"` builds with ThreadSanitizer or
AddressSanitizer; such a library only loads into a process started with the sanitizer's runtime preloaded
(`sanitizer_preload`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from kernels.cuda_sources import KernelSignature, signatures, source

HEADER = Path(__file__).resolve().parent / "cuda_emulation.h"
COMPILER = os.environ.get("HASHMATCH_EMULATION_CXX", "g++")
BASE_FLAGS = ("-std=c++20", "-pthread", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
SANITIZER_FLAGS = {
    None: ("-O2",),
    "thread": ("-O1", "-g", "-fsanitize=thread"),
    "address": ("-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"),
}
_RUNTIMES = {"thread": "libtsan.so", "address": "libasan.so"}
_CTYPES: dict[str, Any] = {
    "int32": ctypes.c_int32,
    "uint32": ctypes.c_uint32,
    "int64": ctypes.c_int64,
    "uint64": ctypes.c_uint64,
    "float32": ctypes.c_float,
    "float64": ctypes.c_double,
}


# The emulated launch dimensions and each kernel's `__shared__` arrays are process-wide statics, and ctypes
# lets other Python threads run during a launch: launches from several threads (the service's batcher and
# its gRPC threads, several GPU feeding workers) take turns, where a GPU would run their streams side by side.
_LAUNCH_LOCK = threading.Lock()


class EmulationUnavailableError(RuntimeError):
    """No C++20 compiler to build the emulated kernels with."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hashmatch" / "cuda-emulation"


def sanitizer_preload(sanitizer: str) -> str:
    """The LD_PRELOAD value a process needs before it loads a library built with `sanitizer`."""
    output = subprocess.run(
        [COMPILER, f"-print-file-name={_RUNTIMES[sanitizer]}"], capture_output=True, text=True, check=True
    )
    return output.stdout.strip()


class EmulatedKernel:
    def __init__(self, library: ctypes.CDLL, signature: KernelSignature) -> None:
        self.signature = signature
        self._launch = getattr(library, f"emulated_launch_{signature.name}")
        self._launch.restype = None

    def __call__(self, grid: Sequence[int], block: Sequence[int], args: Sequence[Any]) -> None:
        grid3 = _dim3(grid)
        block3 = _dim3(block)
        parameters = self.signature.parameters
        if len(args) != len(parameters):
            raise TypeError(f"{self.signature.name} takes {len(parameters)} arguments, got {len(args)}")
        keep: list[Any] = []  # the ctypes values must outlive the call
        pointers = (ctypes.c_void_p * len(args))()
        for i, (value, parameter) in enumerate(zip(args, parameters, strict=True)):
            holder = _argument(value, parameter.pointer, parameter.dtype, f"{self.signature.name}({parameter.name})")
            keep.append(holder)
            pointers[i] = ctypes.cast(ctypes.pointer(holder), ctypes.c_void_p)
        with _LAUNCH_LOCK:
            self._launch(*[ctypes.c_uint(v) for v in (*grid3, *block3)], pointers)


def _dim3(values: Sequence[int]) -> tuple[int, int, int]:
    x, y, z = (*[int(v) for v in values], 1, 1)[:3]
    if min(x, y, z) < 1:
        raise ValueError(f"grid and block sizes are at least 1, got {tuple(values)}")
    return x, y, z


def _argument(value: Any, pointer: bool, dtype: str | None, where: str) -> Any:
    if pointer:
        if not isinstance(value, np.ndarray) or not value.flags.c_contiguous:
            raise TypeError(f"{where}: a pointer parameter takes a C-contiguous NumPy array")
        return ctypes.c_void_p(value.ctypes.data)
    if dtype is None or not isinstance(value, np.generic) or value.dtype != np.dtype(dtype):
        raise TypeError(f"{where}: pass a numpy.{dtype} scalar, got {type(value).__name__}")
    return _CTYPES[dtype](value.item())


class EmulatedModule:
    """The kernels of one source, like `cupy.RawModule(code=...)`: `get_function(name)`. `text` defaults to
    kernels/cuda/<name>.cu (tests pass deliberately broken kernels to see the sanitizers catch them)."""

    def __init__(self, name: str, sanitizer: str | None = None, text: str | None = None) -> None:
        text = source(name) if text is None else text
        self.signatures = signatures(text)
        self.library = ctypes.CDLL(str(_build(name, text, sanitizer)))

    def get_function(self, name: str) -> EmulatedKernel:
        return EmulatedKernel(self.library, self.signatures[name])


@cache
def emulated_module(name: str, sanitizer: str | None = None) -> EmulatedModule:
    return EmulatedModule(name, sanitizer)


def _build(name: str, text: str, sanitizer: str | None) -> Path:
    if shutil.which(COMPILER) is None:
        raise EmulationUnavailableError(f"the CUDA emulation needs a C++20 compiler ({COMPILER}) on the PATH")
    launchers = "".join(
        f'extern "C" void emulated_launch_{kernel}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, '
        f"unsigned by, unsigned bz, void** args) {{ cuda_emulation::run(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, "
        f"[args] {{ cuda_emulation::call(&{kernel}, args); }}); }}\n"
        for kernel in signatures(text)
    )
    program = f'#include "{HEADER}"\n#line 1 "{name}.cu"\n{text}\n{launchers}'
    flags = (*BASE_FLAGS, *SANITIZER_FLAGS[sanitizer])
    key = hashlib.sha256("\0".join([program, HEADER.read_text(), *flags, _compiler_version()]).encode()).hexdigest()
    target = cache_dir() / f"{name}-{sanitizer or 'plain'}-{key[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        program_file = Path(scratch) / f"{name}.cpp"
        program_file.write_text(program)
        built = Path(scratch) / target.name
        result = subprocess.run([COMPILER, *flags, str(program_file), "-o", str(built)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"emulated build of {name}.cu failed:\n{result.stderr}")
        os.replace(built, target)  # atomic: a concurrent build of the same key wins or loses whole
    return target


@cache
def _compiler_version() -> str:
    return subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=False).stdout
