"""What the GPU image relies on, checked without Docker (no engine runs on our machines): the wheel carries
the kernels, the emulator header and the self-test images; Dockerfile.gpu copies what exists, installs an
extra that exists, and configures settings `hashmatch serve` knows."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from cli.serve_command import SETTINGS
from kernels.cuda_sources import source_names

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile.gpu").read_text()


def test_the_wheel_carries_kernels_header_and_self_test_images(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hashmatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"kernels/cuda/{name}.cu" for name in source_names()} <= names
    assert "kernels/emulation/cuda_emulation.h" in names
    assert {"hashing/self_test/LICENSE", "hashing/self_test/wee.jpg"} <= names
    assert "grpc_api/generated/hashmatch/v1/hashmatch_pb2.py" in names


def test_the_gpu_image_installs_the_gpu_extra_and_serves() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("cupy-cuda12x") for requirement in extras["gpu"])
    assert any(requirement.startswith("cupy-cuda13x") for requirement in extras["gpu-cuda13"])
    assert 'pip install ".[gpu]"' in DOCKERFILE
    assert 'ENTRYPOINT ["hashmatch", "serve"]' in DOCKERFILE
    assert re.search(r"HEALTHCHECK .*\n.*hashmatch admin \$HASHMATCH_HEALTH_ARGS health", DOCKERFILE)
    for copied in re.findall(r"^COPY (\S+) ", DOCKERFILE, re.MULTILINE):
        assert (ROOT / copied).exists(), copied


def test_the_images_settings_are_settings_serve_knows() -> None:
    configured = set(re.findall(r"HASHMATCH_([A-Z_]+)=", DOCKERFILE)) - {"HEALTH_ARGS"}
    assert configured == {"DB", "ADDRESS", "DEVICE"}
    assert {name.upper() for name in SETTINGS} >= configured
