"""What an upload contains: its files' paths, sizes and streams, checked before any byte
is stored.

An upload is either file parts (each part's filename is its path in the pack, e.g.
``docs/a.md``; browsers send the relative path for a ``webkitdirectory`` input) or one
``.tar`` / ``.tar.gz`` / ``.zip`` archive. Either way every path is normalised and checked
(``normalise_path``), archive entries must be regular files or directories (no symbolic
or hard links, devices or FIFOs), and the limits apply. All refusals are collected and
reported together, per path, as one 400 ``validation_error``.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import re
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from flask import current_app

from evershell.config import env
from evershell.core.errors import validation_error

MAX_PATH_BYTES = 255
MAX_DEPTH = 32
MAX_REPORTED_PROBLEMS = 50
_DRIVE = re.compile(r"^[A-Za-z]:")
_MIB = 1024 * 1024
# What reading a damaged archive raises (gzip's error is an OSError: listed by name so
# that the blob store's own OSErrors, a full disk say, still surface as 500s).
READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error,
               lzma.LZMAError, EOFError, NotImplementedError)


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_file_bytes: int
    max_total_bytes: int


def _setting(config_key: str, env_name: str, default: int) -> int:
    value = current_app.config.get(config_key) or env(env_name)
    return int(value) if value else default


def limits() -> Limits:
    """``EVERSHELL_PACK_MAX_FILES`` (10,000), ``EVERSHELL_PACK_MAX_FILE_BYTES`` (25 MiB),
    ``EVERSHELL_PACK_MAX_BYTES`` (100 MiB, all files of a version together); the app
    config keys ``PACK_MAX_FILES`` / ``PACK_MAX_FILE_BYTES`` / ``PACK_MAX_BYTES``
    override them."""
    return Limits(
        max_files=_setting("PACK_MAX_FILES", "EVERSHELL_PACK_MAX_FILES", 10_000),
        max_file_bytes=_setting("PACK_MAX_FILE_BYTES", "EVERSHELL_PACK_MAX_FILE_BYTES",
                                25 * _MIB),
        max_total_bytes=_setting("PACK_MAX_BYTES", "EVERSHELL_PACK_MAX_BYTES", 100 * _MIB))


@dataclass(frozen=True)
class Entry:
    """One file of an upload: ``open()`` returns a fresh stream of its bytes each time."""

    path: str
    size: int
    executable: bool
    open: Callable[[], BinaryIO]


def normalise_path(raw: str | None) -> str:
    """The canonical form of a file path in a pack (``ValueError`` with the reason).

    Refused: empty names, NUL and control characters, backslashes (``C:\\x`` is not a
    path here), absolute paths and drive letters, any ``..`` segment (even one that
    would stay inside, so that no name ever looks like an escape), directory names
    (trailing ``/``), more than 255 bytes or 32 levels. ``./`` and doubled slashes are
    dropped; the result is NFC-normalised so one name has one spelling.
    """
    if not raw:
        raise ValueError("has an empty name")
    if "\x00" in raw:
        raise ValueError("contains a NUL character")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in raw):
        raise ValueError("contains a control character")
    if "\\" in raw:
        raise ValueError("contains a backslash; separate directories with /")
    if raw.startswith("/") or _DRIVE.match(raw):
        raise ValueError("is an absolute path; give it relative to the pack's root")
    segments = raw.split("/")
    if ".." in segments:
        raise ValueError("contains a '..' segment")
    if raw.endswith("/"):
        raise ValueError("names a directory, not a file")
    kept = [segment for segment in segments if segment not in ("", ".")]
    if not kept:
        raise ValueError("names no file")
    path = unicodedata.normalize("NFC", "/".join(kept))
    if len(path.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"is longer than {MAX_PATH_BYTES} bytes")
    if len(kept) > MAX_DEPTH:
        raise ValueError(f"is deeper than {MAX_DEPTH} levels")
    return path


class _Problems:
    """Refusals per path, reported together under the upload's field name."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.by_path: dict[str, list[str]] = {}
        self.general: list[str] = []

    def add(self, path: str | None, reason: str) -> None:
        if len(self.by_path) < MAX_REPORTED_PROBLEMS:
            self.by_path.setdefault(path or "", []).append(reason)

    def raise_if_any(self) -> None:
        if self.general:
            raise validation_error({self.field: self.general}, " ".join(self.general))
        if self.by_path:
            first, reasons = next(iter(self.by_path.items()))
            more = len(self.by_path) - 1
            message = f"{first or '(no name)'} {reasons[0]}" + \
                (f" (and {more} more refused path{'s' if more > 1 else ''})" if more else "")
            raise validation_error({self.field: self.by_path}, f"Upload refused: {message}.")


