"""Benign distractors for the robustness study's false-match count: images that are not copies of one another
and that a careless variant could still bring together. The hard cases for false matches are here on purpose:
tiles of the same photos (shared colours and texture), documents and screenshots (white pages, text, UI bars
that the content box trims), and flat and low-texture images (whose hashes are close to noise).

Everything is generated from fixed seeds or cut from the package photos, so every run sees the same images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Named = tuple[str, Image.Image]
WORDS = [
    "report",
    "summary",
    "figure",
    "table",
    "results",
    "method",
    "sample",
    "value",
    "total",
    "average",
    "index",
    "review",
    "quarter",
    "budget",
    "plan",
    "meeting",
    "notes",
    "project",
    "update",
    "section",
    "chapter",
    "appendix",
    "reference",
    "data",
    "analysis",
    "chart",
    "model",
    "design",
    "draft",
]


def photo_tiles(photos: Sequence[Named]) -> list[Named]:
    """Each photo's four quadrants and its nine tiles of a 3 x 3 grid: distinct content in the same style."""
    tiles: list[Named] = []
    for name, photo in photos:
        width, height = photo.size
        for grid in (2, 3):
            for row in range(grid):
                for col in range(grid):
                    box = (
                        col * width // grid,
                        row * height // grid,
                        (col + 1) * width // grid,
                        (row + 1) * height // grid,
                    )
                    tiles.append((f"{name}:tile{grid}x{grid}:{row}{col}", photo.crop(box)))
    return tiles


def generated_scenes(count: int, seed: int = 5) -> list[Named]:
    """Photo-like compositions: a lit gradient sky and ground, shapes in random colours, a little grain."""
    rng = np.random.default_rng(seed)
    scenes: list[Named] = []
    for i in range(count):
        scenes.append((f"scene:{i}", _scene(rng, 480, 360)))
    return scenes


def _scene(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = int(rng.integers(-50, width)), int(rng.integers(-50, height))
        x1, y1 = x0 + int(rng.integers(20, width // 2)), y0 + int(rng.integers(20, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(3)]
            draw.polygon(points, fill=colour)
    grain = rng.normal(0.0, 6.0, (height, width, 1))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + grain, 0, 255).astype(np.uint8))


def documents(count: int, seed: int = 7) -> list[Named]:
    """Pages of text: a heading, paragraphs of words in the default font, sometimes a ruled table."""
    rng = np.random.default_rng(seed)
    pages: list[Named] = []
    for i in range(count):
        page = Image.new("RGB", (600, 800), (255, 255, 255))
        draw = ImageDraw.Draw(page)
        draw.text((40, 30), " ".join(rng.choice(WORDS, 4)).upper(), fill=(0, 0, 0))
        y = 70
        while y < 740:
            if rng.random() < 0.12:  # a table
                rows, cols = int(rng.integers(3, 7)), int(rng.integers(2, 5))
                for r in range(rows + 1):
                    draw.line((40, y + 18 * r, 560, y + 18 * r), fill=(80, 80, 80))
                for c in range(cols + 1):
                    draw.line((40 + 520 * c // cols, y, 40 + 520 * c // cols, y + 18 * rows), fill=(80, 80, 80))
                y += 18 * rows + 20
                continue
            indent = 40 + int(rng.integers(0, 3)) * 20
            draw.text((indent, y), " ".join(rng.choice(WORDS, int(rng.integers(5, 12)))), fill=(20, 20, 20))
            y += 16 if rng.random() < 0.8 else 30
        pages.append((f"document:{i}", page))
    return pages


def screenshots(count: int, seed: int = 11) -> list[Named]:
    """An app window: a title bar, a sidebar of icons and labels, a toolbar, a picture panel (a new generated
    scene each) and lines of text below it."""
    rng = np.random.default_rng(seed)
    shots: list[Named] = []
    for i in range(count):
        width, height = 800, 600
        dark = bool(rng.random() < 0.5)
        background = (32, 33, 36) if dark else (246, 246, 246)
        ink = (230, 230, 230) if dark else (30, 30, 30)
        shot = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(shot)
        draw.rectangle((0, 0, width, 28), fill=(60, 64, 72) if dark else (220, 222, 226))
        for k in range(3):
            draw.ellipse((10 + 18 * k, 9, 20 + 18 * k, 19), fill=((236, 95, 90), (245, 190, 80), (98, 196, 85))[k])
        draw.text((120, 8), " ".join(rng.choice(WORDS, 3)), fill=ink)
        draw.rectangle((0, 28, 170, height), fill=(45, 47, 52) if dark else (232, 234, 238))
        for k in range(int(rng.integers(6, 14))):
            colour = tuple(int(c) for c in rng.integers(60, 220, 3))
            draw.rectangle((14, 44 + 34 * k, 34, 64 + 34 * k), fill=colour)
            draw.text((44, 48 + 34 * k), " ".join(rng.choice(WORDS, 2)), fill=ink)
        panel_w, panel_h = int(rng.integers(300, 560)), int(rng.integers(200, 340))
        shot.paste(_scene(rng, panel_w, panel_h), (190, 60))
        y = 80 + panel_h
        while y < height - 20:
            draw.text((190, y), " ".join(rng.choice(WORDS, int(rng.integers(6, 14)))), fill=ink)
            y += 18
        shots.append((f"screenshot:{i}", shot))
    return shots


def flat_images(count: int, seed: int = 13) -> list[Named]:
    """Flat and low-texture images: solid colours, gentle gradients, faint noise, two-tone splits."""
    rng = np.random.default_rng(seed)
    flats: list[Named] = []
    for i in range(count):
        kind = i % 4
        colour = rng.integers(0, 256, 3)
        if kind == 0:
            pixels = np.ones((300, 400, 1)) * colour
        elif kind == 1:
            other = rng.integers(0, 256, 3)
            ramp = (
                np.linspace(0.0, 1.0, 400)[None, :, None]
                if rng.random() < 0.5
                else np.linspace(0, 1, 300)[:, None, None]
            )
            pixels = (colour * (1 - ramp) + other * ramp) * np.ones((300, 400, 1))
        elif kind == 2:
            pixels = np.ones((300, 400, 1)) * colour + rng.normal(0.0, 3.0, (300, 400, 3))
        else:
            pixels = np.ones((300, 400, 1)) * colour
            split = int(rng.integers(60, 340))
            pixels[:, split:] = rng.integers(0, 256, 3)
        flats.append((f"flat:{i}", Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))))
    return flats


def generated_fields(count: int) -> list[Named]:
    """Smooth random colour fields. Their DCT energy sits in a few coefficients: their hashes are fragile."""
    rng = np.random.default_rng(21)
    fields = []
    for i in range(count):
        coarse = rng.integers(0, 256, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3), dtype=np.uint8)
        fields.append((f"generated:{i}", Image.fromarray(coarse).resize((480, 360), Image.Resampling.BICUBIC)))
    return fields


def distractors(photos: Sequence[Named], quick: bool = False) -> list[Named]:
    """The photos' tiles (13 per photo) and 300 generated images (75 when quick)."""
    scale = 4 if quick else 1
    return (
        photo_tiles(photos)
        + generated_fields(40 // scale)
        + generated_scenes(120 // scale)
        + documents(40 // scale)
        + screenshots(60 // scale)
        + flat_images(40 // scale)
    )
