"""Media (bytes or a file) -> the query it is matched with: images by MediaHasher (PDQ and digests), videos by
VideoHasher (vPDQ and digests), told apart by their signature. Shared by `match`, the service and `scan`."""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.query import QueryHashes
from engine.signal_types.names import SignalType
from engine.signal_types.values import ParsedValue
from hashing.decode import DecodeLimits, open_media_file, read_media_file
from hashing.errors import MediaError, ReasonCode
from hashing.exact import ExactDigests
from hashing.media_hasher import MediaHasher
from hashing.video import SNIFF_BYTES, VideoHasher, VideoHashes, is_video


@dataclass(frozen=True)
class MediaQuery:
    """An input's query (None when nothing could be read), and the error that left part of it missing."""

    query: QueryHashes | None
    error: MediaError | None = None


def video_query(hashes: VideoHashes) -> QueryHashes:
    vpdq = hashes.vpdq
    return QueryHashes.of_digests(
        hashes.digests,
        reasons=(ReasonCode.VIDEO_TRUNCATED,) if hashes.truncated else (),
        others={SignalType.VPDQ: ParsedValue(vpdq.identity(), vpdq.to_bytes())},
    )


class MediaQueries:
    """Safe to share between threads, as both hashers are."""

    def __init__(self, images: MediaHasher, videos: VideoHasher | None = None) -> None:
        self.images = images
        self.videos = videos or VideoHasher()

    def of_bytes(self, data: bytes, deadline_s: float | None = None) -> MediaQuery:
        """Raises MediaError only for empty input. A video is not hashed past `deadline_s` from now (nor past
        its hasher's own deadline)."""
        if not is_video(data[:SNIFF_BYTES]):
            outcome = self.images.outcome_of_bytes(data)
            return MediaQuery(QueryHashes.of_outcome(outcome), outcome.error)
        try:
            hashes = self.videos.hash_bytes(data, deadline_s)
        except MediaError as exc:
            if exc.reason is ReasonCode.EMPTY_INPUT:
                raise
            return MediaQuery(_digests_only(ExactDigests.of(data), exc), exc)
        return MediaQuery(video_query(hashes))

    def of_file(self, path: str | os.PathLike[str]) -> MediaQuery:
        try:
            with open_media_file(path) as handle:
                head = handle.read(SNIFF_BYTES)
                if not is_video(head):
                    outcome = self.images.outcome_of_file(path)
                    return MediaQuery(QueryHashes.of_outcome(outcome), outcome.error)
                limit = self.videos.options.limits.max_bytes
                if os.fstat(handle.fileno()).st_size > limit:
                    # Not decoded, but still matched on its digests (streamed: memory stays flat).
                    digests = ExactDigests.of_stream(handle, first=head)
                    too_large = MediaError(ReasonCode.TOO_LARGE, f"{digests.size} bytes is over the limit of {limit}")
                    return MediaQuery(_digests_only(digests, too_large), too_large)
            return self.of_bytes(read_media_file(path, DecodeLimits(max_bytes=limit)))
        except MediaError as exc:
            return MediaQuery(None, exc)


def _digests_only(digests: ExactDigests, error: MediaError) -> QueryHashes:
    """A video that cannot be hashed is still matched on its digests (a listed video MD5 still matches)."""
    return QueryHashes.of_digests(digests, reasons=(error.reason,))
