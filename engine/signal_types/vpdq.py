"""vPDQ: a video as the bag of its sampled frames' PDQ hashes (hashing/vpdq.py). Two videos match when enough
of the query's frames have a close frame in the listed video, and enough of the listed video's frames have
one in the query.

The reference rule has two published forms, and both are here, selectable (`FrameRule`):
* `cpp`, Meta's C++ `matchTwoHashBrute`: frames of quality under 50 dropped, a frame pair matches when its
  distance is strictly under the threshold (`< 31`), duplicate frames kept;
* `threatexchange`, python-threatexchange's `match_VPDQ_hash_brute` (what HMA runs): exact duplicate frames
  removed, then frames under quality 50 dropped, and a pair matches at distance `<= 31`.
Each side's percentage is its matched frames over its frames left after filtering. A match needs the query's
percentage >= `query_percent` (80 by default) and the listed video's >= `compared_percent` (0).

The index holds every frame of every listed video in one Hamming index (engine.index) and aggregates the
frame hits per video; `VpdqSpec.compare` is the brute-force reference it is tested against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from engine.index.factory import IndexBackend, build_index
from engine.query import QueryHashes
from engine.signal_types.names import SignalType
from engine.signal_types.spec import Comparison, LiveSignals, SearchRequest, SignalHit, SignalIndex, SignalSpec
from engine.signal_types.values import ParsedValue, SignalValueError
from hashing.vpdq import FRAME_DTYPE, VpdqFormatError, VpdqHash
from kernels.hamming import hamming_distances
from kernels.runtime import KernelRuntime

EVIDENCE_PAIRS = 5  # closest frame pairs a verdict shows a reviewer


class FrameRule(StrEnum):
    CPP = "cpp"
    THREATEXCHANGE = "threatexchange"


@dataclass(frozen=True)
class VpdqMatchOptions:
    rule: FrameRule = FrameRule.THREATEXCHANGE
    quality: int = 50  # frames under this quality take no part, on either side
    query_percent: float = 80.0
    compared_percent: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.quality <= 100:
            raise ValueError(f"the vPDQ frame quality filter is within 0..100, not {self.quality}")
        for name, value in (("query", self.query_percent), ("compared", self.compared_percent)):
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"the vPDQ {name} match percentage is within 0..100, not {value}")

    def radius(self, threshold: int) -> int:
        """The largest matching frame distance: `< threshold` under the C++ rule, `<= threshold` otherwise."""
        return threshold - 1 if self.rule is FrameRule.CPP else threshold


DEFAULT_OPTIONS = VpdqMatchOptions()


@dataclass(frozen=True, eq=False)
class Frames:
    """A video's frame hashes as arrays (the canonical bytes, viewed)."""

    codes: np.ndarray  # (n, 32) uint8
    quality: np.ndarray  # (n,) uint8
    numbers: np.ndarray  # (n,) int32
    millis: np.ndarray  # (n,) int64

    @classmethod
    def of(cls, payload: bytes) -> Frames:
        rows = np.frombuffer(payload, dtype=FRAME_DTYPE)
        return cls(
            np.ascontiguousarray(rows["pdq"]), rows["quality"].copy(), rows["frame"].copy(), rows["millis"].copy()
        )

    def kept(self, options: VpdqMatchOptions) -> np.ndarray:
        """Which frames take part under the rule: quality, and (python-threatexchange) first copies only."""
        keep = self.quality >= options.quality
        if options.rule is FrameRule.THREATEXCHANGE and len(self.codes):
            _, first = np.unique(self.codes, axis=0, return_index=True)
            unique = np.zeros(len(self.codes), dtype=bool)
            unique[first] = True
            keep &= unique
        return keep


