"""Query variants: more PDQ hashes of one decoded image, each hashed exactly with the standard PDQ code, so
re-uploads with a border, letterbox bars, screenshot padding or a crop still meet the listed hash.

Lists hold the standard PDQ of each listed picture and that cannot change; the query side is ours. Each
variant is a region of the decoded query, optionally extended past its edges by repeating its edge pixels,
and hashed as if those pixels were an image of their own. Nothing is decoded or copied again: a region, and
an extension, is a change of the two banded downsampling operators (`region_operator`), the way the pixel
dihedral variants flip them. `reference_pixels` builds the same pixels the plain way (slicing and
`numpy.pad`), and tests hold the two to equal hashes.

Families (each can be switched off; `content_box` and `crop` are on by default in match, scan and the
service; the 8 pixel-exact rotations and flips are the separate `dihedral` switch):

* `content_box`: the picture inside uniform or near-uniform borders, letterbox bars and padding (a
  screenshot's title bar and margins), found by trimming flat lines from each side (`content_box`).
* `crop`: the query as a centred crop of a larger listed picture (`crop_95_center`: the query shows the
  centre 95% of each side; its edges are extended back out), and the listed picture as a centred part of a
  wider query (`wider_90_center`: the query's centre 90% of each side).

A variant's name says what it assumes was done to the listed picture; its region is the part of the query
it was hashed from, in the query's pixel coordinates, so a reviewer can see why it matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np

from hashing.jarosz import axis_operator
from hashing.pdq import MIN_HASHABLE_SIDE
from hashing.pdq_hash import PdqHash
from kernels.banded import BandedOperator
from kernels.downsample import LUMA_COEFFS


class VariantFamily(StrEnum):
    CONTENT_BOX = "content_box"
    CROP = "crop"


ALL_FAMILIES: frozenset[VariantFamily] = frozenset(VariantFamily)

# The crop variants, chosen by the robustness study (`benchmarks/robustness.py`): each scale is the share of
# each side of the listed picture the query shows (crop_*) or the share of the query the listed picture
# fills (wider_*). See the README for the recall and false matches each brought.
CROP_SCALES: tuple[float, ...] = (0.98, 0.95, 0.9)
WIDER_SCALES: tuple[float, ...] = (0.9,)

# Content box: a line (row or column) is flat when nearly all its samples lie within FLAT_TOLERANCE luma
# levels of its median (JPEG ringing and noise pass; a line through a picture does not).
FLAT_TOLERANCE = 12.0
FLAT_SHARE = 0.97
LINE_SAMPLES = 256  # samples read along a line: flatness needs no more, and large images stay cheap
LINE_BLOCK = 16  # lines read at a time from an edge
MIN_TRIM_SHARE = 0.005  # a box that trims less than this of a side on every side is the image itself
MIN_BOX_SHARE = 0.2  # a box narrower or lower than this share of the image is a stripe, not a picture
CONTENT_BOX_ROUNDS = 4
TRANSITION_LINES = 3  # a blend this short between two flat runs does not stop the trim
MAX_VARIANTS = 16  # query variants one query may carry (a client sending hashes is held to it)


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of the query, in its pixel coordinates (x to the right, y down from the top left)."""

    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def __str__(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


@dataclass(frozen=True, slots=True)
class VariantPlan:
    """How one variant's pixels come from the query: its region, extended by repeating edge pixels."""

    name: str
    family: VariantFamily
    region: Region
    extend_top: int = 0
    extend_bottom: int = 0
    extend_left: int = 0
    extend_right: int = 0


@dataclass(frozen=True, slots=True)
class QueryVariant:
    """One variant's hash (with its own quality) and where in the query it came from."""

    name: str
    family: VariantFamily
    hash: PdqHash
    region: Region


def plan_variants(image: np.ndarray, families: frozenset[VariantFamily] = ALL_FAMILIES) -> list[VariantPlan]:
    """The fixed set of variants of one decoded image (H x W x 3 RGB or H x W luma), in a stable order."""
    height, width = image.shape[:2]
    plans: list[VariantPlan] = []
    if VariantFamily.CONTENT_BOX in families:
        box = content_box(image)
        if box is not None:
            plans.append(VariantPlan("content_box", VariantFamily.CONTENT_BOX, box))
    if VariantFamily.CROP in families:
        for scale in CROP_SCALES:
            plans.append(_extended(height, width, scale))
        for scale in WIDER_SCALES:
            plans.append(_centred(height, width, scale))
    whole = Region(0, 0, width, height)
    # Not the query itself (a tiny image's 98% extension rounds to no extension at all), and hashable.
    itself = [plan.region == whole and _hashed_size(plan) == (height, width) for plan in plans]
    return [
        plan
        for plan, same in zip(plans, itself, strict=True)
        if not same and min(_hashed_size(plan)) >= MIN_HASHABLE_SIDE
    ]


def _extended(height: int, width: int, scale: float) -> VariantPlan:
    """The query as the centre `scale` of each side of a larger picture: its edges repeated out to it."""
    extra_y, extra_x = round(height / scale) - height, round(width / scale) - width
    return VariantPlan(
        f"crop_{round(scale * 100)}_center",
        VariantFamily.CROP,
        Region(0, 0, width, height),
        extend_top=extra_y // 2,
        extend_bottom=extra_y - extra_y // 2,
        extend_left=extra_x // 2,
        extend_right=extra_x - extra_x // 2,
    )


def _centred(height: int, width: int, scale: float) -> VariantPlan:
    """The centre `scale` of each side of the query."""
    inner_h, inner_w = max(1, round(height * scale)), max(1, round(width * scale))
    region = Region((width - inner_w) // 2, (height - inner_h) // 2, inner_w, inner_h)
    return VariantPlan(f"wider_{round(scale * 100)}_center", VariantFamily.CROP, region)


def _hashed_size(plan: VariantPlan) -> tuple[int, int]:
    region = plan.region
    return (
        region.height + plan.extend_top + plan.extend_bottom,
        region.width + plan.extend_left + plan.extend_right,
    )


# ----- content box -----


def content_box(image: np.ndarray) -> Region | None:
    """The picture inside flat borders, or None when there is nothing worth trimming.

    A run of flat lines of one colour is trimmed from each side; rows and columns are trimmed in turn until
    nothing changes (at most CONTENT_BOX_ROUNDS), because a screenshot's margins beside the picture are flat
    only over the picture's rows, and its dark title bar above a white page is two runs of two colours. After
    the first round a run is trimmed only in a colour already trimmed somewhere (the page's white, seen
    beside the picture): a picture's own flat sky below a black bar is kept. Lines are read from each edge
    inwards, a block at a time, only as far as they are flat: most images cost a block per side."""
    height, width = image.shape[:2]
    if min(height, width) < MIN_HASHABLE_SIDE:
        return None
    top, bottom, left, right = 0, height, 0, width
    colours: list[float] | None = None  # None: the first round, any colour
    for round_number in range(CONTENT_BOX_ROUNDS):
        before = (top, bottom, left, right)
        trimmed: list[float] = []
        inside = image[top:bottom, left:right]
        from_top = _flat_run(_lines(inside, axis=0, reverse=False), colours, trimmed)
        from_bottom = _flat_run(_lines(inside, axis=0, reverse=True), colours, trimmed)
        top, bottom = top + from_top, bottom - from_bottom
        inside = image[top:bottom, left:right]
        if bottom - top >= MIN_BOX_SHARE * height:
            from_left = _flat_run(_lines(inside, axis=1, reverse=False), colours, trimmed)
            from_right = _flat_run(_lines(inside, axis=1, reverse=True), colours, trimmed)
            left, right = left + from_left, right - from_right
        if bottom - top < MIN_BOX_SHARE * height or right - left < MIN_BOX_SHARE * width:
            if round_number == 0:
                return None  # a stripe on a flat page, or a flat image: no picture to hash
            top, bottom, left, right = before  # a later round ate into the picture: keep the box it had
            break
        if (top, bottom, left, right) == before:
            break
        colours = (colours or []) + trimmed
    trims = (top / height, (height - bottom) / height, left / width, (width - right) / width)
    if max(trims) < MIN_TRIM_SHARE:
        return None
    return Region(left, top, right - left, bottom - top)


def _lines(pixels: np.ndarray, axis: int, reverse: bool) -> Iterator[tuple[bool, float]]:
    """(flat, median luma) of each line along `axis` (0: rows, 1: columns) from one edge inwards, computed a
    block of lines at a time from at most about LINE_SAMPLES samples per line."""
    lines = pixels if axis == 0 else np.swapaxes(pixels, 0, 1)
    count = lines.shape[0]
    step = max(1, lines.shape[1] // LINE_SAMPLES)
    coeffs = LUMA_COEFFS.astype(np.float32)
    for first in range(0, count, LINE_BLOCK):
        last = min(count, first + LINE_BLOCK)
        block = lines[count - last : count - first][::-1] if reverse else lines[first:last]
        sampled = block[:, ::step].astype(np.float32)
        luma = sampled @ coeffs if sampled.ndim == 3 else sampled
        median = np.median(luma, axis=1)
        flat = np.mean(np.abs(luma - median[:, None]) <= FLAT_TOLERANCE, axis=1) >= FLAT_SHARE
        yield from zip(flat.tolist(), median.tolist(), strict=True)


def _runs(lines: Iterator[tuple[bool, float]]) -> Iterator[tuple[int, int, float]]:
    """(start, end, colour) of each run of flat lines of one colour, up to the first line that is not flat."""
    start, colour, position = 0, None, 0
    for position, (flat, median) in enumerate(lines):
        if not flat:
            break
        if colour is None:
            start, colour = position, median
        elif abs(median - colour) > FLAT_TOLERANCE:
            yield start, position, colour
            start, colour = position, median
    else:
        position += 1  # every line was flat
    if colour is not None:
        yield start, position, colour


def _flat_run(lines: Iterator[tuple[bool, float]], colours: list[float] | None, trimmed: list[float]) -> int:
    """How many lines from the start to trim: the flat lines, in runs of one colour each. The outermost run
    is trimmed whatever its colour when `colours` is None (the first round); any other run only in one of
    `colours` or of those trimmed before it on this side, except short runs between two trimmed ones (the
    blend a resize leaves where a dark bar meets a white page). The colours of the runs trimmed are added to
    `trimmed`."""
    known = list(colours or [])
    taken, blend = 0, 0
    for start, end, colour in _runs(lines):
        if (start == 0 and colours is None) or any(abs(colour - c) <= FLAT_TOLERANCE for c in known):
            taken, blend = end, 0
            known.append(colour)
            trimmed.append(colour)
        elif blend + end - start <= TRANSITION_LINES:
            blend += end - start  # kept only if a run after it is trimmed
        else:
            break
    return taken


# ----- operators (the fast path) -----


@lru_cache(maxsize=1024)
def region_operator(length: int, start: int, size: int, before: int = 0, after: int = 0) -> BandedOperator:
    """The downsampling operator of samples [start, start + size) of an axis of `length`, extended by
    `before` and `after` repeated edge samples, as an operator on the whole axis: extended samples fold onto
    the edge sample they repeat, so a row's band stays contiguous."""
    if not (start >= 0 and size >= 1 and start + size <= length and before >= 0 and after >= 0):
        raise ValueError(f"region [{start}, {start + size}) extended by {before}/{after} on an axis of {length}")
    inner = axis_operator(size + before + after)
    # Each band position of the extended axis, on the region's axis: the extension folds onto the edge sample.
    positions = start + np.clip(inner.starts[:, None] + np.arange(inner.band)[None, :] - before, 0, size - 1)
    band = int((positions[:, -1] - positions[:, 0]).max()) + 1
    starts = np.minimum(positions[:, 0], length - band).astype(np.int64)  # each band inside the axis
    folded_weights = np.zeros((inner.rows, band), dtype=np.float64)
    rows = np.repeat(np.arange(inner.rows), inner.band)
    offsets = (positions - starts[:, None]).ravel()
    np.add.at(folded_weights, (rows, offsets), inner.weights.ravel())  # in band order, row by row
    starts.setflags(write=False)
    folded_weights.setflags(write=False)
    return BandedOperator(length=length, starts=starts, weights=folded_weights)


def plan_operators(plan: VariantPlan, height: int, width: int) -> tuple[BandedOperator, BandedOperator]:
    region = plan.region
    rows = region_operator(height, region.y, region.height, plan.extend_top, plan.extend_bottom)
    cols = region_operator(width, region.x, region.width, plan.extend_left, plan.extend_right)
    return rows, cols


# ----- the reference -----


def reference_pixels(image: np.ndarray, plan: VariantPlan) -> np.ndarray:
    """The variant's pixels the plain way, a copy: the region sliced out, its edges repeated outwards."""
    region = plan.region
    part = image[region.y : region.y + region.height, region.x : region.x + region.width]
    widths: list[tuple[int, int]] = [(plan.extend_top, plan.extend_bottom), (plan.extend_left, plan.extend_right)]
    if part.ndim == 3:
        widths.append((0, 0))
    return np.ascontiguousarray(np.pad(part, widths, mode="edge"))


def variants_of(plans: Sequence[VariantPlan], hashes: Sequence[PdqHash]) -> tuple[QueryVariant, ...]:
    return tuple(
        QueryVariant(plan.name, plan.family, value, plan.region) for plan, value in zip(plans, hashes, strict=True)
    )


_NAMES = {
    VariantFamily.CONTENT_BOX: re.compile(r"content_box"),
    VariantFamily.CROP: re.compile(r"(crop|wider)_[0-9]{2}_center"),
}


def is_variant_name(name: str, family: VariantFamily) -> bool:
    """Whether `name` is one this module gives a variant of `family` (a client's hashes are held to it: a crop
    sent as `rot90` would be held to the rotations' threshold and reported as one)."""
    return _NAMES[family].fullmatch(name) is not None


def families_off(no_content_box: bool = False, no_crops: bool = False) -> frozenset[VariantFamily]:
    """Every family but those switched off (the CLI's and the service's --no-content-box, --no-crops)."""
    off = {VariantFamily.CONTENT_BOX} if no_content_box else set()
    return ALL_FAMILIES - off - ({VariantFamily.CROP} if no_crops else set())


def families_from(names: Sequence[str] | None) -> frozenset[VariantFamily]:
    """Families from their names (ValueError for an unknown one); None: all of them."""
    if names is None:
        return ALL_FAMILIES
    try:
        return frozenset(VariantFamily(name) for name in names)
    except ValueError as exc:
        known = ", ".join(f.value for f in VariantFamily)
        raise ValueError(f"unknown variant family ({exc}); known: {known}") from None


def region_of(value: Any) -> Region | None:
    """A Region from its dict form (as verdicts and scan records carry it), None from None."""
    if value is None:
        return None
    return Region(int(value["x"]), int(value["y"]), int(value["width"]), int(value["height"]))
