"""The walker of `hashmatch scan`: every input an investigator names (files, folders, archives inside archives),
as one ScanItem each, in an order that is the same on every run (so results can be compared and a scan resumed).

Seized collections are hostile input: links that loop, FIFOs that block whoever opens them, archives built to
unpack to terabytes. The walker never writes anything (no archive is extracted), reads plain files only as far
as their head (the workers read the rest), and reads archive members into memory one at a time, each within
the ArchiveLimits."""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, Self

from engine.scan.records import ARCHIVE_SEPARATOR, ItemProblem, ScanItem
from engine.scan.sniff import HEAD_BYTES, ArchiveKind, archive_kind, content_type
from hashing.errors import ReasonCode


@dataclass(frozen=True)
class ArchiveLimits:
    """What the walker will unpack: the defenses against archive bombs."""

    max_member_bytes: int = 256 << 20  # one member's uncompressed size: the decoder's default byte limit
    max_ratio: float = 200.0  # a zip member's declared uncompressed / compressed size
    max_depth: int = 3  # archives inside archives: depth 1 = members of an archive on disk
    max_archive_bytes: int = 4 << 30  # uncompressed bytes read from one archive on disk, all nesting included
    # Members declaring less than this are not judged by their ratio: a small file of zeros (a flat BMP, a
    # sparse log) compresses far beyond any bomb's ratio, yet costs nothing to read, and it might be evidence.
    ratio_floor_bytes: int = 1 << 20


_Key = tuple[int, int]  # (st_dev, st_ino): a directory however it is reached
_CHUNK = 1 << 20

# What a hostile or damaged archive makes the standard library raise. OSError covers gzip's BadGzipFile, bz2's
# "invalid data stream" and real read errors (told apart by errno); ValueError covers malformed names and
# offsets in zip headers.
_DAMAGED: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
    OverflowError,
    struct.error,
    NotImplementedError,  # a zip of a later version of the format than zipfile reads
)

_KIND_NAMES = {
    ArchiveKind.ZIP: "zip archive",
    ArchiveKind.TAR: "tar archive",
    ArchiveKind.GZIP: "gzip stream",
    ArchiveKind.BZIP2: "bzip2 stream",
    ArchiveKind.XZ: "xz stream",
}
_COMPRESSED_TAR_NAMES = {
    ArchiveKind.GZIP: "tar archive (gzip)",
    ArchiveKind.BZIP2: "tar archive (bzip2)",
    ArchiveKind.XZ: "tar archive (xz)",
}

# A bare compressed file's one member is named after it, less the compression's suffix; the tar shorthands
# name a tar (which, if it really were one, would have been walked as a tar instead).
_COMPRESSION_SUFFIXES = {
    ArchiveKind.GZIP: {".gz": "", ".gzip": "", ".z": "", ".tgz": ".tar"},
    ArchiveKind.BZIP2: {".bz2": "", ".bz": "", ".tbz2": ".tar", ".tbz": ".tar"},
    ArchiveKind.XZ: {".xz": "", ".lzma": "", ".txz": ".tar"},
}


class _Reader(Protocol):
    """What the walker reads from: files, archive members, decompressors."""

    def read(self, size: int, /) -> bytes: ...


class _BudgetSpentError(Exception):
    """An archive on disk has unpacked max_archive_bytes: nothing more of it is read. Not one of _DAMAGED, so
    it passes every nested level's damage handling up to the archive on disk."""


class _Budget:
    """The uncompressed bytes one archive on disk may still unpack, shared by all its nested archives: a zip
    of a thousand zips of a thousand small members each stays within one bound."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def charge(self, count: int) -> None:
        self.remaining -= count
        if self.remaining < 0:
            raise _BudgetSpentError


class _Decompressed(io.BufferedIOBase):
    """The bytes of a gzip, bzip2 or xz stream, charged to the budget as they are produced (including those
    tarfile reads only to skip them: a tar.bz2 of one huge member of zeros is a bomb too), with the head read
    to sniff them given back first."""

    def __init__(self, source: _Reader, budget: _Budget) -> None:
        super().__init__()
        self._source = source
        self._budget = budget
        self._pending = b""

    def readable(self) -> bool:
        return True

    def sniff(self) -> bytes:
        """Reads the head and keeps it for the next read."""
        self._pending = _read_up_to(self._source, HEAD_BYTES)
        self._budget.charge(len(self._pending))
        return self._pending

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise io.UnsupportedOperation("read to the end: unbounded")  # everything here reads in chunks
        if self._pending:
            chunk, self._pending = self._pending[:size], self._pending[size:]
            return chunk
        chunk = self._source.read(size)
        self._budget.charge(len(chunk))
        return chunk


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends an archive quietly at a damaged header after the first (as if it had reached the end): a
    walker must say instead that the rest was lost."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        try:
            return super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError:
            if buf.count(0) == len(buf):  # zero blocks (or nothing): the archive's own end
                raise
            raise tarfile.ReadError("damaged header") from None


@dataclass(frozen=True)
class _Found:
    """A path's status, with symbolic links followed."""

    status: os.stat_result
    is_link: bool


