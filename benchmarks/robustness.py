"""How well PDQ survives everyday edits, and how often distinct images collide: PDQ alone, PDQ with its 8
DCT-derived dihedral hashes, PDQ with the query variants the engine matches by default (the 8 pixel-exact
rotations and flips, the content box and the crops of hashing.query_variants), and a 64-bit pHash beside them.

Benign images only: photos that ship inside scikit-image, scikit-learn and matplotlib, and generated images
(benchmarks.distractors). Recall is over the photos x the transforms: the share of (photo, transform) pairs
whose transformed copy, hashed as the engine hashes an upload, comes within the threshold of the original's
standard PDQ (what a list holds). False matches are over every pair of distinct images, the photos and the
distractors; a pair counts when either image, uploaded, would match the other one listed. Query variants
under the matcher's quality gate are never searched, as in the engine; the main hash is counted both without
the gate and with it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from engine.signal_types.pdq import DIHEDRAL_THRESHOLD, VARIANT_MIN_QUALITY
from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, PdqHasher
from hashing.query_variants import ALL_FAMILIES, plan_variants

THRESHOLDS = list(range(65))
PDQ_THRESHOLD = 31  # the usual PDQ match threshold (of 256 bits)
PHASH_THRESHOLD = 10  # a common pHash threshold (of 64 bits)
QUALITY_GATE = 50  # the matcher's default
# The contenders: each is the set of hashes an upload is searched with.
METHODS = ("pdq", "pdq_dihedral", "pdq_variants")
METHOD_LABELS = {
    "pdq": "PDQ alone",
    "pdq_dihedral": "PDQ + DCT dihedral (before)",
    "pdq_variants": "PDQ + query variants (now)",
    "phash": "pHash (64-bit)",
}

SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "immunohistochemistry",
    "moon",
    "hubble_deep_field",
    "grass",
    "gravel",
    "brick",
    "text",
    "page",
    "retina",
)


def sample_photos(limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """Benign photos (and scans) that ship inside scikit-image, scikit-learn and matplotlib, as RGB."""
    images: list[tuple[str, Image.Image]] = []
    from skimage import data

    for name in SKIMAGE_PHOTOS:
        images.append((f"skimage:{name}", Image.fromarray(getattr(data, name)()).convert("RGB")))
    from sklearn.datasets import load_sample_images

    for name, array in zip(("china", "flower"), load_sample_images().images, strict=True):
        images.append((f"sklearn:{name}", Image.fromarray(array).convert("RGB")))
    import matplotlib.cbook as cbook

    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        path = str(cbook.get_sample_data(name, asfileobj=False))
        with Image.open(path) as image:
            images.append((f"matplotlib:{name}", image.convert("RGB")))
    return images[:limit] if limit else images


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    return apply


def _resize(scale: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize(
        (max(1, int(im.width * scale)), max(1, int(im.height * scale))), Image.Resampling.LANCZOS
    )


def _crop(percent: float) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        dx, dy = int(image.width * percent / 100), int(image.height * percent / 100)
        return image.crop((dx, dy, image.width - dx, image.height - dy))

    return apply


def _corner_crop(percent: float) -> Callable[[Image.Image], Image.Image]:
    """`percent` of each side cut from the right and the bottom: the upload is the picture's top-left part."""

    def apply(image: Image.Image) -> Image.Image:
        return image.crop(
            (0, 0, image.width - int(image.width * percent / 100), image.height - int(image.height * percent / 100))
        )

    return apply


def _border(fraction: float, colour: tuple[int, int, int] = (0, 0, 0)) -> Callable[[Image.Image], Image.Image]:
    return lambda im: ImageOps.expand(im, border=int(max(im.size) * fraction), fill=colour)


