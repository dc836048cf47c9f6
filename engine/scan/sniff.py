"""What a file is, from its first bytes only: extensions lie (a seized `holiday.txt` may be a JPEG), magic bytes
rarely do. The walker sniffs every file and every archive member with these two functions."""

from __future__ import annotations

from enum import StrEnum

from engine.scan.records import ContentType

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

_VIDEO_PREFIXES: tuple[bytes, ...] = (
    b"\x1a\x45\xdf\xa3",  # Matroska and WebM (EBML)
    b"FLV",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF: WMV, WMA
    b"\x00\x00\x01\xba",  # MPEG program stream (.mpg, .vob)
)

# ISO-BMFF major brands of still images (HEIF and AVIF, with their image-sequence brands); any other brand of
# that container (isom, mp41, mp42, qt, M4V, 3gp4, ...) is a video.
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


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
    if head[4:8] == b"ftyp":
        return ContentType.IMAGE if head[8:12] in _IMAGE_BRANDS else ContentType.VIDEO
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ContentType.IMAGE
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return ContentType.VIDEO
    if head.startswith(_VIDEO_PREFIXES):
        return ContentType.VIDEO
    if head.startswith(_IMAGE_PREFIXES):
        return ContentType.IMAGE
    return ContentType.OTHER