def walk(paths: Sequence[Path], limits: ArchiveLimits = ArchiveLimits(), sniff: bool = True) -> Iterator[ScanItem]:
    """Every input under `paths`, in order: each path as given, each directory's entries sorted by name, each
    archive followed by its members (in the archive's own order). A generator: it holds one archive member's
    bytes per nesting level at most, whatever the size of the collection.

    `sniff=False` leaves plain files unopened (content_type None) and their archives unexpanded: a scan's
    workers read each file anyway, sniff it there, and hand archives back for `archive_members`, so that
    the walking process does no per-file reading of its own."""
    walked: set[_Key] = set()
    for path in paths:
        yield from _walk_tree(Path(path), limits, walked, sniff)


def _walk_tree(root: Path, limits: ArchiveLimits, walked: set[_Key], sniff: bool) -> Iterator[ScanItem]:
    """Depth-first with an explicit stack rather than recursion: seized folders can nest deeper than Python's
    recursion limit."""
    stack: list[tuple[_Key | None, Iterator[Path]]] = [(None, iter((root,)))]
    on_path: set[_Key] = set()
    while stack:
        key, children = stack[-1]
        path = next(children, None)
        if path is None:
            stack.pop()
            if key is not None:
                on_path.discard(key)
            continue
        label = str(path)
        found = _stat(path)
        if isinstance(found, ItemProblem):
            yield ScanItem(label, problem=found)
            continue
        mode = found.status.st_mode
        if stat.S_ISDIR(mode):
            entered = _enter(path, found, on_path, walked)
            if isinstance(entered, ItemProblem):
                yield ScanItem(label, problem=entered)
                continue
            dir_key = _key(found.status)
            walked.add(dir_key)
            on_path.add(dir_key)
            stack.append((dir_key, entered))
        elif stat.S_ISREG(mode) and not sniff:
            yield ScanItem(label, size=found.status.st_size, path=path)
        elif stat.S_ISREG(mode):
            yield from _file_items(path, limits)
        else:
            detail = "not a regular file (a device, FIFO or socket)"
            yield ScanItem(label, problem=_problem(ReasonCode.UNREADABLE, detail))


def _key(status: os.stat_result) -> _Key:
    return status.st_dev, status.st_ino


def _stat(path: Path) -> _Found | ItemProblem:
    """The path's status without opening it: opening a FIFO blocks until a writer comes, and a device may do
    anything when opened."""
    try:
        status = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _problem(ReasonCode.NOT_FOUND, "no such file or directory")
    except OSError as exc:
        return _problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read"))
    if not stat.S_ISLNK(status.st_mode):
        return _Found(status, is_link=False)
    try:
        return _Found(os.stat(path), is_link=True)
    except (FileNotFoundError, NotADirectoryError):
        return _problem(ReasonCode.NOT_FOUND, "a link to a path that does not exist")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _problem(ReasonCode.SYMLINK_LOOP, "a chain of links that leads back to itself: not followed")
        return _problem(ReasonCode.UNREADABLE, _os_words(exc, "a link that cannot be followed"))


def _enter(path: Path, found: _Found, on_path: set[_Key], walked: set[_Key]) -> Iterator[Path] | ItemProblem:
    """A directory's entries, sorted by name, unless entering it would walk a directory twice or forever.
    A directory given twice by name is walked twice (it was asked for); only links are held to what was
    already walked, as they are how one collection reaches the same folder again."""
    key = _key(found.status)
    if key in on_path:
        return _problem(ReasonCode.SYMLINK_LOOP, "leads back into a directory being walked: not followed")
    if found.is_link and key in walked:
        return _problem(ReasonCode.SYMLINK_LOOP, "leads into a directory already walked: not followed")
    try:
        with os.scandir(path) as entries:
            names = sorted(entry.name for entry in entries)
    except OSError as exc:
        return _problem(ReasonCode.UNREADABLE, _os_words(exc, "a directory that cannot be listed"))
    return (path / name for name in names)


