"""The video options `hash`, `match` and `serve` share: sampling, and the vPDQ match rule."""

from __future__ import annotations

import argparse
from typing import Any

from engine.signal_types.vpdq import DEFAULT_OPTIONS, FrameRule, VpdqMatchOptions
from hashing.video import DEFAULT_SECONDS_PER_HASH


def add_sampling_argument(parser: Any) -> None:
    parser.add_argument(
        "--seconds-per-hash",
        type=float,
        default=DEFAULT_SECONDS_PER_HASH,
        metavar="S",
        help="videos: hash one frame every S seconds, as the vPDQ reference samples (default 1; 0: every frame)",
    )


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("videos (vPDQ)")
    add_sampling_argument(group)
    group.add_argument(
        "--video-rule",
        choices=[r.value for r in FrameRule],
        default=None,
        help="frame pairs match at distance <= the list threshold, exact duplicate frames removed "
        "(threatexchange, as python-threatexchange and HMA; default), or at distance < the threshold with "
        "duplicates kept (cpp, as Meta's C++ matcher)",
    )
    group.add_argument(
        "--video-query-percent",
        type=float,
        default=None,
        metavar="P",
        help="share of the query's frames that must match (default 80)",
    )
    group.add_argument(
        "--video-compared-percent",
        type=float,
        default=None,
        metavar="P",
        help="share of the listed video's frames that must match (default 0)",
    )
    group.add_argument(
        "--video-quality",
        type=int,
        default=DEFAULT_OPTIONS.quality,
        metavar="Q",
        help="frames under this quality take no part in video matching (default 50)",
    )


def video_match_options(args: argparse.Namespace) -> VpdqMatchOptions:
    """The options given over the defaults; ValueError names one out of range. (Unset options stay None in
    `args`, so that a server is sent only what was asked for, and keeps its own defaults otherwise.)"""
    return VpdqMatchOptions(
        rule=FrameRule(args.video_rule) if args.video_rule is not None else DEFAULT_OPTIONS.rule,
        quality=args.video_quality,
        query_percent=DEFAULT_OPTIONS.query_percent if args.video_query_percent is None else args.video_query_percent,
        compared_percent=DEFAULT_OPTIONS.compared_percent
        if args.video_compared_percent is None
        else args.video_compared_percent,
    )
