"""The fused Numba kernel and the dense operators against the direct full-resolution filter."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashing.jarosz import (
    _composed_row,
    _composed_rows,
    axis_operator,
    box_bounds,
    jarosz_window,
    reference_downsample,
    sample_positions,
)
from kernels import backend
from kernels.backend import BackendName, GpuUnavailableError, select_backend
from kernels.banded import BandedOperator
from kernels.downsample import downsample_dense, downsample_fused, downsample_fused_columns, luma_plane
from kernels.optional import MissingDependencyError, require_module
from tests.images import structured_image


@settings(max_examples=40, deadline=None)
@given(height=st.integers(5, 1500), width=st.integers(5, 1500), seed=st.integers(0, 2**32 - 1), grey=st.booleans())
def test_fused_dense_and_direct_filter_agree(height: int, width: int, seed: int, grey: bool) -> None:
    image = structured_image(height, width, seed, channels=1 if grey else 3)
    rows, cols = axis_operator(height), axis_operator(width)
    direct = reference_downsample(luma_plane(np, image))
    dense = downsample_dense(np, image, rows, cols)
    fused = downsample_fused(image, rows, cols)
    np.testing.assert_allclose(dense, direct, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fused, direct, rtol=0, atol=1e-9)


@pytest.mark.parametrize("length", [1, 5, 64, 127, 128, 129, 1000, 4001])
def test_operator_rows_are_averages_with_bands_inside_the_axis(length: int) -> None:
    op = axis_operator(length)
    dense = op.to_dense()
    assert dense.shape == (64, length)
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-12)
    assert (dense >= 0).all()
    assert op.band <= 4 * jarosz_window(length) + 1


def test_window_and_sample_positions_follow_the_reference_formulas() -> None:
    assert [jarosz_window(n) for n in (1, 128, 129, 256, 257, 4000)] == [1, 1, 2, 2, 3, 32]
    assert list(sample_positions(64)) == list(range(64))
    assert sample_positions(1000)[0] == 7 and sample_positions(1000)[63] == 992
    lo, hi = box_bounds(10, 4)  # even window: one further right
    assert (lo[5], hi[5]) == (4, 7)
    lo, hi = box_bounds(10, 3)
    assert (lo[0], hi[0], lo[9], hi[9]) == (0, 1, 8, 9)


def test_flipped_operator_is_the_operator_of_the_mirrored_axis() -> None:
    op = axis_operator(777)
    np.testing.assert_array_equal(op.flipped().to_dense(), op.to_dense()[:, ::-1])


def test_fused_kernel_refuses_operators_of_another_size() -> None:
    image = structured_image(100, 80, 1)
    with pytest.raises(ValueError):
        downsample_fused(image, axis_operator(80), axis_operator(100))


def test_banded_operator_rejects_bands_outside_the_axis() -> None:
    with pytest.raises(ValueError):
        BandedOperator(length=4, starts=np.array([3]), weights=np.ones((1, 2)))


def test_numpy_backend_always_available_and_cupy_never_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert select_backend("numpy").name is BackendName.NUMPY
    # auto never moves onto a GPU by itself, even when one is there: only hashing.device's self-test does
    monkeypatch.setattr(backend, "_usable_cupy", lambda: np)
    assert select_backend("auto").name is BackendName.NUMPY
    monkeypatch.setattr(backend, "_usable_cupy", lambda: None)
    with pytest.raises(GpuUnavailableError):
        select_backend("cupy")


def test_missing_optional_dependency_names_the_install_command() -> None:
    with pytest.raises(MissingDependencyError, match="pip install"):
        require_module("hashmatch_no_such_module", "a test feature")


@pytest.mark.parametrize("lengths", [range(1, 400), [511, 767, 768, 1000, 1024, 3024, 4000, 4032, 9000]])
def test_operator_rows_built_together_equal_the_row_at_a_time_reference(lengths: Iterable[int]) -> None:
    """All 64 rows at once (the fast build every new image size, box and crop pays) are bit for bit the rows
    built one at a time: the same terms, added in the same order."""
    for length in lengths:
        lo, hi = box_bounds(length, jarosz_window(length))
        reference = [_composed_row(length, lo, hi, int(s)) for s in sample_positions(length)]
        together = _composed_rows(lo, hi, sample_positions(length))
        assert [first for first, _ in together] == [first for first, _ in reference], length
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(together, reference, strict=True)), length


@settings(max_examples=15, deadline=None)
@given(height=st.integers(5, 700), width=st.integers(5, 700), seed=st.integers(0, 2**32 - 1), grey=st.booleans())
def test_one_row_stage_for_a_column_operator_and_its_flip_is_bit_for_bit_two_passes(
    height: int, width: int, seed: int, grey: bool
) -> None:
    """The pixel dihedral hashes run each row operator once for both column operators (half the work)."""
    image = structured_image(height, width, seed)
    if grey:
        image = np.ascontiguousarray(image[..., 0])
    rows, cols = axis_operator(height), axis_operator(width)
    for row_op in (rows, rows.flipped()):
        together = downsample_fused_columns(image, row_op, [cols, cols.flipped()])
        apart = [downsample_fused(image, row_op, cols), downsample_fused(image, row_op, cols.flipped())]
        assert all(np.array_equal(a, b) for a, b in zip(together, apart, strict=True))
    with pytest.raises(ValueError, match="do not fit"):
        downsample_fused_columns(image, rows, [axis_operator(width + 1)])
