"""Snapshot archives: ``uploads/`` and ``work/`` of a live ``/data`` as a ``.tar.zst``.

Written and read as streams (a tar stream through a zstd stream, hashed on the way out),
so a 200 MB tree never sits in memory. The tree is walked by directory fds without
following links: links are stored as links, hard links within the tree as hard links,
FIFOs as FIFOs; sockets and devices are left out. Restore checks the archive's sha256
before reading a single member, then unpacks only what could have come from a snapshot:
relative names under ``uploads/`` or ``work/``, no ``..``, no devices, hard links only to
files unpacked earlier, never writing through a link; everything ends up owned by the
restoring workspace's uid.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import tarfile
from pathlib import Path

import zstandard

from evershell.sandbox.backend import Archive, ArchiveRefused

AREAS = ("uploads", "work")
CHUNK = 1 << 20
LEVEL = 3  # zstd's own default: the same work `tar | zstd` does


class _HashingWriter:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, raw) -> None:
        self.raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def create(live: Path, dest_dir: Path) -> Archive:
    """Archive ``live/uploads`` and ``live/work`` into ``dest_dir/<sha256>.tar.zst``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest_dir / f".snapshot-{secrets.token_hex(8)}.part"
    try:
        with open(part, "wb") as raw:
            out = _HashingWriter(raw)
            with zstandard.ZstdCompressor(level=LEVEL).stream_writer(out, closefd=False) as zw, \
                    tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT,
                                 bufsize=CHUNK, copybufsize=CHUNK) as tar:
                count = sum(_add_area(tar, live, area) for area in AREAS)
        final = dest_dir / f"{out.hash.hexdigest()}.tar.zst"
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    return Archive(path=final, sha256=out.hash.hexdigest(), size=out.size, members=count)


def _add_area(tar: tarfile.TarFile, live: Path, area: str) -> int:
    if not (live / area).is_dir():
        return 0
    count = 0
    seen_inodes: dict[tuple[int, int], str] = {}
    base = len(str(live)) + 1
    for top, dirs, files, top_fd in os.fwalk(live / area, follow_symlinks=False):
        dirs.sort()
        prefix = top[base:]
        tar.addfile(_info(prefix, os.fstat(top_fd)))  # a directory, before its entries
        count += 1
        for name in sorted(dirs + files):
            info = os.stat(name, dir_fd=top_fd, follow_symlinks=False)
            member = _info(f"{prefix}/{name}", info)
            if stat.S_ISDIR(info.st_mode):
                continue  # added when fwalk enters it (links to dirs are not entered)
            if stat.S_ISLNK(info.st_mode):
                member.type, member.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=top_fd)
                tar.addfile(member)
            elif stat.S_ISFIFO(info.st_mode):
                member.type = tarfile.FIFOTYPE
                tar.addfile(member)
            elif stat.S_ISREG(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in seen_inodes:
                    member.type, member.linkname, member.size = (
                        tarfile.LNKTYPE, seen_inodes[key], 0)
                    tar.addfile(member)
                else:
                    seen_inodes[key] = member.name
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=top_fd)
                    with os.fdopen(fd, "rb") as handle:
                        member.size = os.fstat(fd).st_size
                        tar.addfile(member, handle)
            else:
                continue  # sockets and devices are not workspace content
            count += 1
    return count


def _info(name: str, info: os.stat_result) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.mode = stat.S_IMODE(info.st_mode)
    member.mtime = info.st_mtime
    member.uid, member.gid = info.st_uid, info.st_gid
    member.type = tarfile.DIRTYPE if stat.S_ISDIR(info.st_mode) else tarfile.REGTYPE
    return member


def file_sha256(handle) -> str:
    """The sha256 of an open file from its start, read in chunks."""
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def extract(archive_path: Path, expected_sha256: str, dest: Path, uid: int) -> int:
    """Unpack a verified archive into the empty directory ``dest`` as ``uid``'s files.

    The hash is checked on the same open file that is then unpacked, so the archive
    cannot change between the check and the reading. Returns the number of members.
    """
    with open(archive_path, "rb") as handle:
        actual = file_sha256(handle)
        if not hmac.compare_digest(actual, expected_sha256.lower()):
            raise ArchiveRefused(f"archive hash {actual} does not match {expected_sha256}")
        handle.seek(0)
        dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(handle, read_size=CHUNK)
            with reader, tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:
                return _Unpacker(dest_fd, uid).run(tar)
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as error:
            raise ArchiveRefused(f"archive is not a readable snapshot: {error}") from error
        finally:
            os.close(dest_fd)


