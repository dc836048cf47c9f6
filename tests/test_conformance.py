"""Bit-exactness against Meta's reference on every image of the shared conformance set."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from hashing.media_hasher import HashOptions, MediaHasher
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, DownsampleKernel, PdqContract, PdqHasher
from tests.conformance import (
    QUALITY_GATE,
    ROOT,
    CoreExpectation,
    LiteralExpectation,
    core_expectations,
    literal_expectations,
    literal_image_path,
)

CORE = core_expectations()
KERNELS = [DownsampleKernel.FUSED, DownsampleKernel.DENSE]
# A 16-bit greyscale image: the reference rows record Pillow's convert("RGB"), which clips its samples to white
# (quality 36); hashmatch keeps each sample's high byte instead (README, "Bit depth"), checked below.
SIXTEEN_BIT = "python-threatexchange/threatexchange/tests/hashing/resources/I16.png"


def hasher(kernel: DownsampleKernel, **options: object) -> MediaHasher:
    return MediaHasher(HashOptions(**options), PdqHasher(backend="numpy", kernel=kernel))  # type: ignore[arg-type]


def test_the_conformance_set_is_present_and_complete() -> None:
    assert ROOT.is_dir(), f"conformance vectors missing at {ROOT}"
    assert len(CORE) >= 50
    assert all(e.path.is_file() for e in CORE)


def _reference_rows(rows: list[CoreExpectation]) -> list[CoreExpectation]:
    return [e for e in rows if e.name != SIXTEEN_BIT]


def test_sixteen_bit_greyscale_hashes_as_its_8_bit_copy_not_as_the_clipped_reference() -> None:
    expected = next(e for e in CORE if e.name == SIXTEEN_BIT)
    with Image.open(expected.path) as image:
        assert image.mode == "I;16" and int(np.asarray(image).max()) > 255
        eight_bit = (np.asarray(image) >> 8).astype(np.uint8)
    got = hasher(DownsampleKernel.FUSED).hash_file(expected.path).pdq
    copy = PdqHasher(backend="numpy").hash_image(np.repeat(eight_bit[:, :, None], 3, axis=2)).hash
    assert got.hex() == copy.hex() and got.quality == copy.quality == 100
    clipped = PdqHash.from_hex(expected.fullres_pdq)
    assert expected.fullres_quality < 50 and got - clipped > 31  # the reference's white image matches nothing


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("expected", _reference_rows(CORE), ids=lambda e: e.name)
def test_fullres_hash_and_quality(expected: CoreExpectation, kernel: DownsampleKernel) -> None:
    got = hasher(kernel).hash_file(expected.path)
    assert (got.width, got.height) == (expected.width, expected.height)
    assert got.pdq.quality == expected.fullres_quality
    if expected.fullres_quality >= QUALITY_GATE:
        assert got.pdq.hex() == expected.fullres_pdq


@pytest.mark.parametrize("expected", CORE, ids=lambda e: e.name)
def test_dct_dihedral_hashes(expected: CoreExpectation) -> None:
    got = hasher(DownsampleKernel.FUSED, dihedral=DihedralMode.DCT).hash_file(expected.path)
    assert len(got.dihedral) == 8
    if expected.fullres_quality >= QUALITY_GATE:
        assert tuple(h.hex() for h in got.dihedral) == expected.dihedral


@pytest.mark.parametrize("expected", _reference_rows(CORE), ids=lambda e: e.name)
def test_cli512_contract(expected: CoreExpectation) -> None:
    got = hasher(DownsampleKernel.FUSED, contract=PdqContract.CLI512).hash_file(expected.path)
    assert got.pdq.quality == expected.cli512_quality
    if expected.cli512_quality >= QUALITY_GATE:
        assert got.pdq.hex() == expected.cli512_pdq


def test_every_pillow_mode_hashes_close_to_the_rgb_original() -> None:
    modes = [e for e in CORE if "/modes/" in str(e.path)]
    assert len(modes) >= 13
    original = PdqHash.from_hex(next(e for e in modes if e.path.name == "original.jpg").fullres_pdq)
    engine = hasher(DownsampleKernel.FUSED)
    for expected in modes:
        got = engine.hash_file(expected.path).pdq
        assert got.hex() == expected.fullres_pdq, expected.name
        assert got - original <= 2, expected.name


# ----- literal expectations from the upstream repository, each under the contract its row names -----

LITERALS = literal_expectations()


def _rows(predicate: str, note: str = "") -> list[Any]:
    return [
        pytest.param(row, id=f"{row.image}|{row.source.split('/')[-1]}")
        for row in LITERALS
        if predicate in row.rule and note in row.note and not row.image.startswith("(") and row.image != SIXTEEN_BIT
    ]


@pytest.mark.parametrize("row", _rows("exact hash") + _rows("exact", note="Java"))
def test_java_and_python_threatexchange_literals_exactly(row: LiteralExpectation) -> None:
    got = hasher(DownsampleKernel.FUSED).hash_file(literal_image_path(row.image)).pdq
    assert got.hex() == row.expected_pdq
    if row.expected_quality is not None:
        assert got.quality == row.expected_quality


@pytest.mark.parametrize("row", _rows("listed"))
def test_python_threatexchange_examples_exactly(row: LiteralExpectation) -> None:
    got = hasher(DownsampleKernel.FUSED).hash_file(literal_image_path(row.image)).pdq
    assert got.hex() == row.expected_pdq


@pytest.mark.parametrize("row", _rows("Selenium"))
def test_cpp_cli_literals_through_cli512_mode(row: LiteralExpectation) -> None:
    got = hasher(DownsampleKernel.FUSED, contract=PdqContract.CLI512).hash_file(literal_image_path(row.image)).pdq
    # The CLI decodes with CImg, not Pillow: exact, or within 2 bits where its decoder's pixels differ.
    assert got - PdqHash.from_hex(row.expected_pdq) <= 2


@pytest.mark.parametrize("row", _rows("hamming<=16"))
def test_pure_python_reference_literals_within_16_bits(row: LiteralExpectation) -> None:
    got = hasher(DownsampleKernel.FUSED).hash_file(literal_image_path(row.image)).pdq
    assert got - PdqHash.from_hex(row.expected_pdq) <= 16


def test_every_literal_row_is_checked_or_informative() -> None:
    checked = {"exact", "exact hash and quality", "hamming<=16", "exact (Selenium test)"}
    for row in LITERALS:
        assert row.rule in checked or row.rule.startswith(("listed", "doc sample output")), row.rule
