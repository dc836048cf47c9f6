"""The CUDA C sources of hashmatch's kernels (`kernels/cuda/*.cu`), how they are compiled, and their signatures.

One definition serves the three places a kernel is compiled: CuPy's RawModule on a GPU, the NVRTC compile
check (no GPU needed), and the CPU emulation harness (g++). Every source is `extern "C"`, includes no header,
and is compiled with `--fmad=false`: where a float result decides a PDQ bit, a fused multiply-add would round
differently from NumPy, which defines the kernels' meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent / "cuda"
# Compile options shared by the device build (CuPy RawModule, NVRTC check) and nothing else; the emulator
# has its own (g++ -ffp-contract=off is its --fmad=false).
NVRTC_OPTIONS: tuple[str, ...] = ("--std=c++17", "--fmad=false")
ARCHITECTURES: tuple[str, ...] = ("sm_80", "sm_90")  # A100 / H100 and H200

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.MULTILINE)
# Scalar parameter types the kernels use, as their NumPy dtypes: a launch must pass exactly these.
SCALAR_TYPES: dict[str, str] = {
    "int": "int32",
    "unsigned int": "uint32",
    "long long": "int64",
    "unsigned long long": "uint64",
    "float": "float32",
    "double": "float64",
}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # as written, without const and __restrict__
    pointer: bool

    @property
    def dtype(self) -> str | None:
        """The NumPy dtype a scalar argument must have; None for pointers."""
        return None if self.pointer else SCALAR_TYPES[self.type]


@dataclass(frozen=True)
class KernelSignature:
    name: str
    parameters: tuple[Parameter, ...]


def source_names() -> list[str]:
    return sorted(path.stem for path in SOURCE_DIR.glob("*.cu"))


@cache
def source(name: str) -> str:
    return (SOURCE_DIR / f"{name}.cu").read_text()


def signatures(text: str) -> dict[str, KernelSignature]:
    """The `extern "C" __global__` kernels of a source and their parameters."""
    found: dict[str, KernelSignature] = {}
    for match in _KERNEL.finditer(_COMMENT.sub("", text)):
        parameters = [_parameter(part) for part in match.group(2).split(",") if part.strip()]
        found[match.group(1)] = KernelSignature(match.group(1), tuple(parameters))
    return found


def _parameter(text: str) -> Parameter:
    words = text.replace("*", " * ").replace("__restrict__", " ").replace("const", " ").split()
    pointer = "*" in words
    name = words[-1]
    kind = " ".join(w for w in words[:-1] if w != "*")
    if not pointer and kind not in SCALAR_TYPES:
        raise ValueError(f"kernel parameter {text.strip()!r}: scalar type {kind!r} is not one of {list(SCALAR_TYPES)}")
    return Parameter(name, kind, pointer)
