"""`hashmatch hash PATH...`: PDQ and exact hashes of files and directories, like the reference hasher."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from cli.common import add_device_argument, error_line
from cli.ordered import in_order
from cli.video_options import add_sampling_argument
from hashing.decode import DecodeLimits, DecodeOptions
from hashing.device import Device, DeviceChoice, close_hasher, feeder_threads, image_hasher, select_device
from hashing.errors import HashmatchError, ReasonCode
from hashing.media_hasher import HashOptions, MediaHasher, MediaHashes
from hashing.pdq import DIHEDRAL_NAMES
from hashing.pdq_hasher import DihedralMode, DownsampleKernel, PdqContract
from hashing.video import VideoHasher, VideoHashes, VideoOptions, is_video_file

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "hash",
        help="print PDQ hashes of image files and vPDQ hashes of videos",
        description="Print 'hex,quality,path' per image (as the reference hasher does), and per video one line "
        "per hashed frame. Directories are walked "
        "recursively. Files that fail are reported on stderr as 'ERROR,REASON,path,detail' and the run goes on; "
        "the exit status is 1 if any failed, 2 for invalid options.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image and video files, or directories")
    dihedral = parser.add_mutually_exclusive_group()
    dihedral.add_argument(
        "--dihedral",
        dest="dihedral",
        action="store_const",
        const=DihedralMode.DCT.value,
        default=DihedralMode.NONE.value,
        help="also print the 8 rotation/flip hashes, derived from the DCT (cheap, approximate; as the reference)",
    )
    dihedral.add_argument(
        "--dihedral-pixels",
        dest="dihedral",
        action="store_const",
        const=DihedralMode.PIXELS.value,
        help="also print the 8 rotation/flip hashes of the transformed pixels (exact)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per file (with MD5/SHA-1/SHA-256)")
    parser.add_argument(
        "--contract",
        choices=[c.value for c in PdqContract],
        default=PdqContract.FULLRES.value,
        help="'fullres' (reference core, default) or 'cli512' (Meta's C++ CLI: 512x512 pre-resize)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="JPEGs: hash the decoder's Y plane (faster, may drift 1-2 bits)"
    )
    parser.add_argument("--apply-exif", action="store_true", help="rotate by the EXIF Orientation tag first")
    add_device_argument(parser)
    parser.add_argument(
        "--kernel", choices=[k.value for k in DownsampleKernel], default="auto", help="the CPU's downsample kernel"
    )
    parser.add_argument("--workers", type=int, default=None, help="threads reading and decoding (default: CPU count)")
    parser.add_argument("--max-pixels", type=int, default=DecodeLimits.max_pixels)
    parser.add_argument("--max-bytes", type=int, default=DecodeLimits.max_bytes)
    videos = parser.add_argument_group(
        "videos (vPDQ): one line per hashed frame, 'frameNumber,quality,pdqHex,timestamp,path' (the reference's "
        "line, then the path)"
    )
    add_sampling_argument(videos)
    videos.add_argument(
        "--vpdq-dir",
        type=Path,
        metavar="DIR",
        help="also write each video's hashes as the reference hasher does, to DIR/NAME.txt (NAME: the file name "
        "without its extension; importable: 'hashmatch lists import --list L DIR --types vpdq')",
    )
    parser.set_defaults(run=run)


def iter_files(paths: list[str], unreadable: list[OSError]) -> Iterator[Path]:
    """Files in argument order; directories recursively in sorted order; missing paths passed through.

    Directories that cannot be listed are appended to `unreadable` rather than skipped in silence.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=unreadable.append):
                dirs.sort()
                for name in sorted(files):
                    yield Path(root) / name
        else:
            yield path


def format_csv(hashes: MediaHashes, path: Path) -> str:
    fields = [hashes.pdq.hex()] + [h.hex() for h in hashes.dihedral[1:]]
    return ",".join([*fields, str(hashes.pdq.quality), str(path)])


