"""Resolving sandbox paths on the host without ever leaving ``/data``.

The worker reads and writes a workspace's files as root, so a symlink the sandboxed user
planted (``work/x -> /etc/shadow``, or a directory swapped for a link mid-call) must never
take it out of ``/data``. Paths are resolved by the kernel with ``openat2`` and
``RESOLVE_IN_ROOT`` against the workspace directory, which holds nothing but ``data/``:
an absolute link resolves as it would inside the sandbox, ``..`` stops at that root, and
the opened file's real path is checked to be under ``data/`` afterwards. Kernels without
``openat2`` (before 5.6) get a component-by-component walk that refuses every symlink.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat

from evershell.sandbox.backend import PathNotFound, PathRefused

DATA = "/data"
WORK = "/data/work"
WRITABLE_AREAS = ("uploads", "work")

_SYS_OPENAT2 = 437  # the same number on every architecture (generic syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_works: bool | None = None


def sandbox_relative(path: str) -> str:
    """``/data/work/a`` or ``a`` → ``work/a`` (relative to ``/data``), or PathRefused.

    Lexical only (``..`` is folded here, links are the resolver's business); the empty
    string stands for ``/data`` itself.
    """
    if not isinstance(path, str) or "\0" in path:
        raise PathRefused("a path must be a string without NUL bytes")
    absolute = path if path.startswith("/") else posixpath.join(WORK, path or ".")
    normal = posixpath.normpath(absolute)
    if normal.startswith("//"):  # POSIX lets normpath keep a leading double slash
        normal = "/" + normal.lstrip("/")
    if normal == DATA:
        return ""
    if not normal.startswith(DATA + "/"):
        raise PathRefused(f"{path!r} is outside /data")
    return normal[len(DATA) + 1:]


def openat2_available() -> bool:
    """Whether this kernel has ``openat2`` (Linux 5.6+)."""
    global _openat2_works
    if _openat2_works is None:
        try:
            os.close(_openat2(os.open("/", os.O_PATH), ".", os.O_PATH, 0, close_dir=True))
            _openat2_works = True
        except OSError as error:
            if error.errno not in (errno.ENOSYS, errno.EPERM):
                raise
            _openat2_works = False
    return _openat2_works


def _openat2(dir_fd: int, path: str, flags: int, resolve: int, *,
             close_dir: bool = False) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    try:
        fd = _libc.syscall(_SYS_OPENAT2, dir_fd, path.encode(), ctypes.byref(how),
                           ctypes.sizeof(how))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return fd
    finally:
        if close_dir:
            os.close(dir_fd)


def open_beneath(root_fd: int, data_real: str, relative: str, flags: int) -> tuple[int, str]:
    """Open ``data/<relative>`` under the workspace directory ``root_fd`` without leaving
    ``data_real``; returns the fd and the path as the sandbox sees it (``/data/...``)."""
    target = posixpath.join("data", relative) if relative else "data"
    try:
        if openat2_available():
            fd = _openat2(root_fd, target, flags,
                          _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        else:
            fd = _walk_nofollow(root_fd, target, flags)
    except OSError as error:
        raise _refusal(error, relative) from error
    real = os.readlink(f"/proc/self/fd/{fd}")
    if real != data_real and not real.startswith(data_real + "/"):
        os.close(fd)
        raise PathRefused(f"/data/{relative} resolves outside /data")
    return fd, DATA + real[len(data_real):]


def _walk_nofollow(root_fd: int, target: str, flags: int) -> int:
    parts = target.split("/")
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


def _refusal(error: OSError, relative: str) -> Exception:
    shown = f"/data/{relative}".rstrip("/")
    if error.errno == errno.ENOENT:
        return PathNotFound(f"{shown} does not exist")
    if error.errno == errno.ENOTDIR:
        return PathNotFound(f"{shown} is not a directory")
    if error.errno in (errno.ELOOP, errno.EXDEV):
        return PathRefused(f"{shown} goes through a link that leaves /data")
    return PathRefused(f"{shown}: {error.strerror}")


def entry_type(mode: int) -> str:
    """``file``, ``dir``, ``symlink`` or ``other`` for an lstat mode."""
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def open_writable_parent(data_fd: int, relative: str, uid: int) -> tuple[int, str]:
    """The directory that will hold ``relative`` (under uploads/ or work/), created as
    needed and owned by uid; every component must be a real directory, never a link."""
    parts = relative.split("/")
    if len(parts) < 2 or parts[0] not in WRITABLE_AREAS or parts[-1] in ("", ".", ".."):
        raise PathRefused(f"/data/{relative} is not a file under /data/uploads or /data/work")
    fd = os.open(parts[0], os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                 dir_fd=data_fd)
    try:
        for part in parts[1:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
                os.chown(part, uid, uid, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, dir_fd=fd)
            except OSError as error:
                raise PathRefused(f"/data/{relative}: {part!r} is a link or not a "
                                  "directory") from error
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]