def _file_items(path: Path, limits: ArchiveLimits) -> Iterator[ScanItem]:
    """A regular file's item (sniffed from its head), then, for an archive, its members."""
    label = str(path)
    try:
        # O_NONBLOCK: the file passed as regular when stat-ed, but may be swapped for a FIFO since.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        yield ScanItem(label, problem=_problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read")))
        return
    with open(fd, "rb") as stream:
        try:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                yield ScanItem(label, problem=_problem(ReasonCode.UNREADABLE, "not a regular file"))
                return
            head = _read_up_to(stream, HEAD_BYTES)
        except OSError as exc:
            yield ScanItem(label, problem=_problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read")))
            return
        yield ScanItem(label, size=status.st_size, content_type=content_type(head), path=path)
        kind = archive_kind(head)
        if kind is not None:
            stream.seek(0)
            yield from _top_archive_items(stream, label, kind, limits)


def archive_members(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[ScanItem]:
    """The members of the archive file at `path` (labelled under str(path)), for a walk with sniff=False; an
    archive that cannot be opened again gives one UNREADABLE item at `path!`."""
    label = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        yield ScanItem(
            label + ARCHIVE_SEPARATOR, problem=_problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read"))
        )
        return
    with open(fd, "rb") as stream:
        try:
            kind = archive_kind(_read_up_to(stream, HEAD_BYTES))
        except OSError as exc:
            yield ScanItem(
                label + ARCHIVE_SEPARATOR, problem=_problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read"))
            )
            return
        if kind is not None:
            stream.seek(0)
            yield from _top_archive_items(stream, label, kind, limits)


def _top_archive_items(stream: IO[bytes], label: str, kind: ArchiveKind, limits: ArchiveLimits) -> Iterator[ScanItem]:
    """An archive on disk: its members within one budget for everything unpacked from it."""
    budget = _Budget(limits.max_archive_bytes)
    try:
        yield from _archive_items(stream, label, kind, 1, budget, limits)
    except _BudgetSpentError:
        detail = f"more than {limits.max_archive_bytes} bytes unpacked from this archive: the rest not read"
        yield ScanItem(label + ARCHIVE_SEPARATOR, problem=_problem(ReasonCode.ARCHIVE_LIMIT, detail))


def _archive_items(
    source: IO[bytes], label: str, kind: ArchiveKind, depth: int, budget: _Budget, limits: ArchiveLimits
) -> Iterator[ScanItem]:
    """The members of the archive `label` (their own depth is `depth`), each followed by its own members."""
    if depth > limits.max_depth:
        detail = f"nested deeper than {limits.max_depth}: contents not read"
        yield ScanItem(label + ARCHIVE_SEPARATOR, problem=_problem(ReasonCode.ARCHIVE_LIMIT, detail))
    elif kind is ArchiveKind.ZIP:
        yield from _zip_items(source, label, depth, budget, limits)
    elif kind is ArchiveKind.TAR:
        yield from _tar_items(source, label, depth, budget, limits, compression=None)
    else:
        yield from _compressed_items(source, label, kind, depth, budget, limits)


def _member_items(label: str, data: bytes, depth: int, budget: _Budget, limits: ArchiveLimits) -> Iterator[ScanItem]:
    """A member read whole: its item, then its own members if it is an archive."""
    head = data[:HEAD_BYTES]
    yield ScanItem(label, size=len(data), content_type=content_type(head), data=data)
    kind = archive_kind(head)
    if kind is not None:
        yield from _archive_items(io.BytesIO(data), label, kind, depth + 1, budget, limits)


def _zip_items(source: IO[bytes], label: str, depth: int, budget: _Budget, limits: ArchiveLimits) -> Iterator[ScanItem]:
    """A zip's members in the order of its central directory. Each member is read on its own (zip allows it),
    so a damaged member is reported and the next one still read; only an unreadable central directory ends the
    archive."""
    try:
        archive = zipfile.ZipFile(source)
    except _DAMAGED as exc:
        yield _damaged(label, _KIND_NAMES[ArchiveKind.ZIP], exc)
        return
    seen: dict[str, int] = {}
    with archive:
        for info in archive.infolist():
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                continue
            member_label = _unique(label + ARCHIVE_SEPARATOR + info.filename, seen)
            read = _zip_member_problem(info, limits) or _read_zip_member(archive, info, budget, limits)
            if isinstance(read, ItemProblem):
                yield ScanItem(member_label, problem=read)
                continue
            yield from _member_items(member_label, read, depth, budget, limits)
            del read  # one member's bytes at a time: not this one while the next is read


def _zip_member_problem(info: zipfile.ZipInfo, limits: ArchiveLimits) -> ItemProblem | None:
    """Why a zip member is not read, from its central directory entry alone."""
    if info.flag_bits & 0x1:
        return _problem(ReasonCode.UNREADABLE, "encrypted: cannot be read without its password")
    if info.file_size > limits.max_member_bytes:
        detail = f"declares {info.file_size} bytes, over the limit of {limits.max_member_bytes}: not read"
        return _problem(ReasonCode.ARCHIVE_LIMIT, detail)
    if info.file_size >= limits.ratio_floor_bytes and info.file_size > limits.max_ratio * info.compress_size:
        detail = (
            f"declares {info.file_size} bytes from {info.compress_size} compressed, a ratio over the limit of"
            f" {limits.max_ratio:g}: not read"
        )
        return _problem(ReasonCode.ARCHIVE_LIMIT, detail)
    return None


def _read_zip_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, limits: ArchiveLimits
) -> bytes | ItemProblem:
    try:
        with archive.open(info) as member:
            return _read_capped(member, limits.max_member_bytes, budget)
    except NotImplementedError:
        return _problem(ReasonCode.UNREADABLE, "compressed with a method hashmatch cannot read")
    except _DAMAGED as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            return _problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read"))
        return _problem(ReasonCode.UNDECODABLE, "damaged: its bytes do not decompress to what the archive declares")


def _tar_items(
    source: IO[bytes] | _Decompressed,
    label: str,
    depth: int,
    budget: _Budget,
    limits: ArchiveLimits,
    *,
    compression: ArchiveKind | None,
) -> Iterator[ScanItem]:
    """A tar's regular files, read as a stream (never seeked, never extracted). A compressed tar's `source`
    charges the budget itself (every byte decompressed), so its members are not charged again."""
    what = _KIND_NAMES[ArchiveKind.TAR] if compression is None else _COMPRESSED_TAR_NAMES[compression]
    charge_members = compression is None
    try:
        archive = _open_tar(source)
    except _DAMAGED as exc:
        yield _damaged(label, what, exc)
        return
    seen: dict[str, int] = {}
    with archive:
        while True:
            try:
                member = archive.next()
            except _DAMAGED as exc:
                yield _damaged(label, what, exc)
                return
            # tarfile keeps every header it has read (undeclared in its stubs): millions of members would stay
            archive.members.clear()  # type: ignore[attr-defined]
            if member is None:
                return
            if not member.isfile():  # directories, links, devices: no content of their own
                continue
            member_label = _unique(label + ARCHIVE_SEPARATOR + member.name, seen)
            if member.size > limits.max_member_bytes:
                if not charge_members and member.size > budget.remaining:
                    raise _BudgetSpentError  # skipping it would unpack it: stop before, not after
                detail = f"declares {member.size} bytes, over the limit of {limits.max_member_bytes}: not read"
                yield ScanItem(member_label, problem=_problem(ReasonCode.ARCHIVE_LIMIT, detail))
                continue
            try:
                read = _read_tar_member(archive, member, budget if charge_members else None, limits)
            except _DAMAGED as exc:
                yield _damaged(label, what, exc)
                return
            if isinstance(read, ItemProblem):
                yield ScanItem(member_label, problem=read)
                continue
            yield from _member_items(member_label, read, depth, budget, limits)
            del read


def _open_tar(source: IO[bytes] | _Decompressed) -> tarfile.TarFile:
    """Reads the first header already: a damaged one raises here."""
    return tarfile.open(fileobj=source, mode="r|", tarinfo=_StrictTarInfo)


def _read_tar_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, budget: _Budget | None, limits: ArchiveLimits
) -> bytes | ItemProblem:
    stream = archive.extractfile(member)
    if stream is None:
        return b""
    with stream:
        return _read_capped(stream, limits.max_member_bytes, budget)