def format_json(hashes: MediaHashes, path: Path) -> str:
    record: dict[str, Any] = {
        "path": str(path),
        "pdq": hashes.pdq.hex(),
        "quality": hashes.pdq.quality,
        "width": hashes.width,
        "height": hashes.height,
        "exact_pdq": hashes.exact_pdq,
    }
    if hashes.dihedral:
        record["dihedral"] = {name: h.hex() for name, h in zip(DIHEDRAL_NAMES, hashes.dihedral, strict=True)}
    if hashes.digests is not None:
        record.update(md5=hashes.digests.md5, sha1=hashes.digests.sha1, sha256=hashes.digests.sha256)
    return json.dumps(record)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    for stream in (out, err):
        if isinstance(stream, io.TextIOWrapper):
            # Seized media has file names in any byte encoding: print them back as the bytes they are.
            stream.reconfigure(errors="surrogateescape")
    try:
        hasher, workers = build_hasher(args, select_device(args.device or Device.AUTO))
        videos = VideoHasher(VideoOptions(seconds_per_hash=args.seconds_per_hash, exact_digests=args.json), hasher.pdq)
        if args.vpdq_dir is not None and not args.vpdq_dir.is_dir():
            raise ValueError(f"--vpdq-dir {args.vpdq_dir}: no such directory")
    except (ValueError, RuntimeError, ImportError) as exc:
        err.write(f"hashmatch: error: {ReasonCode.USAGE}: {exc}\n")
        return EXIT_USAGE
    failed = 0
    unreadable: list[OSError] = []
    written: set[str] = set()  # --vpdq-dir file names of this run
    try:
        hash_one = partial(_hash_one, hasher, videos)
        for future in in_order(iter_files(args.paths, unreadable), hash_one, workers, 2 * workers):
            path, hashes, problem = future.result()
            if problem is not None:
                failed += 1
                err.write(error_line(problem.reason, path, problem.detail) + "\n")
                continue
            if isinstance(hashes, VideoHashes):
                failed += not _print_video(hashes, path, args, out, err, written)
                continue
            assert hashes is not None
            out.write((format_json(hashes, path) if args.json else format_csv(hashes, path)) + "\n")
    finally:
        close_hasher(hasher.pdq)
    for walk_error in unreadable:
        failed += 1
        err.write(error_line(ReasonCode.UNREADABLE, walk_error.filename, walk_error.strerror or "") + "\n")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _hash_one(
    hasher: MediaHasher, videos: VideoHasher, path: Path
) -> tuple[Path, MediaHashes | VideoHashes | None, HashmatchError | None]:
    try:
        if is_video_file(path):
            return path, videos.hash_file(path), None
        return path, hasher.hash_file(path), None
    except HashmatchError as exc:
        return path, None, exc


def _print_video(
    hashes: VideoHashes, path: Path, args: argparse.Namespace, out: TextIO, err: TextIO, written: set[str]
) -> bool:
    """The video's frame lines (or JSON object), and its reference file under --vpdq-dir; False if that
    file could not be written or the video was cut short (its frames are still printed)."""
    ok = True
    if args.json:
        record: dict[str, Any] = {
            "path": str(path),
            "vpdq": hashes.vpdq.lines(),
            "fps": round(hashes.fps, 3),
            "frames_decoded": hashes.frames_decoded,
            "width": hashes.width,
            "height": hashes.height,
            "truncated": hashes.truncated,
        }
        if hashes.digests is not None:
            record.update(md5=hashes.digests.md5, sha1=hashes.digests.sha1, sha256=hashes.digests.sha256)
        out.write(json.dumps(record) + "\n")
    else:
        out.writelines(f"{line},{path}\n" for line in hashes.vpdq.lines())
    if hashes.truncated:
        ok = False
        detail = f"{hashes.frames_decoded} frames decoded of those the container declares; hashed as far as it goes"
        err.write(error_line(ReasonCode.VIDEO_TRUNCATED, path, detail) + "\n")
    if args.vpdq_dir is not None and path.stem in written:
        detail = f"{path.stem}.txt was written for another video of this run: not overwritten"
        err.write(error_line(ReasonCode.USAGE, path, detail) + "\n")
        return False
    if args.vpdq_dir is not None:
        written.add(path.stem)
        try:
            (args.vpdq_dir / f"{path.stem}.txt").write_text("".join(f"{line}\n" for line in hashes.vpdq.lines()))
        except OSError as exc:
            err.write(error_line(ReasonCode.UNREADABLE, args.vpdq_dir, exc.strerror or "cannot write") + "\n")
            ok = False
    return ok


def build_hasher(args: argparse.Namespace, device: DeviceChoice) -> tuple[MediaHasher, int]:
    """The hasher the flags ask for on the chosen device, and how many threads feed it; ValueError names
    what does not fit together."""
    if args.fast and args.contract != PdqContract.FULLRES:
        raise ValueError("--fast works with the fullres contract only")
    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers is at least 1")
    options = HashOptions(
        contract=PdqContract(args.contract),
        dihedral=DihedralMode(args.dihedral),
        fast_luma=args.fast,
        exact_digests=args.json,
        decode=DecodeOptions(
            limits=DecodeLimits(max_bytes=args.max_bytes, max_pixels=args.max_pixels),
            apply_exif_orientation=args.apply_exif,
        ),
    )
    pdq = image_hasher(device, DownsampleKernel(args.kernel))
    return MediaHasher(options, pdq), feeder_threads(device, args.workers)
