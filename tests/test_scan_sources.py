"""The scan walker (engine/scan/sources.py) and sniffer (engine/scan/sniff.py) over a generated, hostile tree:
links that loop, a FIFO, damaged and bomb archives. Every image is generated here (gradients and noise)."""

from __future__ import annotations

import builtins
import gzip
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.scan.records import ContentType, ScanItem
from engine.scan.sniff import HEAD_BYTES, ArchiveKind, archive_kind, content_type
from engine.scan.sources import ArchiveLimits, walk
from hashing.errors import ReasonCode

IMAGE = ContentType.IMAGE
ARCHIVE = ContentType.ARCHIVE
OTHER = ContentType.OTHER
LIMIT = ReasonCode.ARCHIVE_LIMIT
MIB = 1 << 20

# Small limits, so that bombs cost the test milliseconds: members over 1 MiB, or declaring a ratio over 200
# from 64 KiB up, are not read.
LIMITS = ArchiveLimits(max_member_bytes=MIB, ratio_floor_bytes=64 << 10)

Row = tuple[str, ContentType | None, ReasonCode | None]


def _encoded(pixels: np.ndarray, format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


def _gradient(seed: int, size: int = 48) -> np.ndarray:
    rows, columns = np.mgrid[0:size, 0:size] * (255.0 / (size - 1))
    noise = np.random.default_rng(seed).integers(-20, 21, (size, size, 3))
    base = np.stack([columns, rows, 255 - columns], axis=-1)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


JPEG_A = _encoded(_gradient(1), "JPEG")
PNG_B = _encoded(_gradient(2), "PNG")
JPEG_C = _encoded(_gradient(3), "JPEG")
PNG_D = _encoded(_gradient(4), "PNG")
JPEG_NAME = _encoded(_gradient(5), "JPEG")


def _tar_bytes(members: list[tuple[str, bytes]], mode: str = "w", links: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members:
            if name.endswith("/"):
                info = tarfile.TarInfo(name.rstrip("/"))
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if links:
            for kind, name in ((tarfile.SYMTYPE, "soft.jpg"), (tarfile.LNKTYPE, "hard.jpg")):
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = "dir/name.jpg"
                archive.addfile(info)
    return buffer.getvalue()


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _zeros_member(archive: zipfile.ZipFile, name: str, size: int) -> None:
    """A member of `size` zero bytes, written in chunks: a bomb costs its compressed size, not its own."""
    with archive.open(name, "w", force_zip64=True) as member:
        for start in range(0, size, MIB):
            member.write(bytes(min(MIB, size - start)))


def _build_tree(root: Path) -> None:
    photos = root / "photos"
    (photos / "nested" / "deeper").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(JPEG_A)
    (photos / "b.png").write_bytes(PNG_B)
    (photos / "copy-of-a.jpg").write_bytes(JPEG_A)
    (photos / "nested" / "deeper" / "c.jpg").write_bytes(JPEG_C)
    (root / "broken.jpg").write_bytes(JPEG_C[: len(JPEG_C) // 2])
    (root / "notes.txt").write_text("case notes: nothing here\n")
    (root / "empty.bin").write_bytes(b"")
    (root / "secret.jpg").write_bytes(JPEG_A)
    (root / "secret.jpg").chmod(0)
    os.mkfifo(root / "pipe")

    inner = _tar_bytes([("deep/d.png", PNG_D)], mode="w:gz")
    with zipfile.ZipFile(root / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("photos/", b"")
        archive.writestr("photos/a.jpg", JPEG_A)
        archive.writestr("photos/b.png", PNG_B)
        link = zipfile.ZipInfo("photos/link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "a.jpg")
        archive.writestr("inner.tar.gz", inner)
    (root / "archive.tar").write_bytes(_tar_bytes([("dir/", b""), ("dir/name.jpg", JPEG_NAME)], links=True))
    (root / "a.jpg.gz").write_bytes(gzip.compress(JPEG_A))
    (root / "big.bin.gz").write_bytes(gzip.compress(bytes(3 * MIB)))
    with zipfile.ZipFile(root / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small.txt", b"ok\n" * 10)
        _zeros_member(archive, "zeros.bin", 5 * MIB)  # over the size limit
        _zeros_member(archive, "flat.bin", 512 << 10)  # under it, but a ratio of about 1000
    zipped = _zip_bytes([("a.jpg", JPEG_A), ("b.png", PNG_B)])
    (root / "truncated.zip").write_bytes(zipped[: len(zipped) * 2 // 3])
    noise = np.random.default_rng(9).integers(0, 256, 256 << 10, dtype=np.uint8).tobytes()
    tgz = _tar_bytes([("first.jpg", JPEG_A), ("second.bin", noise)], mode="w:gz")
    (root / "truncated.tar.gz").write_bytes(tgz[: len(tgz) // 2])
    (root / "locked.zip").write_bytes(_encrypted_flag(_zip_bytes([("hidden.jpg", JPEG_A)])))

    links = root / "links"
    links.mkdir()
    (links / "alias.jpg").symlink_to("../photos/a.jpg")
    (links / "dangling").symlink_to("../no-such-file")
    (links / "up").symlink_to("..")
    (root / "zz-photos-link").symlink_to("photos")


def _encrypted_flag(zipped: bytes) -> bytes:
    """Sets the 'encrypted' flag of a one-member zip (zipfile cannot write encrypted members): the walker must
    not try to read it."""
    data = bytearray(zipped)
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        offset = data.index(signature) + flag_at
        data[offset] |= 0x1
    return bytes(data)


def _rows(items: list[ScanItem], root: Path) -> list[Row]:
    prefix = str(root) + os.sep
    return [
        (
            item.label.removeprefix(prefix),
            item.content_type,
            None if item.problem is None else item.problem.reason,
        )
        for item in items
    ]


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under root, with its type, size and modification time, links not followed."""
    found: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            status = os.lstat(os.path.join(dirpath, name))
            found[os.path.join(dirpath, name)] = (stat.S_IFMT(status.st_mode), status.st_size, status.st_mtime_ns)
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    _build_tree(root)
    return root


@pytest.fixture
def no_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every attempt to open anything for writing: the walker must never write (no extraction)."""
    attempts: list[str] = []
    real_os_open = os.open
    real_open = builtins.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & write_flags:
            attempts.append(f"os.open {path}")
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(letter in mode for letter in "wax+"):
            attempts.append(f"open {file}")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    yield attempts


def test_walks_a_hostile_tree_in_order(tree: Path, tmp_path: Path, no_writes: list[str]) -> None:
    before = _snapshot(tmp_path)
    items = list(walk([tree, tmp_path / "missing.jpg"], LIMITS))
    assert no_writes == []
    assert _snapshot(tmp_path) == before

    secret = (IMAGE, None) if os.geteuid() == 0 else (None, ReasonCode.UNREADABLE)  # root reads anything
    assert _rows(items, tree) == [
        ("a.jpg.gz", ARCHIVE, None),
        ("a.jpg.gz!a.jpg", IMAGE, None),
        ("archive.tar", ARCHIVE, None),
        ("archive.tar!dir/name.jpg", IMAGE, None),
        ("big.bin.gz", ARCHIVE, None),
        ("big.bin.gz!big.bin", None, LIMIT),
        ("bomb.zip", ARCHIVE, None),
        ("bomb.zip!small.txt", OTHER, None),
        ("bomb.zip!zeros.bin", None, LIMIT),
        ("bomb.zip!flat.bin", None, LIMIT),
        ("broken.jpg", IMAGE, None),
        ("bundle.zip", ARCHIVE, None),
        ("bundle.zip!photos/a.jpg", IMAGE, None),
        ("bundle.zip!photos/b.png", IMAGE, None),
        ("bundle.zip!inner.tar.gz", ARCHIVE, None),
        ("bundle.zip!inner.tar.gz!deep/d.png", IMAGE, None),
        ("empty.bin", OTHER, None),
        ("links/alias.jpg", IMAGE, None),
        ("links/dangling", None, ReasonCode.NOT_FOUND),
        ("links/up", None, ReasonCode.SYMLINK_LOOP),
        ("locked.zip", ARCHIVE, None),
        ("locked.zip!hidden.jpg", None, ReasonCode.UNREADABLE),
        ("notes.txt", OTHER, None),
        ("photos/a.jpg", IMAGE, None),
        ("photos/b.png", IMAGE, None),
        ("photos/copy-of-a.jpg", IMAGE, None),
        ("photos/nested/deeper/c.jpg", IMAGE, None),
        ("pipe", None, ReasonCode.UNREADABLE),
        ("secret.jpg", *secret),
        ("truncated.tar.gz", ARCHIVE, None),
        ("truncated.tar.gz!first.jpg", IMAGE, None),
        ("truncated.tar.gz!", None, ReasonCode.UNDECODABLE),
        ("truncated.zip", ARCHIVE, None),
        ("truncated.zip!", None, ReasonCode.UNDECODABLE),
        ("zz-photos-link", None, ReasonCode.SYMLINK_LOOP),
        (str(tmp_path / "missing.jpg"), None, ReasonCode.NOT_FOUND),
    ]

    by_label = {item.label.removeprefix(str(tree) + os.sep): item for item in items}
    member = by_label["archive.tar!dir/name.jpg"]
    assert (member.data, member.size, member.path) == (JPEG_NAME, len(JPEG_NAME), None)
    assert by_label["bundle.zip!inner.tar.gz!deep/d.png"].data == PNG_D
    assert by_label["a.jpg.gz!a.jpg"].data == JPEG_A
    plain = by_label["photos/b.png"]
    assert (plain.path, plain.size, plain.data) == (tree / "photos" / "b.png", len(PNG_B), None)
    assert by_label["links/alias.jpg"].path == tree / "links" / "alias.jpg"
    assert by_label["empty.bin"].size == 0
    for item in items:
        if item.problem is not None:
            detail = item.problem.detail
            assert detail and "Error" not in detail and "Traceback" not in detail, item


def test_unreadable_files_and_directories(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root (CI containers) chmod 000 does not stop a read, so the operating system's refusal is played."""
    real_os_open = os.open
    real_scandir = os.scandir

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path).name == "a.jpg":
            raise PermissionError(13, "Permission denied")
        return real_os_open(path, flags, *args, **kwargs)

    def scandir(path: Any) -> Any:
        if Path(path).name == "deeper":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "scandir", scandir)
    items = list(walk([tree / "photos"]))
    assert _rows(items, tree) == [
        ("photos/a.jpg", None, ReasonCode.UNREADABLE),
        ("photos/b.png", IMAGE, None),
        ("photos/copy-of-a.jpg", IMAGE, None),
        ("photos/nested/deeper", None, ReasonCode.UNREADABLE),
    ]
    problem = items[0].problem
    assert problem is not None and problem.detail == "cannot be read: Permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_chmod_000_is_unreadable(tree: Path) -> None:
    assert _rows(list(walk([tree / "secret.jpg"])), tree) == [("secret.jpg", None, ReasonCode.UNREADABLE)]


def test_archive_nested_deeper_than_the_limit(tmp_path: Path) -> None:
    inner = _zip_bytes([("a.jpg", JPEG_A)])
    (tmp_path / "outer.zip").write_bytes(_zip_bytes([("inner.zip", inner), ("b.png", PNG_B)]))
    items = list(walk([tmp_path / "outer.zip"], ArchiveLimits(max_depth=1)))
    assert _rows(items, tmp_path) == [
        ("outer.zip", ARCHIVE, None),
        ("outer.zip!inner.zip", ARCHIVE, None),
        ("outer.zip!inner.zip!", None, LIMIT),
        ("outer.zip!b.png", IMAGE, None),
    ]
    assert items[1].data == inner
    assert items[2].problem is not None and items[2].problem.detail == "nested deeper than 1: contents not read"
    assert _rows(list(walk([tmp_path / "outer.zip"], ArchiveLimits(max_depth=0))), tmp_path) == [
        ("outer.zip", ARCHIVE, None),
        ("outer.zip!", None, LIMIT),
    ]


@pytest.mark.parametrize(
    "name, build",
    [
        ("many.tar", lambda members: _tar_bytes(members)),
        ("many.tar.xz", lambda members: _tar_bytes(members, mode="w:xz")),
        ("many.zip", _zip_bytes),
    ],
)
def test_archive_budget_ends_the_archive(
    tmp_path: Path, name: str, build: Callable[[list[tuple[str, bytes]]], bytes]
) -> None:
    """max_archive_bytes counts every byte unpacked from one archive on disk: past it, one item for the rest."""
    members = [(f"{index}.bin", bytes([index]) * (40 << 10)) for index in range(4)]
    (tmp_path / name).write_bytes(build(members))
    (tmp_path / "next.png").write_bytes(PNG_B)
    items = list(walk([tmp_path / name, tmp_path / "next.png"], ArchiveLimits(max_archive_bytes=100 << 10)))
    assert _rows(items, tmp_path) == [
        (name, ARCHIVE, None),
        (f"{name}!0.bin", OTHER, None),
        (f"{name}!1.bin", OTHER, None),
        (f"{name}!", None, LIMIT),
        ("next.png", IMAGE, None),  # the budget is per archive on disk
    ]


def test_a_declared_300_mb_member_of_zeros_is_not_read(tmp_path: Path) -> None:
    """Default limits: the declared size and ratio refuse it before a byte of it is unpacked."""
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        _zeros_member(archive, "zeros.bin", 300 * MIB)
    assert (tmp_path / "bomb.zip").stat().st_size < 2 * MIB
    items = list(walk([tmp_path / "bomb.zip"]))
    assert _rows(items, tmp_path) == [("bomb.zip", ARCHIVE, None), ("bomb.zip!zeros.bin", None, LIMIT)]


def test_a_gzip_stream_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    """A gzip declares no size: reading stops at max_member_bytes + 1, and so does the decompression."""
    (tmp_path / "zeros.gz").write_bytes(gzip.compress(bytes(4 * MIB)))
    items = list(walk([tmp_path / "zeros.gz"], ArchiveLimits(max_member_bytes=MIB)))
    assert _rows(items, tmp_path) == [("zeros.gz", ARCHIVE, None), ("zeros.gz!zeros", None, LIMIT)]
    assert items[1].problem is not None
    assert items[1].problem.detail == f"over the limit of {MIB} bytes: not read to its end"


def test_a_damaged_tar_header_after_the_first_is_reported(tmp_path: Path) -> None:
    """tarfile alone ends such an archive quietly, as if complete."""
    data = bytearray(_tar_bytes([("a.jpg", JPEG_A), ("b.png", PNG_B)]))
    second_header = 512 + (len(JPEG_A) + 511) // 512 * 512
    data[second_header : second_header + 100] = b"\xff" * 100
    (tmp_path / "damaged.tar").write_bytes(bytes(data))
    assert _rows(list(walk([tmp_path / "damaged.tar"])), tmp_path) == [
        ("damaged.tar", ARCHIVE, None),
        ("damaged.tar!a.jpg", IMAGE, None),
        ("damaged.tar!", None, ReasonCode.UNDECODABLE),
    ]


def test_same_directory_through_two_links_and_a_chain_of_links(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(PNG_B)
    (tmp_path / "first").symlink_to("real")
    (tmp_path / "second").symlink_to("real")
    (tmp_path / "ping").symlink_to("pong")
    (tmp_path / "pong").symlink_to("ping")
    assert _rows(list(walk([tmp_path])), tmp_path) == [
        ("first/a.png", IMAGE, None),
        ("ping", None, ReasonCode.SYMLINK_LOOP),
        ("pong", None, ReasonCode.SYMLINK_LOOP),
        ("real/a.png", IMAGE, None),  # a directory by its own name is walked, even if a link led there first
        ("second", None, ReasonCode.SYMLINK_LOOP),
    ]


_HEAD_CASES: list[tuple[bytes, ContentType]] = [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", IMAGE),
    (b"\x89PNG\r\n\x1a\n\x00\x00", IMAGE),
    (b"GIF87a\x01\x00", IMAGE),
    (b"GIF89a\x01\x00", IMAGE),
    (b"BM\x36\x00\x00\x00", IMAGE),
    (b"II*\x00\x08\x00", IMAGE),
    (b"MM\x00*\x00\x00", IMAGE),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", IMAGE),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", IMAGE),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", IMAGE),
    (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", IMAGE),
    (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", ContentType.VIDEO),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", ContentType.VIDEO),
    (b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x00", ContentType.VIDEO),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", ContentType.VIDEO),
    (b"RIFF\x24\x00\x00\x00AVI LIST", ContentType.VIDEO),
    (b"FLV\x01\x05", ContentType.VIDEO),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9", ContentType.VIDEO),
    (b"\x00\x00\x01\xba\x44", ContentType.VIDEO),
    (b"PK\x03\x04\x14\x00", ARCHIVE),
    (b"PK\x05\x06" + bytes(18), ARCHIVE),
    (b"PK\x07\x08PK\x03\x04", ARCHIVE),
    (b"\x1f\x8b\x08\x00", ARCHIVE),
    (b"BZh91AY&SY", ARCHIVE),
    (b"\xfd7zXZ\x00\x00\x04", ARCHIVE),
    (b"", OTHER),
    (b"hello, world\n", OTHER),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", OTHER),
    (b"%PDF-1.7", OTHER),
]


@pytest.mark.parametrize("head, expected", _HEAD_CASES)
def test_content_type_by_magic_bytes(head: bytes, expected: ContentType) -> None:
    assert content_type(head) is expected


def test_tar_is_sniffed_at_offset_257_before_any_prefix() -> None:
    """A tar's first bytes are a member's name, which may look like anything ("BM..." reads as a BMP)."""
    head = _tar_bytes([("BM-scan.txt", b"text")])[:HEAD_BYTES]
    assert HEAD_BYTES >= 262
    assert (archive_kind(head), content_type(head)) == (ArchiveKind.TAR, ARCHIVE)
    assert archive_kind(head[:257]) is None  # too short a head cannot show it
