"""The suite runs from a plain clone: every file the tests read lives in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conformance import ROOT, core_expectations, literal_expectations, literal_image_path

REPO = Path(__file__).resolve().parents[1]
# A path that leaves the repository for the workspace's shared folder, however it is spelled.
_OUTSIDE = re.compile(r"\.\./shared|parents\[\d\]\s*/\s*[\"']shared[\"']")


def test_conformance_vectors_live_inside_the_repository() -> None:
    assert ROOT.is_relative_to(REPO)
    assert (ROOT / "LICENSE").is_file(), "the upstream licence travels with the data"
    assert all(row.path.is_file() for row in core_expectations())
    # Informative rows name an image in prose ("(inline base64 ...)", "x.jpg (b.jpg)"): no file to read.
    for row in literal_expectations():
        if " " not in row.image:
            assert literal_image_path(row.image).is_file(), row.image


def test_no_test_or_benchmark_reads_the_shared_workspace_folder() -> None:
    sources = [*REPO.joinpath("tests").rglob("*.py"), *REPO.joinpath("benchmarks").rglob("*.py")]
    offenders = [str(p.relative_to(REPO)) for p in sources if p != Path(__file__) and _OUTSIDE.search(p.read_text())]
    assert offenders == []