def video_comparison(query: Frames, entry: Frames, threshold: int, options: VpdqMatchOptions) -> Comparison:
    """The reference: every kept query frame against every kept listed frame."""
    q_rows = np.flatnonzero(query.kept(options))
    e_rows = np.flatnonzero(entry.kept(options))
    if not len(q_rows) or not len(e_rows):
        return Comparison(False, 256, _evidence(options, _Tally(0.0, 0.0, len(q_rows), len(e_rows), []), query, entry))
    entry_codes = np.ascontiguousarray(entry.codes[e_rows])
    distances = np.stack([hamming_distances(code, entry_codes) for code in query.codes[q_rows]])
    close = distances <= options.radius(threshold)
    query_percent = float(close.any(axis=1).sum()) * 100.0 / len(q_rows)
    entry_percent = float(close.any(axis=0).sum()) * 100.0 / len(e_rows)
    qi, ei = np.nonzero(close)
    pairs = [
        (int(distances[i, j]), int(q_rows[i]), int(e_rows[j])) for i, j in zip(qi.tolist(), ei.tolist(), strict=True)
    ]
    return _decide(options, _Tally(query_percent, entry_percent, len(q_rows), len(e_rows), pairs), query, entry)


@dataclass(frozen=True)
class _Tally:
    """What one query video and one listed video have in common under a rule."""

    query_percent: float
    entry_percent: float
    query_frames: int  # kept under the rule
    entry_frames: int
    pairs: list[tuple[int, int, int]]  # (distance, query frame row, listed frame row); at least the closest


def _decide(options: VpdqMatchOptions, tally: _Tally, query: Frames, entry: Frames) -> Comparison:
    matched = (
        bool(tally.pairs)
        and tally.query_percent >= options.query_percent
        and tally.entry_percent >= options.compared_percent
    )
    distance = min(p[0] for p in tally.pairs) if tally.pairs else 256
    return Comparison(matched, distance, _evidence(options, tally, query, entry))


def _evidence(options: VpdqMatchOptions, tally: _Tally, query: Frames, entry: Frames) -> Mapping[str, Any]:
    closest = sorted(tally.pairs)[:EVIDENCE_PAIRS]
    return {
        "rule": options.rule.value,
        "query_match_percent": round(tally.query_percent, 3),
        "compared_match_percent": round(tally.entry_percent, 3),
        "query_frames": tally.query_frames,
        "compared_frames": tally.entry_frames,
        "frame_pairs": [
            {
                "query_frame": int(query.numbers[q]),
                "query_time": int(query.millis[q]) / 1000,
                "entry_frame": int(entry.numbers[e]),
                "entry_time": int(entry.millis[e]) / 1000,
                "distance": distance,
            }
            for distance, q, e in closest
        ],
    }


