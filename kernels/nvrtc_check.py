"""Compile the CUDA sources for real GPU architectures without a GPU: NVRTC through its public Python
bindings (`cuda-bindings` with the `nvidia-cuda-nvrtc` library; no driver or device is needed), with the
options the device build uses. A source that does not compile fails with NVRTC's log, which names the line.

    python -m kernels.nvrtc_check          # every source, every architecture; exit 1 on a failure
    python -m kernels.nvrtc_check --cupy   # on a GPU machine: every kernel compiled and loaded by CuPy,
                                           # for this device (no cuda-bindings needed there)
"""

from __future__ import annotations

import sys
from types import ModuleType

from kernels.cuda_sources import ARCHITECTURES, NVRTC_OPTIONS, signatures, source, source_names
from kernels.optional import MissingDependencyError, require_module


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


def cupy_check() -> int:
    """Each kernel compiled and loaded through CuPy's RawModule, as the GPU runtime does, for device 0."""
    cupy = require_module("cupy", "the CuPy compile check")
    arch = f"sm_{cupy.cuda.Device(0).compute_capability}"
    failed = 0
    for name in source_names():
        module = cupy.RawModule(code=source(name), options=NVRTC_OPTIONS)
        for kernel in signatures(source(name)):
            try:
                module.get_function(kernel)
            except Exception as exc:  # CuPy's CompileException carries NVRTC's log
                failed += 1
                print(f"{name}.cu {kernel} does not compile for {arch}:\n{exc}", file=sys.stderr)
                continue
            print(f"{name}.cu {kernel}: compiled and loaded by CuPy for {arch}")
    return 1 if failed else 0


def main() -> int:
    if sys.argv[1:] == ["--cupy"]:
        return cupy_check()
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


def run() -> int:
    try:
        return main()
    except MissingDependencyError as exc:
        print(f"nvrtc_check: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