def _member_path(name: str) -> list[str]:
    """The member's path components, or ArchiveRefused when it is not a plain name under
    ``uploads/`` or ``work/``."""
    if "\0" in name or name.startswith("/"):
        raise ArchiveRefused(f"archive member {name!r} has an absolute path")
    parts = [p for p in name.removeprefix("./").rstrip("/").split("/")]
    if any(p in ("", ".", "..") for p in parts):
        raise ArchiveRefused(f"archive member {name!r} escapes /data")
    if parts[0] not in AREAS:
        raise ArchiveRefused(f"archive member {name!r} is not under uploads/ or work/")
    return parts


class _Unpacker:
    def __init__(self, dest_fd: int, uid: int) -> None:
        self.dest_fd, self.uid = dest_fd, uid
        self.files: set[str] = set()
        self.dirs: list[tuple[list[str], int, float]] = []

    def run(self, tar: tarfile.TarFile) -> int:
        count = 0
        for member in tar:
            if member.name.removeprefix("./").rstrip("/") in ("", "."):
                continue
            parts = _member_path(member.name)
            parent_fd = self._parent(parts)
            try:
                self._one(tar, member, parts, parent_fd)
            finally:
                os.close(parent_fd)
            count += 1
        # Directories last, deepest first: writing their entries changed their mtimes.
        for parts, mode, mtime in sorted(self.dirs, key=lambda d: -len(d[0])):
            fd = self._open_dir(parts)
            try:
                os.fchmod(fd, mode)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
        return count

    def _open_dir(self, parts: list[str], create: bool = False) -> int:
        fd = os.dup(self.dest_fd)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o700, dir_fd=fd)
                        os.chown(part, self.uid, self.uid, dir_fd=fd, follow_symlinks=False)
                    except FileExistsError:
                        pass
                try:
                    next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                      | os.O_CLOEXEC, dir_fd=fd)
                except OSError as error:  # a link or a file where a directory must be
                    raise ArchiveRefused(f"archive writes through {part!r}, which is not "
                                         "a directory") from error
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, parts: list[str]) -> int:
        return self._open_dir(parts[:-1], create=True)

    def _one(self, tar, member: tarfile.TarInfo, parts: list[str], parent_fd: int) -> None:
        name, uid, mode = parts[-1], self.uid, member.mode & 0o7777
        try:
            if member.isdir():
                try:
                    os.mkdir(name, 0o700, dir_fd=parent_fd)
                except FileExistsError:
                    pass
                os.chown(name, uid, uid, dir_fd=parent_fd, follow_symlinks=False)
                self.dirs.append((parts, mode, member.mtime))
            elif member.isreg():
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600, dir_fd=parent_fd)
                with os.fdopen(fd, "wb") as out, tar.extractfile(member) as data:
                    while chunk := data.read(CHUNK):
                        out.write(chunk)
                    out.flush()
                    os.fchown(fd, uid, uid)
                    os.fchmod(fd, mode)  # after chown, which would clear set-id bits
                    os.utime(fd, (member.mtime, member.mtime))
                self.files.add("/".join(parts))
            elif member.issym():
                os.symlink(member.linkname, name, dir_fd=parent_fd)
                os.chown(name, uid, uid, dir_fd=parent_fd, follow_symlinks=False)
                os.utime(name, (member.mtime, member.mtime), dir_fd=parent_fd,
                         follow_symlinks=False)
            elif member.islnk():
                self._hard_link(member, name, parent_fd)
            elif member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=parent_fd)
                os.chown(name, uid, uid, dir_fd=parent_fd, follow_symlinks=False)
                os.chmod(name, mode, dir_fd=parent_fd)  # mkfifo's mode passes the umask
                os.utime(name, (member.mtime, member.mtime), dir_fd=parent_fd)
            else:
                raise ArchiveRefused(f"archive member {member.name!r} is a device or "
                                     "another kind of file a snapshot never holds")
        except FileExistsError as error:
            raise ArchiveRefused(f"archive member {member.name!r} appears twice") from error

    def _hard_link(self, member: tarfile.TarInfo, name: str, parent_fd: int) -> None:
        source = _member_path(member.linkname)
        if "/".join(source) not in self.files:
            raise ArchiveRefused(f"archive member {member.name!r} links to "
                                 f"{member.linkname!r}, outside what was unpacked")
        source_fd = self._open_dir(source[:-1])
        try:
            os.link(source[-1], name, src_dir_fd=source_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False)
        finally:
            os.close(source_fd)
