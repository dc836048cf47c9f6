"""Choosing the device: a GPU only after it hashed and searched exactly as the CPU does; never silently.

The wiring of the GPU path (hash, match) is checked here end to end with the emulated kernels standing in
for a verified GPU: the same host code, batches and kernels, on NumPy arrays."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cli.main import main
from hashing import device
from hashing.device import Device, GpuUnavailableError, select_device, self_test
from kernels.optional import optional_module
from kernels.runtime import KernelRuntime, emulated_runtime
from tests.conformance import ROOT

BRIDGE_MODS = ROOT / "pdq/data/bridge-mods"


@pytest.fixture(autouse=True)
def fresh_choice() -> Iterator[None]:
    device.verified_gpu.cache_clear()
    yield
    device.verified_gpu.cache_clear()


def _sabotaged() -> KernelRuntime:
    """The emulated runtime with one bit of every PDQ hash flipped: a GPU that computes something else."""
    runtime = emulated_runtime()
    real = runtime.kernel

    def kernel(source: str, name: str) -> Any:
        launch = real(source, name)
        if name != "pdq_bits":
            return launch

        def flipped(grid: Sequence[int], block: Sequence[int], args: Sequence[Any]) -> None:
            launch(grid, block, args)
            args[2].reshape(-1, 32)[:, 0] ^= 1

        return flipped

    runtime.kernel = kernel  # type: ignore[method-assign,assignment]
    return runtime


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, runtime: KernelRuntime) -> None:
    cupy = SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: 1)))
    monkeypatch.setattr(device, "optional_module", lambda name: cupy if name == "cupy" else optional_module(name))
    monkeypatch.setattr(device, "cuda_runtime", lambda: runtime)


def test_the_cpu_when_asked_and_no_gpu_without_cupy() -> None:
    assert select_device("cpu").device is Device.CPU
    if optional_module("cupy") is not None:
        pytest.skip("CuPy is installed here")
    choice = select_device("auto")
    assert choice.device is Device.CPU and "CuPy is not installed" in choice.reason
    with pytest.raises(GpuUnavailableError, match="CuPy is not installed"):
        select_device("gpu")


def test_a_gpu_that_computes_the_cpus_hashes_passes_the_self_test() -> None:
    assert self_test(emulated_runtime()) == []


def test_a_gpu_that_computes_something_else_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = _sabotaged()
    assert any("image" in failure for failure in self_test(runtime))
    _fake_gpu(monkeypatch, runtime)
    choice = select_device("auto")
    assert choice.device is Device.CPU and "self-test failed" in choice.reason
    with pytest.raises(GpuUnavailableError, match="self-test failed"):
        select_device("gpu")


def test_a_gpu_whose_kernels_do_not_run_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> KernelRuntime:
        raise RuntimeError("CUDA_ERROR_NO_BINARY_FOR_GPU")

    monkeypatch.setattr(device, "cuda_runtime", broken)
    cupy = SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: 1)))
    monkeypatch.setattr(device, "optional_module", lambda name: cupy if name == "cupy" else optional_module(name))
    choice = select_device("auto")
    assert choice.device is Device.CPU and "could not run" in choice.reason


def test_hash_on_the_gpu_prints_what_the_cpu_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_gpu(monkeypatch, emulated_runtime())
    files = [str(p) for p in sorted(BRIDGE_MODS.glob("*.jpg"))[:6]]
    for options in (["--dihedral", "--json"], ["--contract", "cli512"], ["--dihedral-pixels"]):
        assert main(["hash", *options, "--device", "cpu", *files]) == 0
        cpu = capsys.readouterr().out
        assert main(["hash", *options, "--device", "gpu", *files]) == 0
        assert capsys.readouterr().out == cpu


def test_match_on_the_gpu_prints_what_the_cpu_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_gpu(monkeypatch, emulated_runtime())
    from engine.index import factory

    monkeypatch.setattr(factory, "SMALL_LIST_ROWS", 1)  # the GPU index for any list, here a small one
    db = ["--db", str(tmp_path / "h.db")]
    files = sorted(BRIDGE_MODS.glob("*.jpg"))
    main(["hash", str(files[0]), str(files[3]), "--device", "cpu"])
    listing = tmp_path / "l.txt"
    listing.write_text("".join(line.split(",")[0] + "\n" for line in capsys.readouterr().out.splitlines()))
    assert main(["lists", "import", str(listing), "--list", "l", *db]) == 0
    capsys.readouterr()
    inputs = [str(p) for p in files[:6]]
    assert main(["match", "--json", "--device", "cpu", *inputs, *db]) == 0
    cpu = [_without_time(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["match", "--json", "--device", "gpu", *inputs, *db]) == 0
    gpu = [_without_time(line) for line in capsys.readouterr().out.splitlines()]
    assert gpu == cpu and sum('"decision": "match"' in line for line in cpu) >= 2


def _without_time(line: str) -> str:
    import json

    record = json.loads(line)
    record.pop("elapsed_ms")
    return json.dumps(record, sort_keys=True)


def test_asking_for_the_gpu_without_one_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    if optional_module("cupy") is not None:
        pytest.skip("CuPy is installed here")
    assert main(["hash", "--device", "gpu", str(BRIDGE_MODS)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hashmatch: error: GPU_UNAVAILABLE: --device gpu: CuPy is not installed")
    assert err.count("\n") == 1


def test_the_service_on_the_gpu_answers_what_it_answers_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grpc_api.client import HashmatchClient
    from tests.grpc_fixtures import BRIDGE, OTHER, serve

    _fake_gpu(monkeypatch, emulated_runtime())
    media = [("bridge", BRIDGE.read_bytes()), ("other", OTHER.read_bytes()), ("cut", BRIDGE.read_bytes()[:5000])]
    answers = {}
    for name in (Device.CPU, Device.GPU):
        (tmp_path / name).mkdir()
        served = serve(tmp_path / name, device=name)
        try:
            with HashmatchClient(served.address, served.matcher_token) as client:
                unary = [client.match(data).verdict for _, data in media]
                streamed = sorted(client.match_stream(media), key=lambda r: r.client_id)
                hashed = client.hash(BRIDGE.read_bytes(), dihedral=True).hashes
        finally:
            served.server.stop(1)
        for verdict in unary + [r.verdict for r in streamed]:
            verdict.elapsed_ms = 0
        answers[name] = (unary, [r.verdict for r in streamed], hashed)
    assert answers[Device.GPU] == answers[Device.CPU]
    assert answers[Device.GPU][0][0].decision == 2  # MATCH
