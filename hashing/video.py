"""Video bytes -> a vPDQ hash: frames decoded by OpenCV's bundled FFmpeg (no system libraries), sampled as the
reference samples them, each hashed with the same PDQ code as images.

Decoding is from memory (an io.BytesIO handed to OpenCV): media is never written to disk. A decoding thread
feeds frames through a short queue while the caller's thread hashes, so decoding and hashing overlap.
Limits on bytes, resolution, duration and frames are checked from the container's header before decoding and
again while decoding (a header may lie), and a deadline bounds the wall time of one video.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np

from hashing.decode import DecodeLimits, open_media_file, read_media_file
from hashing.decode_budget import DecodeBudget
from hashing.errors import MediaError, ReasonCode
from hashing.exact import ExactDigests
from hashing.pdq_hasher import ImageHasher, PdqHasher
from hashing.vpdq import TIMESTAMP_DECIMALS, VpdqFeature, VpdqHash

# FFmpeg's own log lines (damaged streams, partial files) would reach the terminal and the server's stderr:
# quiet unless the operator asked for them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

import cv2  # after the log settings, which OpenCV reads when it loads FFmpeg

DEFAULT_SECONDS_PER_HASH = 1.0
SNIFF_BYTES = 4096  # what is read of an input to tell a video from an image
QUEUE_FRAMES = 8  # decoded frames waiting to be hashed: bounds memory at 8 frames of the largest resolution
# Sampled frames are hashed in batches (on a GPU, one batch is one upload and one launch set) of at most this
# many pixel bytes, and at least one frame.
BATCH_BYTES = 32 << 20

# Signatures of the video containers FFmpeg reads here. ISO-BMFF (MP4, MOV, 3GP, ...) is a video unless its
# major brand is a still image's (HEIF and AVIF, with their image-sequence brands).
_FTYP_OFFSET = 4
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_VIDEO_PREFIXES: tuple[bytes, ...] = (
    b"\x1a\x45\xdf\xa3",  # Matroska and WebM (EBML)
    b"FLV",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF: WMV
    b"\x00\x00\x01\xba",  # MPEG program stream (.mpg, .vob)
)
_TS_PACKET = 188


@dataclass(frozen=True)
class VideoLimits:
    """Refuse videos over these, each with its reason code."""

    max_bytes: int = 2 * 1024**3  # TOO_LARGE
    max_pixels: int = 3840 * 2160  # per frame (4K UHD); TOO_LARGE
    max_seconds: float = 4 * 3600.0  # VIDEO_TOO_LONG
    max_frames: int = 500_000  # decoded frames, sampled or not; VIDEO_TOO_LONG
    deadline_s: float = 600.0  # wall time to decode and hash one video; DECODE_TIMEOUT

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pixels, self.max_frames) < 1 or min(self.max_seconds, self.deadline_s) <= 0:
            raise ValueError("video limits must be positive")


@dataclass(frozen=True)
class VideoOptions:
    # One hash every this many seconds: frame n is hashed when n % max(1, int(seconds * fps)) == 0 (the
    # reference's rule). 0 hashes every frame.
    seconds_per_hash: float = DEFAULT_SECONDS_PER_HASH
    limits: VideoLimits = field(default_factory=VideoLimits)
    exact_digests: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.seconds_per_hash <= 3600.0 or math.isnan(self.seconds_per_hash):
            raise ValueError("seconds per hash is within 0..3600 (0: every frame)")


@dataclass(frozen=True, slots=True)
class VideoHashes:
    vpdq: VpdqHash
    width: int
    height: int
    fps: float
    frames_decoded: int
    digests: ExactDigests | None = None
    truncated: bool = False  # fewer frames decoded than the container declares: a damaged or cut-off file

    @property
    def duration_s(self) -> float:
        return self.frames_decoded / self.fps if self.fps else 0.0


def is_video(head: bytes) -> bool:
    """By signature, from the first bytes (at least 377 to recognise MPEG-TS), before any decoder sees them."""
    if head[_FTYP_OFFSET : _FTYP_OFFSET + 4] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    if head.startswith(_VIDEO_PREFIXES):
        return True
    return len(head) > 2 * _TS_PACKET and head[0] == head[_TS_PACKET] == head[2 * _TS_PACKET] == 0x47


def video_decode_cost(pixels: int) -> int:
    """Bytes one video's decoding may hold at once, for frames of `pixels` pixels: the queued RGB frames, the
    batch being hashed, and about as many frames again inside FFmpeg (reference frames, threads)."""
    frame = 3 * max(1, pixels)
    return frame * (2 * QUEUE_FRAMES + 3) + BATCH_BYTES


def _count_slack(declared: int) -> int:
    """Frames a container's count may overstate without the file being cut: where it has no count, OpenCV
    estimates one from duration x fps, and the duration may be the audio's."""
    return max(2, declared // 50)


def is_video_file(path: str | os.PathLike[str]) -> bool:
    """By the signature of the file's first bytes; MediaError (NOT_FOUND, UNREADABLE) when it cannot be read."""
    with open_media_file(path) as handle:
        return is_video(handle.read(SNIFF_BYTES))


def frame_step(seconds_per_hash: float, fps: float) -> int:
    """The reference's sampling: every `max(1, int(seconds_per_hash * fps))`-th frame, from frame 0."""
    return max(1, int(seconds_per_hash * fps))


class VideoHasher:
    """Safe to share between threads: each call opens its own decoder."""

    def __init__(
        self, options: VideoOptions | None = None, pdq: ImageHasher | None = None, budget: DecodeBudget | None = None
    ) -> None:
        """With a `budget` (a server's), each video reserves what its decoding may hold at once, sized from its
        header's resolution, before any frame is decoded: OverloadedError when none frees in time."""
        self.options = options or VideoOptions()
        self.pdq: ImageHasher = pdq or PdqHasher()
        self.budget = budget

    def hash_bytes(self, data: bytes, deadline_s: float | None = None) -> VideoHashes:
        """`deadline_s`: a caller's own deadline from now, when shorter than the limits' (a server's client)."""
        limits = self.options.limits
        if not data:
            raise MediaError(ReasonCode.EMPTY_INPUT, "no bytes to hash")
        if len(data) > limits.max_bytes:
            raise MediaError(ReasonCode.TOO_LARGE, f"{len(data)} bytes is over the video limit of {limits.max_bytes}")
        digests = ExactDigests.of(data) if self.options.exact_digests else None
        started = time.monotonic()
        if deadline_s is not None and deadline_s < limits.deadline_s:
            limits = replace(limits, deadline_s=max(deadline_s, 1e-3))
        video = _OpenVideo.of(data)
        try:
            if not video.capture.isOpened():
                raise MediaError(ReasonCode.UNDECODABLE, "not a video FFmpeg can read")
            header = _header(video.capture)
            _check_header(header, limits)
        except BaseException:
            video.release()
            raise
        step = 1 if self.options.seconds_per_hash == 0 else frame_step(self.options.seconds_per_hash, header.fps)
        try:
            reservation = (
                self.budget.reserve(video_decode_cost(header.width * header.height))
                if self.budget is not None
                else contextlib.nullcontext()
            )
        except BaseException:
            video.release()
            raise
        with reservation:
            features, decoded, size = self._hash_frames(video, header, step, started, limits)  # the decoder releases it
        if not features:
            raise MediaError(ReasonCode.UNDECODABLE, "no frame of the video could be decoded")
        return VideoHashes(
            vpdq=VpdqHash(tuple(features)),
            width=size[1],
            height=size[0],
            fps=header.fps,
            frames_decoded=decoded,
            digests=digests,
            truncated=decoded < header.declared_frames - _count_slack(header.declared_frames),
        )

    def hash_file(self, path: str | os.PathLike[str]) -> VideoHashes:
        return self.hash_bytes(read_media_file(path, DecodeLimits(max_bytes=self.options.limits.max_bytes)))

    def _hash_frames(
        self, video: _OpenVideo, header: _Header, step: int, started: float, limits: VideoLimits
    ) -> tuple[list[VpdqFeature], int, tuple[int, int]]:
        features: list[VpdqFeature] = []
        decoded = 0
        size = (header.height, header.width)
        batch: list[tuple[int, np.ndarray]] = []
        for number, frame in _frames(video, header.fps, step, limits, started):
            decoded = number + 1
            if frame is None:
                continue
            size = frame.shape[:2]
            batch.append((number, frame))
            if sum(pixels.nbytes for _, pixels in batch) >= BATCH_BYTES:
                features.extend(self._hash_batch(batch, header.fps))
                batch = []
        features.extend(self._hash_batch(batch, header.fps))
        return features, decoded, size

    def _hash_batch(self, batch: list[tuple[int, np.ndarray]], fps: float) -> list[VpdqFeature]:
        if not batch:
            return []
        results = self.pdq.hash_images([pixels for _, pixels in batch])
        return [
            VpdqFeature(number, result.hash, round(number / fps, TIMESTAMP_DECIMALS))
            for (number, _), result in zip(batch, results, strict=True)
        ]


@dataclass(frozen=True)
class _OpenVideo:
    capture: cv2.VideoCapture
    stream: io.BytesIO  # OpenCV holds no reference to the stream it reads: this does, as long as the capture

    @classmethod
    def of(cls, data: bytes) -> _OpenVideo:
        stream = io.BytesIO(data)
        # OpenCV's stubs name its IStreamReader; its binding takes any io.BufferedIOBase (4.11 and later).
        capture = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, [])  # type: ignore[call-overload]
        # The reference hashes the stored pixels: never turned upright by a rotation tag (phones set one).
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        return cls(capture, stream)

    def release(self) -> None:
        self.capture.release()


