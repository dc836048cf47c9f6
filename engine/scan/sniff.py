"""What a file is, from its first bytes only: extensions lie (a seized `holiday.txt` may be a JPEG), magic bytes
rarely do. The walker sniffs every file and every archive member with these two functions."""

from __future__ import annotations

from enum import StrEnum

from engine.scan.records import ContentType
from hashing.video import is_video

# Every signature sits in the first 12 bytes except tar's "ustar", at offset 257 (after the member's name, mode,
# owner and size fields of the first 512-byte header): so the walker reads 512 bytes of each file, one tar header
# block, which covers every signature here and still costs a single small read.
HEAD_BYTES = 512


class ArchiveKind(StrEnum):
    """The containers the walker can open (all in the standard library)."""

    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"


_TAR_MAGIC_AT = 257

_ARCHIVE_PREFIXES: tuple[tuple[bytes, ArchiveKind], ...] = (
    (b"PK\x03\x04", ArchiveKind.ZIP),  # a local file header: the usual first bytes
    (b"PK\x05\x06", ArchiveKind.ZIP),  # the end record alone: an empty zip
    (b"PK\x07\x08", ArchiveKind.ZIP),  # the spanning marker of a split archive's first part
    (b"\x1f\x8b", ArchiveKind.GZIP),
    (b"BZh", ArchiveKind.BZIP2),
    (b"\xfd7zXZ\x00", ArchiveKind.XZ),
)

_IMAGE_PREFIXES: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"BM",  # BMP: checked after everything longer, as two bytes alone are weak evidence
)


def archive_kind(head: bytes) -> ArchiveKind | None:
    """The container `head` opens, or None. Tar is tested first: a tar header begins with a member's name,
    which may itself begin with any other signature ("BM-scan.txt")."""
    if head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar":
        return ArchiveKind.TAR
    for prefix, kind in _ARCHIVE_PREFIXES:
        if head.startswith(prefix):
            return kind
    return None


def content_type(head: bytes) -> ContentType:
    """The content type of a file or member whose first bytes are `head` (at least HEAD_BYTES of them, or the
    whole content when shorter). Empty content is OTHER."""
    if archive_kind(head) is not None:
        return ContentType.ARCHIVE
    if is_video(head):  # the video hasher's own test: what it would take
        return ContentType.VIDEO
    if head[4:8] == b"ftyp":  # a still image's brand (is_video said)
        return ContentType.IMAGE
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ContentType.IMAGE
    if head.startswith(_IMAGE_PREFIXES):
        return ContentType.IMAGE
    return ContentType.OTHER
