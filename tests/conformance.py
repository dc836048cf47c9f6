"""Readers for the reference vectors in tests/data/threatexchange (Meta's, with its licence; see its README)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "data" / "threatexchange"
EXPECTED_CORE = ROOT / "expected_repo_images_cpp_core.csv"
EXPECTED_LITERALS = ROOT / "repo_expected_hashes.csv"
QUALITY_GATE = 50  # below it, near-tied DCT values make bits unstable: compare quality only (DESIGN.md)

DIHEDRAL_COLUMNS = (
    "dih_orig",
    "dih_rot90",
    "dih_rot180",
    "dih_rot270",
    "dih_flipx",
    "dih_flipy",
    "dih_flipplus1",
    "dih_flipminus1",
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


@dataclass(frozen=True)
class CoreExpectation:
    path: Path
    mode: str
    width: int
    height: int
    fullres_pdq: str
    fullres_quality: int
    cli512_pdq: str
    cli512_quality: int
    dihedral: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))


def core_expectations() -> list[CoreExpectation]:
    return [
        CoreExpectation(
            path=ROOT / row["path"],
            mode=row["mode"],
            width=int(row["width"]),
            height=int(row["height"]),
            fullres_pdq=row["fullres_pdq"],
            fullres_quality=int(row["fullres_quality"]),
            cli512_pdq=row["cli512_pdq"],
            cli512_quality=int(row["cli512_quality"]),
            dihedral=tuple(row[c] for c in DIHEDRAL_COLUMNS),
        )
        for row in _rows(EXPECTED_CORE)
    ]


@dataclass(frozen=True)
class LiteralExpectation:
    source: str
    image: str
    expected_pdq: str
    expected_quality: int | None
    rule: str
    note: str


def literal_expectations() -> list[LiteralExpectation]:
    return [
        LiteralExpectation(
            source=row["source_in_repo"],
            image=row["image"],
            expected_pdq=row["expected_pdq"],
            expected_quality=int(row["expected_quality"]) if row["expected_quality"] else None,
            rule=row["comparison_rule"],
            note=row["note"],
        )
        for row in _rows(EXPECTED_LITERALS)
    ]


# Upstream tests name misc-images/b.jpg, which the repository lacks; the row's note says it is the bridge.
IMAGE_ALIASES = {"pdq/data/misc-images/b.jpg": "pdq/data/bridge-mods/aaa-orig.jpg"}


def literal_image_path(image: str) -> Path:
    """The file a literal row's `image` names (rows whose image is inline in upstream source start with '(')."""
    return ROOT / IMAGE_ALIASES.get(image, image)


def all_jpegs() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
