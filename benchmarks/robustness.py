"""How well PDQ survives everyday edits, and how often distinct images collide, beside a 64-bit pHash.

Benign images only: photos that ship inside scikit-image, scikit-learn and matplotlib, and generated
patterns. For every image and transform: the Hamming distance between the original's PDQ hash and the
transformed image's (plain, and the best of its 8 DCT dihedral variants), and the same for imagehash's
pHash. Recall at threshold t is the share of (image, transform) pairs within t; the false-match rate at t is
the share of pairs of distinct originals within t.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from hashing.pdq_hash import PdqHash
from hashing.pdq_hasher import DihedralMode, PdqHasher

THRESHOLDS = list(range(65))
PDQ_THRESHOLD = 31  # the usual PDQ match threshold (of 256 bits)
PHASH_THRESHOLD = 10  # a common pHash threshold (of 64 bits)
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


def generated_fields(count: int) -> list[tuple[str, Image.Image]]:
    """Smooth random colour fields: more distinct images for the false-match rate only. Their DCT energy
    sits in a few coefficients, so their hashes are fragile under edits and they are kept out of recall."""
    rng = np.random.default_rng(21)
    fields = []
    for i in range(count):
        coarse = rng.integers(0, 256, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3), dtype=np.uint8)
        fields.append((f"generated:{i}", Image.fromarray(coarse).resize((480, 360), Image.Resampling.BICUBIC)))
    return fields


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


def _border(fraction: float, colour: tuple[int, int, int] = (0, 0, 0)) -> Callable[[Image.Image], Image.Image]:
    return lambda im: ImageOps.expand(im, border=int(max(im.size) * fraction), fill=colour)


def _letterbox(image: Image.Image) -> Image.Image:
    """Black bars above and below to make 16:9 wider content fit a square frame."""
    side = max(image.size)
    canvas = Image.new("RGB", (side, side))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
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
    "crop 5%": _crop(5),
    "crop 10%": _crop(10),
    "crop 20%": _crop(20),
    "border 5%": _border(0.05),
    "letterbox": _letterbox,
    "rotate 90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rotate 180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rotate 270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "mirror": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "rotate 2deg": lambda im: im.rotate(2, resample=Image.Resampling.BICUBIC),
    "rotate 5deg": lambda im: im.rotate(5, resample=Image.Resampling.BICUBIC),
    "rotate 10deg": lambda im: im.rotate(10, resample=Image.Resampling.BICUBIC),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "brightness +30%": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "contrast +50%": lambda im: ImageEnhance.Contrast(im).enhance(1.5),
    "gamma 0.7": _gamma(0.7),
    "text overlay": _text,
    "logo overlay": _logo,
    "screenshot padding": _screenshot,
}


@dataclass
class RobustnessResult:
    images: list[str]
    transforms: list[str]
    # method -> transform -> distances (one per image); methods: pdq, pdq_dihedral, phash
    distances: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # method -> distances between distinct originals (one per pair)
    distinct: dict[str, list[int]] = field(default_factory=dict)

    def recall(self, method: str, transform: str, threshold: int) -> float:
        values = self.distances[method][transform]
        return sum(d <= threshold for d in values) / len(values)

    def false_match_rate(self, method: str, threshold: int) -> float:
        values = self.distinct[method]
        return sum(d <= threshold for d in values) / max(1, len(values))

    def to_json(self) -> dict[str, Any]:
        methods = list(self.distances)
        return {
            "images": self.images,
            "transforms": self.transforms,
            "thresholds": THRESHOLDS,
            "recall": {m: {t: [self.recall(m, t, k) for k in THRESHOLDS] for t in self.transforms} for m in methods},
            "false_match_rate": {m: [self.false_match_rate(m, k) for k in THRESHOLDS] for m in methods},
            "distances": self.distances,
            "distinct_distances": self.distinct,
            "distinct_pairs": len(next(iter(self.distinct.values()), [])),
        }


def evaluate(
    images: list[tuple[str, Image.Image]],
    transforms: dict[str, Callable[[Image.Image], Image.Image]],
    distinct_only: list[tuple[str, Image.Image]] | None = None,
) -> RobustnessResult:
    """Recall over `images` x `transforms`; false matches over all pairs of `images` + `distinct_only`."""
    import imagehash

    hasher = PdqHasher(backend="numpy")

    def pdq(image: Image.Image) -> tuple[PdqHash, tuple[PdqHash, ...]]:
        result = hasher.hash_image(np.asarray(image.convert("RGB")), dihedral=DihedralMode.DCT)
        return result.hash, result.dihedral

    originals = [(pdq(image), imagehash.phash(image)) for _, image in images]
    everyone = originals + [(pdq(image), imagehash.phash(image)) for _, image in distinct_only or []]
    result = RobustnessResult([name for name, _ in images], list(transforms))
    result.distances = {"pdq": {}, "pdq_dihedral": {}, "phash": {}}
    for transform_name, transform in transforms.items():
        plain, dihedral, phash = [], [], []
        for (_, image), ((original, _), original_phash) in zip(images, originals, strict=True):
            edited = transform(image)
            edited_hash, variants = pdq(edited)
            plain.append(edited_hash - original)
            dihedral.append(min(variant - original for variant in variants))
            phash.append(int(imagehash.phash(edited) - original_phash))
        result.distances["pdq"][transform_name] = plain
        result.distances["pdq_dihedral"][transform_name] = dihedral
        result.distances["phash"][transform_name] = phash
    pairs = list(itertools.combinations(range(len(everyone)), 2))
    result.distinct = {
        "pdq": [everyone[a][0][0] - everyone[b][0][0] for a, b in pairs],
        "pdq_dihedral": [min(v - everyone[a][0][0] for v in everyone[b][0][1]) for a, b in pairs],
        "phash": [int(everyone[a][1] - everyone[b][1]) for a, b in pairs],
    }
    return result


def markdown(result: RobustnessResult) -> str:
    lines = [
        f"Recall over {len(result.images)} benign photos that ship in Python packages x "
        f"{len(result.transforms)} transforms; false matches over {len(result.distinct['pdq'])} pairs of distinct "
        "images (the photos and generated colour fields).",
        "",
        f"| transform | PDQ recall at {PDQ_THRESHOLD} | PDQ + dihedral at {PDQ_THRESHOLD} | "
        f"pHash recall at {PHASH_THRESHOLD} | PDQ median distance |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in result.transforms:
        lines.append(
            f"| {name} | {result.recall('pdq', name, PDQ_THRESHOLD):.0%} | "
            f"{result.recall('pdq_dihedral', name, PDQ_THRESHOLD):.0%} | "
            f"{result.recall('phash', name, PHASH_THRESHOLD):.0%} | "
            f"{int(np.median(result.distances['pdq'][name]))} |"
        )
    lines += [
        "",
        "| false matches between distinct originals | rate |",
        "|---|---:|",
        f"| PDQ at {PDQ_THRESHOLD} | {result.false_match_rate('pdq', PDQ_THRESHOLD):.2%} |",
        f"| PDQ + dihedral at {PDQ_THRESHOLD} | {result.false_match_rate('pdq_dihedral', PDQ_THRESHOLD):.2%} |",
        f"| pHash at {PHASH_THRESHOLD} | {result.false_match_rate('phash', PHASH_THRESHOLD):.2%} |",
    ]
    return "\n".join(lines) + "\n"