@dataclass(frozen=True)
class _Header:
    fps: float
    width: int
    height: int
    declared_frames: int


def _header(capture: cv2.VideoCapture) -> _Header:
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    if not math.isfinite(fps) or fps <= 0.0 or fps > 1000.0:
        raise MediaError(ReasonCode.UNDECODABLE, f"the video declares no usable frame rate ({fps})")
    count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return _Header(
        fps=fps,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        declared_frames=int(count) if math.isfinite(count) and count > 0 else 0,
    )


def _check_header(header: _Header, limits: VideoLimits) -> None:
    if header.width * header.height > limits.max_pixels:
        raise MediaError(
            ReasonCode.TOO_LARGE,
            f"{header.width}x{header.height} frames are over the limit of {limits.max_pixels} pixels",
        )
    if header.declared_frames > limits.max_frames:
        raise MediaError(
            ReasonCode.VIDEO_TOO_LONG, f"{header.declared_frames} frames is over the limit of {limits.max_frames}"
        )
    if header.declared_frames / header.fps > limits.max_seconds:
        raise MediaError(
            ReasonCode.VIDEO_TOO_LONG,
            f"{header.declared_frames / header.fps:.0f} s is over the limit of {limits.max_seconds:.0f} s",
        )


_END = object()


def _frames(
    video: _OpenVideo, fps: float, step: int, limits: VideoLimits, started: float
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(frame number, RGB pixels) for sampled frames and (number, None) for the others, decoded on a thread
    of their own. Skipped frames are only grabbed (demuxed and decoded, never converted to RGB).

    The decoding thread owns the video and releases it when it ends: past the deadline the caller stops
    waiting, and a decoder still inside FFmpeg must not have its capture freed under it."""
    frames: queue.Queue[object] = queue.Queue(QUEUE_FRAMES)
    stop = threading.Event()
    failure: list[MediaError] = []

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    capture = video.capture

    def decode() -> None:
        number = 0
        try:
            while not stop.is_set() and capture.grab():
                if number >= limits.max_frames or number / fps > limits.max_seconds:
                    failure.append(MediaError(ReasonCode.VIDEO_TOO_LONG, _too_long(limits)))
                    break
                pixels = None
                if number % step == 0:
                    ok, bgr = capture.retrieve()
                    if ok and bgr is not None:
                        _check_frame(bgr, limits)
                        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                if not put((number, pixels)):
                    return
                number += 1
        except MediaError as exc:
            failure.append(exc)
        except Exception:
            failure.append(MediaError(ReasonCode.UNDECODABLE, "the decoder failed part-way through the video"))
        finally:
            video.release()
            put(_END)

    worker = threading.Thread(target=decode, name="video-decode", daemon=True)
    worker.start()
    try:
        while True:
            remaining = limits.deadline_s - (time.monotonic() - started)
            if remaining <= 0:
                raise MediaError(ReasonCode.DECODE_TIMEOUT, f"not decoded and hashed within {limits.deadline_s:.0f} s")
            try:
                item = frames.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if item is _END:
                break
            yield cast(tuple[int, np.ndarray | None], item)
        if failure:
            raise failure[0]
    finally:
        stop.set()
        worker.join(timeout=5.0)


def _too_long(limits: VideoLimits) -> str:
    return f"longer than {limits.max_frames} frames or {limits.max_seconds:.0f} s (the header understated it)"


def _check_frame(frame: np.ndarray, limits: VideoLimits) -> None:
    """A stream may change resolution mid-way: every hashed frame is checked, not only the header's size."""
    height, width = frame.shape[:2]
    if width * height > limits.max_pixels:
        detail = f"a {width}x{height} frame is over the limit of {limits.max_pixels} pixels"
        raise MediaError(ReasonCode.TOO_LARGE, detail)
