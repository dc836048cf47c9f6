"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.grpc_fixtures import Served, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A server on a loopback port over the demo store (tests/grpc_fixtures.py), stopped after the test."""
    running = serve(tmp_path)
    yield running
    running.server.stop(1)
