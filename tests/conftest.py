"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.grpc_fixtures import Served


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A server on a loopback port over the demo store (tests/grpc_fixtures.py), stopped after the test."""
    # Imported here: the GPU machine runs tests/test_gpu_device.py without gRPC's extras installed.
    from tests.grpc_fixtures import serve

    running = serve(tmp_path)
    yield running
    running.server.stop(1)
