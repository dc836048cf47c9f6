"""The query-variant options `match`, `scan` and `match --server` share: rotations and flips, the content box
and the crops (hashing.query_variants), each on by default with a switch to turn it off."""

from __future__ import annotations

import argparse

from cli.common import bits_argument
from engine.matcher import MatchScope
from engine.signal_types.pdq import DIHEDRAL_THRESHOLD
from hashing.pdq_hasher import DihedralMode
from hashing.query_variants import VariantFamily, families_off


def add_variant_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--no-dihedral", action="store_true", help="do not match rotated and flipped variants")
    parser.add_argument(
        "--dihedral-mode",
        choices=[DihedralMode.PIXELS.value, DihedralMode.DCT.value],
        default=DihedralMode.PIXELS.value,
        help="pixels: hash the 8 rotated and flipped images exactly (default); dct: derive them from the "
        "original's DCT (cheaper, and further from the exact hashes)",
    )
    parser.add_argument(
        "--dihedral-threshold",
        type=bits_argument,
        default=None,
        metavar="BITS",
        help=f"how close a rotated or flipped variant must come to match (default {DIHEDRAL_THRESHOLD}: stricter "
        "than a list's threshold, because each variant searched is one more chance for a chance match)",
    )
    parser.add_argument(
        "--no-content-box",
        action="store_true",
        help="do not match the picture inside borders, letterbox bars and screenshot padding",
    )
    parser.add_argument(
        "--no-crops", action="store_true", help="do not match the query as a centred crop of a listed picture"
    )


def dihedral_mode(args: argparse.Namespace) -> DihedralMode:
    return DihedralMode.NONE if args.no_dihedral else DihedralMode(args.dihedral_mode)


def variant_families(args: argparse.Namespace) -> frozenset[VariantFamily]:
    return families_off(no_content_box=args.no_content_box, no_crops=args.no_crops)


def variant_scope(args: argparse.Namespace, nearest: int = 0) -> MatchScope:
    """Every list the matcher holds, with the variants the options ask for."""
    return MatchScope(
        dihedral=not args.no_dihedral,
        variants=variant_families(args),
        dihedral_threshold=args.dihedral_threshold,
        nearest=nearest,
    )
