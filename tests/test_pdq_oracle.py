"""Property tests against Meta's C++ reference (the `pdqhash` bindings) on random images of random sizes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from hashing.pdq import dct16, dihedral_dcts
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, DownsampleKernel, PdqHasher
from tests.images import noise_image, structured_image

pdqhash = pytest.importorskip("pdqhash", reason="the C++ reference oracle is a dev dependency")

# Sides that exercise every branch: below the 5 px minimum, tiny, the 64 px grid itself, odd and even
# windows around multiples of 128, and the largest sizes the issue names.
EDGE_SIDES = [
    1,
    2,
    4,
    5,
    6,
    7,
    31,
    63,
    64,
    65,
    127,
    128,
    129,
    255,
    256,
    257,
    383,
    384,
    385,
    511,
    512,
    513,
    767,
    768,
    769,
    1023,
    1024,
    1025,
    1279,
    1280,
    1281,
    2047,
    2048,
    2049,
    2100,
]
sides = st.one_of(st.sampled_from(EDGE_SIDES), st.integers(1, 2100))

FUSED = PdqHasher(backend="numpy", kernel=DownsampleKernel.FUSED)
DENSE = PdqHasher(backend="numpy", kernel=DownsampleKernel.DENSE)


def reference_dct(image: np.ndarray) -> np.ndarray:
    """The reference's own float32 16 x 16 DCT (pdqhash returns it flattened in reverse order)."""
    return np.asarray(pdqhash.compute_float(image)[0], dtype=np.float64)[::-1].reshape(16, 16)


def assert_equal_but_for_reference_rounding(
    image: np.ndarray, got: list[PdqHash], expected: list[PdqHash], dihedral: bool = False
) -> None:
    """Bit-identical, or every differing bit is a coefficient within the reference's float32 noise of the
    median, where the reference's rounding, not the image, decides the bit.

    The noise is measured on this very image: the largest gap between our float64 DCT and the reference's
    float32 one (pdqhash.compute_float). Pure-noise images (tiny DCT values) and images under 64 px
    (coefficients exactly tied at 0) are where this happens; the test records each such case.
    """
    if [h.hex() for h in got] == [h.hex() for h in expected]:
        return
    ours = dct16(np, FUSED.buffer64(image))
    theirs = reference_dct(image)
    noise = float(np.abs(ours - theirs).max())
    assert noise < 5e-3, f"float64 and float32 DCTs differ by {noise}: not rounding"
    variants = dihedral_dcts(np, ours) if dihedral else ours[None]
    for variant, ours_hash, their_hash in zip(variants, got, expected, strict=True):
        differing = ours_hash.bits() != their_hash.bits()
        median = np.sort(variant.ravel())[127]
        assert np.all(np.abs(variant[differing] - median) <= 2 * noise), "a bit differs outside rounding noise"
    if currently_in_test_context():
        event(f"bits decided by float32 rounding ({image.shape[0]}x{image.shape[1]})")


def reference(image: np.ndarray) -> tuple[PdqHash, int]:
    vector, quality = pdqhash.compute(image)
    return PdqHash(np.packbits(vector.astype(np.uint8)).tobytes()), int(quality)


def reference_dihedral(image: np.ndarray) -> list[PdqHash]:
    vectors, _ = pdqhash.compute_dihedral(image)
    return [PdqHash(np.packbits(v.astype(np.uint8)).tobytes()) for v in vectors]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=sides, width=sides, seed=st.integers(0, 2**32 - 1), noise=st.booleans())
def test_bit_identical_to_the_reference(height: int, width: int, seed: int, noise: bool) -> None:
    image = noise_image(height, width, seed) if noise else structured_image(height, width, seed)
    assert_hasher_matches_reference(FUSED, image)


def assert_hasher_matches_reference(hasher: PdqHasher, image: np.ndarray) -> None:
    expected, expected_quality = reference(image)
    got = hasher.hash_image(image).hash
    assert got.quality == expected_quality
    if expected_quality >= 50:
        assert_equal_but_for_reference_rounding(image, [got], [expected])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(5, 900), width=st.integers(5, 900), seed=st.integers(0, 2**32 - 1))
def test_dense_operator_path_matches_the_reference_too(height: int, width: int, seed: int) -> None:
    assert_hasher_matches_reference(DENSE, structured_image(height, width, seed))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(height=st.integers(5, 1200), width=st.integers(5, 1200), seed=st.integers(0, 2**32 - 1))
def test_dct_dihedral_hashes_match_the_reference(height: int, width: int, seed: int) -> None:
    image = structured_image(height, width, seed)
    result = FUSED.hash_image(image, dihedral=DihedralMode.DCT)
    if result.hash.quality is not None and result.hash.quality >= 50:
        assert_equal_but_for_reference_rounding(image, list(result.dihedral), reference_dihedral(image), True)


PIXEL_TRANSFORMS: list[Callable[[np.ndarray], np.ndarray]] = [
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, -1),
    lambda a: a[::-1],
    lambda a: a[:, ::-1],
    lambda a: np.swapaxes(a, 0, 1),
    lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
]


@settings(max_examples=20, deadline=None)
@given(height=st.integers(5, 700), width=st.integers(5, 700), seed=st.integers(0, 2**32 - 1))
def test_pixel_dihedral_mode_equals_hashing_the_transformed_pixels(height: int, width: int, seed: int) -> None:
    image = structured_image(height, width, seed)
    result = FUSED.hash_image(image, dihedral=DihedralMode.PIXELS)
    for transform, got in zip(PIXEL_TRANSFORMS, result.dihedral, strict=True):
        transformed = np.ascontiguousarray(transform(image))
        expected, expected_quality = reference(transformed)
        assert got.quality == expected_quality
        if expected_quality >= 50:
            assert_equal_but_for_reference_rounding(transformed, [got], [expected])


def test_a_known_rounding_case_is_explained_and_an_outside_difference_is_not() -> None:
    image = noise_image(1280, 1149, 177900)  # found by this suite: 2 bits within float32 noise of the median
    got, expected = FUSED.hash_image(image).hash, reference(image)[0]
    assert got - expected == 2
    assert_equal_but_for_reference_rounding(image, [got], [expected])
    dct = dct16(np, FUSED.buffer64(image))
    farthest = np.unravel_index(np.argmax(np.abs(dct - np.sort(dct.ravel())[127])), dct.shape)
    bits = got.bits()
    bits[farthest] = ~bits[farthest]  # a bit the image itself decides
    with pytest.raises(AssertionError, match="outside rounding noise"):
        assert_equal_but_for_reference_rounding(image, [PdqHash.from_bits(bits)], [expected])


def test_small_images_give_the_zero_hash_with_quality_zero() -> None:
    for height, width in [(1, 1), (4, 100), (100, 4), (4, 4)]:
        result = FUSED.hash_image(structured_image(height, width, 7), dihedral=DihedralMode.DCT)
        assert result.hash.is_zero() and result.hash.quality == 0
        assert len(result.dihedral) == 8 and all(h.is_zero() for h in result.dihedral)
        assert reference(structured_image(height, width, 7)) == (result.hash, 0)