def _check(entries: list[Entry], problems: _Problems, limit: Limits) -> list[Entry]:
    if not entries and not problems.by_path:
        problems.general.append("The upload holds no files.")
    if len(entries) > limit.max_files:
        problems.general.append(f"A pack version holds at most {limit.max_files} files; "
                                f"this upload has {len(entries)}.")
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            problems.add(entry.path, "appears more than once")
        seen.add(entry.path)
        if entry.size > limit.max_file_bytes:
            problems.add(entry.path, f"is larger than {limit.max_file_bytes} bytes")
    directories = {path.rsplit("/", depth)[0] for path in seen
                   for depth in range(1, path.count("/") + 1)}
    for path in sorted(seen & directories):
        problems.add(path, "is both a file and a directory")
    total = sum(entry.size for entry in entries)
    if total > limit.max_total_bytes:
        problems.general.append(f"A pack version holds at most {limit.max_total_bytes} "
                                f"bytes; these files add up to {total}.")
    problems.raise_if_any()
    return entries


def _size_of(stream: BinaryIO) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _rewound(stream: BinaryIO) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        stream.seek(0)
        return stream
    return opener


def from_files(parts: list[tuple[str | None, BinaryIO]], limit: Limits) -> list[Entry]:
    """Entries of file parts: (filename as sent, its stream)."""
    problems = _Problems("files")
    entries: list[Entry] = []
    for filename, stream in parts:
        try:
            path = normalise_path(filename)
        except ValueError as exc:
            problems.add(filename, str(exc))
            continue
        entries.append(Entry(path, _size_of(stream), False, _rewound(stream)))
    return _check(entries, problems, limit)


def _tar_entries(archive: tarfile.TarFile, problems: _Problems, limit: Limits) -> list[Entry]:
    entries: list[Entry] = []
    for member in archive:
        if len(entries) > limit.max_files:
            break  # already too many: do not read the rest of a huge archive
        kind = _refused_tar_kind(member)
        if kind:
            problems.add(member.name, kind)
            continue
        if member.isdir():
            if member.name not in (".", "./", ""):  # the archive's own root
                _check_directory(member.name, problems)
            continue
        try:
            path = normalise_path(member.name)
        except ValueError as exc:
            problems.add(member.name, str(exc))
            continue
        entries.append(Entry(path, member.size, bool(member.mode & 0o111),
                             lambda m=member: archive.extractfile(m)))
    return entries


def _refused_tar_kind(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return "is a symbolic link; packs hold regular files only"
    if member.islnk():
        return "is a hard link; packs hold regular files only"
    if member.ischr() or member.isblk() or member.isfifo():
        return "is a device or FIFO; packs hold regular files only"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file"
    return None


def _check_directory(name: str, problems: _Problems) -> None:
    """Directory entries hold no data, but one that escapes is refused all the same."""
    try:
        normalise_path(name.rstrip("/"))
    except ValueError as exc:
        problems.add(name, str(exc))


def _zip_entries(archive: zipfile.ZipFile, problems: _Problems, limit: Limits) -> list[Entry]:
    entries: list[Entry] = []
    for info in archive.infolist():
        if len(entries) > limit.max_files:
            break
        # Unix zips keep the file type and permissions in the high bits.
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if stat.S_ISLNK(mode):
            problems.add(info.filename, "is a symbolic link; packs hold regular files only")
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            problems.add(info.filename, "is a device or FIFO; packs hold regular files only")
            continue
        if info.is_dir():
            _check_directory(info.filename, problems)
            continue
        if info.flag_bits & 0x1:
            problems.add(info.filename, "is encrypted")
            continue
        try:
            path = normalise_path(info.filename)
        except ValueError as exc:
            problems.add(info.filename, str(exc))
            continue
        entries.append(Entry(path, info.file_size, bool(mode & 0o111),
                             lambda i=info: archive.open(i)))
    return entries


@contextlib.contextmanager
def from_archive(stream: BinaryIO, limit: Limits) -> Iterator[list[Entry]]:
    """Entries of a ``.tar`` (optionally gzip, bzip2 or xz compressed) or ``.zip``
    archive, detected by content; the archive stays open while the caller reads them."""
    problems = _Problems("archive")
    head = stream.read(4)
    stream.seek(0)
    with contextlib.ExitStack() as stack:
        try:
            if head in (b"PK\x03\x04", b"PK\x05\x06"):
                archive = stack.enter_context(zipfile.ZipFile(stream))
                entries = _zip_entries(archive, problems, limit)
            else:
                archive = stack.enter_context(tarfile.open(fileobj=stream, mode="r:*"))
                entries = _tar_entries(archive, problems, limit)
        except READ_ERRORS as exc:
            raise validation_error(
                {"archive": [f"Not a readable .tar, .tar.gz or .zip archive ({exc})."]},
                "The archive could not be read.") from None
        yield _check(entries, problems, limit)