class VpdqIndex(SignalIndex):
    """Every frame of every listed video in one Hamming index; hits are aggregated per video."""

    def __init__(
        self, live: LiveSignals, threshold: int, backend: IndexBackend | str, gpu: KernelRuntime | None
    ) -> None:
        self.entry_ids = live.entry_ids
        self.videos = [Frames.of(payload) for payload in live.payloads]
        counts = np.array([len(v.codes) for v in self.videos], dtype=np.int64)
        self.owner = np.repeat(np.arange(len(self.videos)), counts)
        self.first_row = np.concatenate([[0], np.cumsum(counts)])
        codes = np.concatenate([v.codes for v in self.videos]) if self.videos else np.zeros((0, 32), np.uint8)
        self.index = build_index(codes, threshold, backend, gpu)
        # Which frames take part, and how many per video: by what filters frames, not by the percentages.
        self._kept: dict[tuple[FrameRule, int], tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.videos)

    def kept_rows(self, options: VpdqMatchOptions) -> tuple[np.ndarray, np.ndarray]:
        """(whether each frame row takes part, how many rows of each video do), computed once per filter."""
        key = (options.rule, options.quality)
        found = self._kept.get(key)
        if found is None:
            parts = [v.kept(options) for v in self.videos]
            kept = np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
            per_video = np.add.reduceat(kept, self.first_row[:-1]) if len(kept) else np.zeros(0, np.int64)
            found = self._kept[key] = (kept, per_video)
        return found

    def search(self, request: SearchRequest) -> list[SignalHit]:
        options = _options(request)
        radius = options.radius(request.threshold)
        hits: list[SignalHit] = []
        if radius < 0 or not self.videos:
            return hits
        kept, kept_per_video = self.kept_rows(options)
        for q, query in enumerate(request.queries):
            value = query.others.get(SignalType.VPDQ)
            if value is None or value.payload is None:
                continue
            hits.extend(self._search_one(q, Frames.of(value.payload), radius, options, kept, kept_per_video))
        return hits

    def _search_one(
        self, q: int, query: Frames, radius: int, options: VpdqMatchOptions, kept: np.ndarray, per_video: np.ndarray
    ) -> list[SignalHit]:
        q_rows = np.flatnonzero(query.kept(options))
        if not len(q_rows):
            return []
        found = self.index.search(np.ascontiguousarray(query.codes[q_rows]), radius)
        # Every (query frame, listed frame) pair as arrays: a static video hashed every frame can give millions
        # of pairs, which per-pair Python objects could not hold.
        query_of_pair = np.repeat(np.arange(found.n_queries), np.diff(found.offsets))
        rows = found.rows.astype(np.int64)
        useful = kept[rows]
        query_of_pair, rows, distances = query_of_pair[useful], rows[useful], found.distances[useful].astype(np.int64)
        videos = self.owner[rows]
        hits: list[SignalHit] = []
        for video in np.unique(videos).tolist():
            mine = videos == video
            pairs_q, pairs_row, pairs_d = query_of_pair[mine], rows[mine], distances[mine]
            query_percent = len(np.unique(pairs_q)) * 100.0 / len(q_rows)
            entry_percent = len(np.unique(pairs_row)) * 100.0 / int(per_video[video])
            closest = np.lexsort((pairs_row, pairs_q, pairs_d))[:EVIDENCE_PAIRS]
            first = int(self.first_row[video])
            pairs = [(int(pairs_d[i]), int(q_rows[pairs_q[i]]), int(pairs_row[i]) - first) for i in closest.tolist()]
            tally = _Tally(query_percent, entry_percent, len(q_rows), int(per_video[video]), pairs)
            verdict = _decide(options, tally, query, self.videos[video])
            if verdict.matched:
                hits.append(SignalHit(q, int(self.entry_ids[video]), verdict.distance, None, verdict.evidence))
        return hits


def _options(request: SearchRequest) -> VpdqMatchOptions:
    options = request.options.get(SignalType.VPDQ, DEFAULT_OPTIONS)
    if not isinstance(options, VpdqMatchOptions):
        raise TypeError("vPDQ match options must be a VpdqMatchOptions")
    return options


@dataclass(frozen=True)
class VpdqSpec(SignalSpec):
    signal: SignalType = SignalType.VPDQ
    aliases: tuple[str, ...] = ("vpdq", "video_vpdq", "videovpdq")
    value_width: int = 32  # SHA-256 of the canonical frame bytes: the same frame hashes are the same entry
    perceptual: bool = True
    default_threshold: int = 31
    has_payload: bool = True

    def parse(self, text: str) -> ParsedValue:
        try:
            video = VpdqHash.parse(text)
        except VpdqFormatError as exc:
            raise SignalValueError(exc.reason, exc.detail) from exc
        return self.value_of(video)

    def value_of(self, video: VpdqHash) -> ParsedValue:
        return ParsedValue(video.identity(), video.to_bytes())

    def format(self, value: ParsedValue) -> str:
        return VpdqHash.from_bytes(_payload(value)).to_json()

    def compare(
        self, query: ParsedValue, entry: ParsedValue, threshold: int, options: VpdqMatchOptions = DEFAULT_OPTIONS
    ) -> Comparison:
        return video_comparison(Frames.of(_payload(query)), Frames.of(_payload(entry)), threshold, options)

    def query_value(self, query: QueryHashes) -> ParsedValue | None:
        return query.others.get(SignalType.VPDQ)

    def build_index(
        self,
        live: LiveSignals,
        threshold: int,
        backend: IndexBackend | str = IndexBackend.AUTO,
        gpu: KernelRuntime | None = None,
    ) -> SignalIndex:
        # Built for the largest radius either rule searches; backends answer any radius up to it exactly.
        return VpdqIndex(live, threshold, backend, gpu)


def _payload(value: ParsedValue) -> bytes:
    if value.payload is None:
        raise ValueError("a vPDQ value carries its frames")
    return value.payload


VPDQ = VpdqSpec()