def _compressed_items(
    source: IO[bytes], label: str, kind: ArchiveKind, depth: int, budget: _Budget, limits: ArchiveLimits
) -> Iterator[ScanItem]:
    """A gzip, bzip2 or xz stream: a tar inside it is walked as one archive (`x.tar.gz!a.jpg`); anything else is
    its single member, named after the archive (`x.jpg.gz!x.jpg`)."""
    with _decompressor(source, kind) as raw:
        decompressed = _Decompressed(raw, budget)
        try:
            head = decompressed.sniff()
        except _DAMAGED as exc:
            yield _damaged(label, _KIND_NAMES[kind], exc)
            return
        if archive_kind(head) is ArchiveKind.TAR:
            yield from _tar_items(decompressed, label, depth, budget, limits, compression=kind)
            return
        member_label = label + ARCHIVE_SEPARATOR + _decompressed_name(label, kind)
        try:
            read = _read_capped(decompressed, limits.max_member_bytes, None)
        except _DAMAGED as exc:
            yield _damaged(label, _KIND_NAMES[kind], exc)
            return
    if isinstance(read, ItemProblem):
        yield ScanItem(member_label, problem=read)
    else:
        yield from _member_items(member_label, read, depth, budget, limits)


def _decompressor(source: IO[bytes], kind: ArchiveKind) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile:
    """A reading stream of `source` decompressed: none of them closes `source`."""
    if kind is ArchiveKind.GZIP:
        return gzip.GzipFile(fileobj=source, mode="rb")
    if kind is ArchiveKind.BZIP2:
        return bz2.BZ2File(source)
    return lzma.LZMAFile(source)


