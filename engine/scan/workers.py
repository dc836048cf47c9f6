"""What a scan worker process does with one input: read it (bounded), digest it, claim its SHA-256 so that an
exact duplicate is hashed once, then decode and hash it. Workers are processes, not threads: decoding and
hashing hold the GIL for much of their time, and the scan must keep every core busy.

A claim is a `setdefault` on a dictionary shared by every worker (a multiprocessing manager's; a plain dict
when the scan runs in one process). It runs inside the manager process under its GIL, so exactly one input
claims each SHA-256: that one is hashed, the others are answered as its duplicates.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from engine.scan.records import ContentType, ItemProblem, ScanItem
from engine.scan.sniff import HEAD_BYTES, content_type
from hashing.decode import open_media_file, read_at_most
from hashing.errors import MediaError, ReasonCode
from hashing.exact import ExactDigests
from hashing.media_hasher import HashOptions, MediaHasher
from hashing.query_variants import QueryVariant
from hashing.video import VideoHasher, VideoLimits, VideoOptions


@dataclass(frozen=True)
class WorkerResult:
    """A worker's answer, in plain values (it crosses a process boundary)."""

    label: str
    size: int | None
    content_type: ContentType | None
    digests: ExactDigests | None = None
    pdq: str | None = None
    quality: int | None = None
    dihedral: tuple[str, ...] = ()
    variants: tuple[QueryVariant, ...] = ()  # hashing.query_variants (frozen records of plain values)
    vpdq: bytes | None = None  # a video's frame hashes (hashing.vpdq's canonical bytes)
    no_pdq: ItemProblem | None = None  # why there is no PDQ or vPDQ (the digests still match)
    problem: ItemProblem | None = None  # nothing could be read: no digests either
    duplicate_of: str | None = None  # the input with this SHA-256 that was hashed instead
    hashed: bool = False  # decoded and hashed here (not a duplicate, not skipped)
    archive_on_disk: bool = False  # a plain file that is an archive: the walking process expands it


class Claims(Protocol):
    """Where inputs claim their SHA-256: a dict, a manager's shared dict, or a Ray actor's proxy."""

    def setdefault(self, sha256: str, label: str, /) -> str: ...


@dataclass
class WorkerState:
    hasher: MediaHasher
    claims: Claims
    max_bytes: int
    videos: VideoHasher | None = None  # None: videos are matched on their digests only


_STATE: WorkerState | None = None


def start_worker(options: HashOptions, claims: MutableMapping[str, str]) -> None:
    """Process initializer. Ctrl-C reaches the whole process group: the parent handles it and stops the
    workers itself, so they ignore it instead of dying mid-result."""
    global _STATE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _STATE = state_for(options, claims)


def state_for(options: HashOptions, claims: Claims) -> WorkerState:
    """A worker's state (also for a scan that runs in its own process: tests, --workers 0)."""
    images = MediaHasher(_without_digests(options))
    max_bytes = options.decode.limits.max_bytes
    videos = VideoHasher(VideoOptions(exact_digests=False, limits=VideoLimits(max_bytes=max_bytes)), images.pdq)
    return WorkerState(images, claims, max_bytes, videos)


def hash_task_in_worker(items: list[ScanItem]) -> list[WorkerResult]:
    """Several inputs per task: each task costs the walking process a round of queues, threads and pickling
    (measured: about half a millisecond), which it would otherwise take from the workers once per file."""
    assert _STATE is not None, "start_worker runs first in every worker process"
    return [hash_item_or_internal(item, _STATE) for item in items]


class ClaimsUnavailableError(Exception):
    """The shared claims cannot answer (their process or actor is gone): the scan must stop, not record the
    input, so that a rerun does it again."""