def _letterbox(image: Image.Image) -> Image.Image:
    """Black bars above and below to make 16:9 wider content fit a square frame."""
    side = max(image.size)
    canvas = Image.new("RGB", (side, side))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def _pillarbox(image: Image.Image) -> Image.Image:
    """Black bars left and right: the picture in a 16:9 frame of its height."""
    width = max(image.width, image.height * 16 // 9)
    canvas = Image.new("RGB", (width, image.height))
    canvas.paste(image, ((width - image.width) // 2, 0))
    return canvas


def _text(image: Image.Image) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    for row in range(3):
        draw.text((10, 10 + row * image.height // 3), "benign caption text " * 3, fill=(255, 255, 255))
    return out


def _logo(image: Image.Image) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    w, h = image.size
    draw.ellipse((w * 0.75, h * 0.75, w * 0.95, h * 0.95), fill=(240, 200, 0), outline=(0, 0, 0), width=3)
    return out


def _screenshot(image: Image.Image) -> Image.Image:
    """The picture on a larger white page with a title bar, as a screen capture of it would be."""
    w, h = image.size
    canvas = Image.new("RGB", (int(w * 1.3), int(h * 1.4)), (255, 255, 255))
    ImageDraw.Draw(canvas).rectangle((0, 0, canvas.width, int(h * 0.12)), fill=(40, 40, 60))
    canvas.paste(image, (int(w * 0.15), int(h * 0.2)))
    return canvas


def _gamma(value: float) -> Callable[[Image.Image], Image.Image]:
    table = [min(255, int(255 * (i / 255) ** value + 0.5)) for i in range(256)] * 3
    return lambda im: im.point(table)


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg q90": _jpeg(90),
    "jpeg q70": _jpeg(70),
    "jpeg q50": _jpeg(50),
    "jpeg q30": _jpeg(30),
    "resize 0.25x": _resize(0.25),
    "resize 0.5x": _resize(0.5),
    "resize 1.5x": _resize(1.5),
    "resize 2x": _resize(2.0),
    "crop 1%": _crop(1),
    "crop 2.5%": _crop(2.5),
    "crop 5%": _crop(5),
    "crop 7.5%": _crop(7.5),
    "crop 10%": _crop(10),
    "crop 20%": _crop(20),
    "crop 5% one corner": _corner_crop(10),
    "border 5%": _border(0.05),
    "border 10% white": _border(0.10, (255, 255, 255)),
    "letterbox": _letterbox,
    "pillarbox": _pillarbox,
    "screenshot padding": _screenshot,
    "rotate 90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rotate 180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rotate 270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "mirror": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip": lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "rotate 2deg": lambda im: im.rotate(2, resample=Image.Resampling.BICUBIC),
    "rotate 5deg": lambda im: im.rotate(5, resample=Image.Resampling.BICUBIC),
    "rotate 10deg": lambda im: im.rotate(10, resample=Image.Resampling.BICUBIC),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "brightness +30%": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "contrast +50%": lambda im: ImageEnhance.Contrast(im).enhance(1.5),
    "gamma 0.7": _gamma(0.7),
    "text overlay": _text,
    "logo overlay": _logo,
    # Re-uploads are rarely one edit: the variants' copies re-encoded and resized too.
    "rotate 90 + jpeg q70": lambda im: _jpeg(70)(im.transpose(Image.Transpose.ROTATE_90)),
    "rotate 90 + jpeg q70 + resize 0.5x": lambda im: _resize(0.5)(_jpeg(70)(im.transpose(Image.Transpose.ROTATE_90))),
    "mirror + jpeg q50": lambda im: _jpeg(50)(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "border 5% + jpeg q50": lambda im: _jpeg(50)(_border(0.05)(im)),
    "screenshot + jpeg q70 + resize 0.5x": lambda im: _resize(0.5)(_jpeg(70)(_screenshot(im))),
    "crop 2.5% + jpeg q70": lambda im: _jpeg(70)(_crop(2.5)(im)),
}
# Transforms where the list holds an edited picture and the upload is the photo: the listed picture is the
# centre of the upload (a cropped copy was listed; the wider original circulates).
LISTED_EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "wider 5%": _crop(5),
}
# The bars (and rows that must not get worse), by transform.
RECALL_BARS = (
    (("rotate 90", "rotate 180", "rotate 270", "mirror", "flip"), 0.95),
    (("border 5%", "border 10% white", "letterbox", "pillarbox", "screenshot padding"), 0.90),
    (("crop 1%", "crop 2.5%", "crop 5%", "crop 7.5%", "crop 10%"), 0.80),
)


@dataclass(frozen=True)
class Hashed:
    """An upload's hashes under each contender, as the matcher would search them: each with the most bits it
    may be from a listed hash and still match (256: the threshold alone decides)."""

    pdq: PdqHash
    searched: dict[str, tuple[tuple[PdqHash, int], ...]]
    phash: Any  # imagehash.ImageHash

    def distance(self, method: str, listed: PdqHash) -> int:
        """The closest searched hash that may match `listed`; 256 when none may."""
        return min((d for h, limit in self.searched[method] if (d := h - listed) <= limit), default=256)


def hash_upload(hasher: PdqHasher, image: Image.Image) -> Hashed:
    """Before this study's variants, the service matched the 8 DCT-derived hashes at the list's threshold;
    now the 8 pixel-exact ones within DIHEDRAL_THRESHOLD, and the content box and crops at the threshold,
    each over the gate, for a query whose own quality is at least VARIANT_MIN_QUALITY (engine.signal_types.pdq)."""
    import imagehash

    pixels = np.asarray(image.convert("RGB"))
    dct = hasher.hash_image(pixels, dihedral=DihedralMode.DCT)
    everything = 256
    variants: tuple[tuple[PdqHash, int], ...] = ((dct.hash, everything),)
    if (dct.hash.quality or 0) >= VARIANT_MIN_QUALITY:
        exact = hasher.hash_image(pixels, dihedral=DihedralMode.PIXELS).dihedral[1:]
        gate = max(QUALITY_GATE, VARIANT_MIN_QUALITY)
        extra = [
            h for h in hasher.hash_variants(pixels, plan_variants(pixels, ALL_FAMILIES)) if (h.quality or 0) >= gate
        ]
        variants += tuple((h, DIHEDRAL_THRESHOLD) for h in exact) + tuple((h, everything) for h in extra)
    return Hashed(
        pdq=dct.hash,
        searched={
            "pdq": ((dct.hash, everything),),
            "pdq_dihedral": tuple((h, everything) for h in dct.dihedral),
            "pdq_variants": variants,
        },
        phash=imagehash.phash(image),
    )


@dataclass
class RobustnessResult:
    images: list[str]
    transforms: list[str]
    # method -> transform -> distances (one per photo): the closest searched hash to the listed one
    distances: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # method -> distances between distinct images (one per pair, the closer direction)
    distinct: dict[str, list[int]] = field(default_factory=dict)
    distinct_gated: dict[str, list[int]] = field(default_factory=dict)  # pairs whose images pass the gate
    distractors: list[str] = field(default_factory=list)
    searched: dict[str, list[bytes]] = field(default_factory=dict, repr=False)  # every code searched, per method
    random_list: dict[str, Any] = field(default_factory=dict)

    def recall(self, method: str, transform: str, threshold: int) -> float:
        values = self.distances[method][transform]
        return sum(d <= threshold for d in values) / len(values)

    def false_matches(self, method: str, threshold: int, gated: bool = False) -> int:
        values = (self.distinct_gated if gated else self.distinct)[method]
        return int(np.count_nonzero(np.asarray(values) <= threshold))

    def false_match_rate(self, method: str, threshold: int) -> float:
        return self.false_matches(method, threshold) / max(1, len(self.distinct[method]))

    def to_json(self) -> dict[str, Any]:
        methods = list(self.distances)  # the PDQ contenders and pHash
        return {
            "images": self.images,
            "distractors": self.distractors,
            "transforms": self.transforms,
            "thresholds": THRESHOLDS,
            "quality_gate": QUALITY_GATE,
            "recall": {m: {t: [self.recall(m, t, k) for k in THRESHOLDS] for t in self.transforms} for m in methods},
            "false_match_rate": {m: [self.false_match_rate(m, k) for k in THRESHOLDS] for m in methods},
            "false_matches": {
                m: {"all": self.false_matches(m, PDQ_THRESHOLD), "gated": self.false_matches(m, PDQ_THRESHOLD, True)}
                for m in METHODS
            },
            "distances": self.distances,
            # Pairs of distinct images by distance (index d: how many pairs are d bits apart; 0..256, pHash 0..64)
            "distinct_histogram": {m: np.bincount(self.distinct[m], minlength=257).tolist() for m in self.distinct},
            "distinct_pairs": len(next(iter(self.distinct.values()), [])),
            "distinct_pairs_gated": len(next(iter(self.distinct_gated.values()), [])),
            "random_list": self.random_list,
        }


def evaluate(
    images: list[tuple[str, Image.Image]],
    transforms: dict[str, Callable[[Image.Image], Image.Image]],
    distinct_only: Sequence[tuple[str, Image.Image]] = (),
    listed_edits: dict[str, Callable[[Image.Image], Image.Image]] | None = None,
) -> RobustnessResult:
    """Recall over `images` x `transforms` (and `listed_edits`, where the list holds the edited picture and
    the upload is the photo); false matches over all pairs of `images` + `distinct_only`."""
    hasher = PdqHasher(backend="numpy")
    originals = [hash_upload(hasher, image) for _, image in images]
    edits = listed_edits or {}
    result = RobustnessResult([name for name, _ in images], [*transforms, *edits])
    result.distractors = [name for name, _ in distinct_only]
    result.distances = {method: {} for method in (*METHODS, "phash")}
    result.searched = {method: [] for method in METHODS}
    for name, transform in transforms.items():
        uploads = [hash_upload(hasher, transform(image)) for _, image in images]
        _record(result, name, uploads, originals)
    for name, edit in edits.items():
        listed = [hash_upload(hasher, edit(image)) for _, image in images]
        _record(result, name, originals, listed)
    everyone = originals + [hash_upload(hasher, image) for _, image in distinct_only]
    for method in METHODS:
        result.searched[method] += [h.digest for one in everyone for h, _ in one.searched[method]]
        result.distinct[method], result.distinct_gated[method] = _distinct_distances(everyone, method)
    phash = np.array([[int(a.phash - b.phash) for b in everyone] for a in everyone])
    upper = np.triu_indices(len(everyone), 1)
    result.distinct["phash"] = phash[upper].tolist()
    return result


def _record(result: RobustnessResult, name: str, uploads: list[Hashed], listed: list[Hashed]) -> None:
    for method in METHODS:
        result.distances[method][name] = [
            upload.distance(method, target.pdq) for upload, target in zip(uploads, listed, strict=True)
        ]
        result.searched[method] += [h.digest for upload in uploads for h, _ in upload.searched[method]]
    result.distances["phash"][name] = [
        int(upload.phash - target.phash) for upload, target in zip(uploads, listed, strict=True)
    ]


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def _codes(hashes: Sequence[PdqHash]) -> np.ndarray:
    return np.frombuffer(b"".join(h.digest for h in hashes), dtype=np.uint8).reshape(len(hashes), 32)


def _distinct_distances(everyone: list[Hashed], method: str) -> tuple[list[int], list[int]]:
    """For each pair of distinct images (i < j): the closer of "i uploaded against j listed" and the reverse;
    and the same over the pairs whose main hashes both pass the quality gate."""
    listed = _codes([one.pdq for one in everyone])
    closest = np.full((len(everyone), len(everyone)), 256, dtype=np.int32)
    for i, one in enumerate(everyone):  # row i: image i uploaded, against every image listed
        searched = _codes([h for h, _ in one.searched[method]])
        limits = np.array([limit for _, limit in one.searched[method]])
        distances = _POPCOUNT[searched[:, None, :] ^ listed[None, :, :]].sum(axis=2).astype(np.int32)
        distances[distances > limits[:, None]] = 256
        closest[i] = distances.min(axis=0)
    symmetric = np.minimum(closest, closest.T)
    upper = np.triu_indices(len(everyone), 1)
    passes = np.array([(one.pdq.quality or 0) >= QUALITY_GATE for one in everyone])
    both = passes[upper[0]] & passes[upper[1]]
    values = symmetric[upper]
    return values.tolist(), values[both].tolist()


def random_list_matches(result: RobustnessResult, entries: int, seed: int = 3) -> dict[str, Any]:
    """Every code the study searched (each upload's hashes under each contender), against a list of
    `entries` random PDQ hashes at the usual threshold: how many would match."""
    from engine.index.multi_index import MultiIndexHashIndex

    rng = np.random.default_rng(seed)
    index = MultiIndexHashIndex(rng.integers(0, 256, (entries, 32), dtype=np.uint8))
    found: dict[str, Any] = {"entries": entries, "threshold": PDQ_THRESHOLD}
    for method, digests in result.searched.items():
        codes = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32)
        hits = index.search(codes, PDQ_THRESHOLD)
        found[method] = {"searched": len(digests), "matches": sum(len(hits.for_query(q)[0]) for q in range(len(codes)))}
    result.random_list = found
    return found


def markdown(result: RobustnessResult) -> str:
    labels = " | ".join(f"{METHOD_LABELS[m]} at {PDQ_THRESHOLD}" for m in METHODS)
    lines = [
        f"Recall over {len(result.images)} benign photos that ship in Python packages x "
        f"{len(result.transforms)} transforms; false matches over {len(result.distinct['pdq'])} pairs of distinct "
        f"images ({len(result.images)} photos and {len(result.distractors)} distractors: tiles of the photos, "
        "generated scenes, documents, screenshots with UI chrome, flat images, colour fields).",
        "",
        f"| transform | {labels} | pHash at {PHASH_THRESHOLD} | PDQ median distance |",
        "|---|" + "---:|" * (len(METHODS) + 2),
    ]
    for name in result.transforms:
        cells = " | ".join(f"{result.recall(m, name, PDQ_THRESHOLD):.0%}" for m in METHODS)
        lines.append(
            f"| {name} | {cells} | {result.recall('phash', name, PHASH_THRESHOLD):.0%} | "
            f"{int(np.median(result.distances['pdq'][name]))} |"
        )
    gated_pairs = len(result.distinct_gated["pdq"])
    lines += [
        "",
        f"| false matches at {PDQ_THRESHOLD} between distinct images | all {len(result.distinct['pdq'])} pairs | "
        f"{gated_pairs} pairs whose images pass the quality gate ({QUALITY_GATE}) |",
        "|---|---:|---:|",
    ]
    for method in METHODS:
        lines.append(
            f"| {METHOD_LABELS[method]} | {result.false_matches(method, PDQ_THRESHOLD)} | "
            f"{result.false_matches(method, PDQ_THRESHOLD, gated=True)} |"
        )
    phash_false = int(np.count_nonzero(np.asarray(result.distinct["phash"]) <= PHASH_THRESHOLD))
    lines.append(f"| pHash at {PHASH_THRESHOLD} | {phash_false} | |")
    if result.random_list:
        found = result.random_list
        lines += [
            "",
            f"| against {found['entries']:,} random PDQ hashes at {PDQ_THRESHOLD} | codes searched | matches |",
            "|---|---:|---:|",
        ]
        for method in METHODS:
            lines.append(f"| {METHOD_LABELS[method]} | {found[method]['searched']} | {found[method]['matches']} |")
    return "\n".join(lines) + "\n"