def _decompressed_name(label: str, kind: ArchiveKind) -> str:
    """`photos.zip!x.jpg.gz` -> `x.jpg`: the archive's own file name, less its compression suffix."""
    name = label.rsplit(ARCHIVE_SEPARATOR, 1)[-1].rsplit("/", 1)[-1]
    for suffix, replacement in _COMPRESSION_SUFFIXES[kind].items():
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)] + replacement
    return name


def _read_up_to(stream: _Reader, count: int) -> bytes:
    """`count` bytes, or all there are: a single read may return fewer (a pipe, a decompressor)."""
    parts: list[bytes] = []
    wanted = count
    while wanted > 0:
        chunk = stream.read(wanted)
        if not chunk:
            break
        parts.append(chunk)
        wanted -= len(chunk)
    return b"".join(parts)


def _read_capped(stream: _Reader, limit: int, budget: _Budget | None) -> bytes | ItemProblem:
    """A member's bytes, or ARCHIVE_LIMIT as soon as it turns out larger than `limit`: its header may have
    declared less (declared sizes lie), so reading stops at limit + 1 bytes whatever it said."""
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(parts)
        if budget is not None:
            budget.charge(len(chunk))
        parts.append(chunk)
        total += len(chunk)
    return _problem(ReasonCode.ARCHIVE_LIMIT, f"over the limit of {limit} bytes: not read to its end")


def _damaged(label: str, what: str, exc: Exception) -> ScanItem:
    """The one item that says an archive could not be read past this point (its members so far stand)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        problem = _problem(ReasonCode.UNREADABLE, _os_words(exc, "cannot be read") + ": the rest not read")
    else:
        detail = f"damaged or truncated {what}: the rest could not be read"
        problem = _problem(ReasonCode.UNDECODABLE, detail)
    return ScanItem(label + ARCHIVE_SEPARATOR, problem=problem)


def _os_words(exc: OSError, what: str) -> str:
    """The operating system's own words (e.g. "Permission denied"), never Python's."""
    return f"{what}: {exc.strerror}" if exc.strerror else what


def _problem(reason: ReasonCode, detail: str) -> ItemProblem:
    return ItemProblem(reason, detail)


def _unique(member_label: str, seen: dict[str, int]) -> str:
    """An archive may hold two members of one name (a zip appended to, a tar with a file added twice): each is
    its own input and needs its own result line, so repeats are named `name#2`, `name#3`, in archive order."""
    count = seen.get(member_label, 0) + 1
    seen[member_label] = count
    return member_label if count == 1 else f"{member_label}#{count}"