class ManagerClaims(MutableMapping[str, str]):
    """A multiprocessing manager's shared dict, whose failures (the manager process gone) end the scan."""

    def __init__(self, shared: MutableMapping[str, str]) -> None:
        self._shared = shared

    def setdefault(self, sha256: str, label: str, /) -> str:
        try:
            return self._shared.setdefault(sha256, label)
        except (EOFError, OSError) as failure:  # BrokenPipeError, ConnectionResetError: the manager is gone
            raise ClaimsUnavailableError from failure

    def __getitem__(self, key: str) -> str:
        return self._shared[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._shared[key] = value

    def __delitem__(self, key: str) -> None:
        del self._shared[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._shared.keys())

    def __len__(self) -> int:
        return len(self._shared)

    # One round trip each, where the mixins would make one per key.
    def items(self) -> Any:
        return self._shared.items()

    def update(self, other: Any = (), /, **more: str) -> None:
        self._shared.update(other, **more)


def hash_item_or_internal(item: ScanItem, state: WorkerState) -> WorkerResult:
    """hash_item, with an unexpected failure (a bug) turned into that input's INTERNAL line: one input must
    never end the scan, nor take the other inputs of its task with it."""
    try:
        return hash_item(item, state)
    except ClaimsUnavailableError:
        raise
    except Exception as failure:  # its type, never its text (which may quote the input)
        detail = f"an unexpected failure while hashing it ({type(failure).__name__}: a bug, please report it)"
        return internal_result(item, detail)


def internal_result(item: ScanItem, detail: str) -> WorkerResult:
    """The INTERNAL line of an input whose hashing failed in a way no reason code names."""
    return WorkerResult(item.label, item.size, item.content_type, problem=ItemProblem(ReasonCode.INTERNAL, detail))


def hash_item(item: ScanItem, state: WorkerState) -> WorkerResult:
    base = WorkerResult(item.label, item.size, item.content_type)
    if item.problem is not None:
        return _with(base, problem=item.problem)
    try:
        data, head, oversized = _read(item, state.max_bytes)
    except MediaError as exc:
        return _with(base, problem=ItemProblem(exc.reason, exc.detail))
    if base.content_type is None:  # a plain file the walker left unopened: sniffed here
        kind = content_type(head)
        base = _with(base, content_type=kind, archive_on_disk=kind is ContentType.ARCHIVE)
    if oversized is not None:
        return _with(base, digests=oversized, size=oversized.size, no_pdq=_too_large(oversized.size, state.max_bytes))
    digests = ExactDigests.of(data)
    first = state.claims.setdefault(digests.sha256, item.label)
    if first != item.label:
        return _with(base, digests=digests, size=len(data), duplicate_of=first)
    return _hashed(base, data, digests, state)


def _hashed(base: WorkerResult, data: bytes, digests: ExactDigests, state: WorkerState) -> WorkerResult:
    result = _with(base, digests=digests, size=len(data), hashed=True)
    if not data:
        return _with(result, no_pdq=ItemProblem(ReasonCode.EMPTY_INPUT, "no bytes to hash"))
    if base.content_type is ContentType.VIDEO and state.videos is not None:
        return _video(result, data, state.videos)
    skip = _not_an_image(base.content_type)
    if skip is not None:
        return _with(result, no_pdq=skip)
    try:
        hashes = state.hasher.hash_bytes(data)
    except MediaError as exc:
        return _with(result, no_pdq=ItemProblem(exc.reason, exc.detail))
    return _with(
        result,
        pdq=hashes.pdq.hex(),
        quality=hashes.pdq.quality,
        dihedral=tuple(h.hex() for h in hashes.dihedral),
        variants=hashes.variants,
    )


def _video(result: WorkerResult, data: bytes, videos: VideoHasher) -> WorkerResult:
    """A video's vPDQ (one frame a second); a cut-off one is hashed as far as it decodes, and says so."""
    try:
        hashes = videos.hash_bytes(data)
    except MediaError as exc:
        return _with(result, no_pdq=ItemProblem(exc.reason, exc.detail))
    truncated = None
    if hashes.truncated:
        detail = f"{hashes.frames_decoded} frames decoded, fewer than the container declares"
        truncated = ItemProblem(ReasonCode.VIDEO_TRUNCATED, detail)
    return _with(result, vpdq=hashes.vpdq.to_bytes(), no_pdq=truncated)


def _not_an_image(content_type: ContentType | None) -> ItemProblem | None:
    """Archives and videos are matched on their digests (an archive's members are scanned on their own);
    anything else is given to the decoders, which know more formats than the sniffer names."""
    if content_type is ContentType.ARCHIVE:
        return ItemProblem(ReasonCode.UNSUPPORTED_FORMAT, "an archive: its members are scanned as inputs of their own")
    if content_type is ContentType.VIDEO:
        return ItemProblem(ReasonCode.UNSUPPORTED_FORMAT, "a video: matched on its exact digests (no video hashing)")
    return None


def _read(item: ScanItem, max_bytes: int) -> tuple[bytes, bytes, ExactDigests | None]:
    """The input's bytes and its head (for sniffing), or (b"", head, digests by streaming) for a file over
    the byte limit."""
    if item.data is not None:
        return item.data, item.data[:HEAD_BYTES], None
    assert item.path is not None, "an item without a problem has a path or data"
    with open_media_file(item.path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            head = handle.read(HEAD_BYTES)
            return b"", head, ExactDigests.of_stream(handle, first=head)
        data = read_at_most(handle, size, max_bytes + 1)
        if len(data) > max_bytes:  # it grew while read
            return b"", data[:HEAD_BYTES], ExactDigests.of_stream(handle, first=data)
    return data, data[:HEAD_BYTES], None


def _too_large(size: int, limit: int) -> ItemProblem:
    return ItemProblem(ReasonCode.TOO_LARGE, f"{size} bytes is over the limit of {limit}: digests only")


def _without_digests(options: HashOptions) -> HashOptions:
    """The worker digests once itself (before the claim); the hasher need not again."""
    return replace(options, exact_digests=False)


def _with(result: WorkerResult, **changes: object) -> WorkerResult:
    return replace(result, **changes)  # type: ignore[arg-type]
