"""Compile the CUDA sources for real GPU architectures without a GPU: NVRTC through its public Python
bindings (`cuda-bindings` with the `nvidia-cuda-nvrtc` library; no driver or device is needed), with the
options the device build uses. A source that does not compile fails with NVRTC's log, which names the line.

    python -m kernels.nvrtc_check          # every source, every architecture; exit 1 on a failure
"""

from __future__ import annotations

import sys
from types import ModuleType

from kernels.cuda_sources import ARCHITECTURES, NVRTC_OPTIONS, source, source_names
from kernels.optional import require_module


class KernelCompileError(RuntimeError):
    def __init__(self, name: str, arch: str, log: str) -> None:
        super().__init__(f"{name}.cu does not compile for {arch}:\n{log}")
        self.log = log


def _nvrtc() -> ModuleType:
    bindings = require_module("cuda.bindings.nvrtc", "the CUDA compile check (NVRTC)")
    return bindings


def nvrtc_version() -> tuple[int, int]:
    nvrtc = _nvrtc()
    _, major, minor = nvrtc.nvrtcVersion()
    return int(major), int(minor)


def compile_cubin(name: str, arch: str) -> bytes:
    """The cubin of kernels/cuda/<name>.cu for `arch` (e.g. "sm_90")."""
    nvrtc = _nvrtc()
    err, program = nvrtc.nvrtcCreateProgram(source(name).encode(), f"{name}.cu".encode(), 0, [], [])
    _check(nvrtc, err, name, arch, program)
    try:
        options = [f"--gpu-architecture={arch}".encode(), *(o.encode() for o in NVRTC_OPTIONS)]
        (err,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
        _check(nvrtc, err, name, arch, program)
        err, size = nvrtc.nvrtcGetCUBINSize(program)
        _check(nvrtc, err, name, arch, program)
        cubin = b" " * size
        (err,) = nvrtc.nvrtcGetCUBIN(program, cubin)
        _check(nvrtc, err, name, arch, program)
        return bytes(cubin)
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def _check(nvrtc: ModuleType, err: object, name: str, arch: str, program: object) -> None:
    if err == nvrtc.nvrtcResult.NVRTC_SUCCESS:
        return
    log = ""
    _, size = nvrtc.nvrtcGetProgramLogSize(program)
    if size:
        buffer = b" " * size
        nvrtc.nvrtcGetProgramLog(program, buffer)
        log = buffer.decode(errors="replace").rstrip("\0 \n")
    raise KernelCompileError(name, arch, log or str(err))


def main() -> int:
    failed = 0
    major, minor = nvrtc_version()
    for name in source_names():
        for arch in ARCHITECTURES:
            try:
                size = len(compile_cubin(name, arch))
            except KernelCompileError as exc:
                failed += 1
                print(exc, file=sys.stderr)
                continue
            print(f"{name}.cu {arch}: {size} bytes of cubin (NVRTC {major}.{minor})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
