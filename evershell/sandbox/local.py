"""The local backend: live ``/data`` directories on this node, commands in bubblewrap.

Each workspace is ``<root>/<workspace_id>/data``; the workspace directory is root's and
searchable by the workspace's gid alone, so no other host uid reaches it. bwrap runs *as
the workspace's host uid*: the child drops to that uid between fork and exec, and bwrap,
not being setuid, then builds its namespaces inside a user namespace that maps that uid
to itself. So the sandboxed processes are host uid N (RLIMIT_NPROC and file ownership
bind) with no privilege on the host. bwrap resolves its bind sources by path as uid N
(even ``--bind-fd`` goes through ``/proc/self/fd`` and realpath), so the root and its
parents must be searchable by other users; the constructor checks that.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from evershell.sandbox import archives, cgroups, execution, paths
from evershell.sandbox.backend import (
    Archive,
    ExecResult,
    FileEntry,
    HostNotReady,
    Limits,
    NotLive,
    PackMount,
    PathNotFound,
    PathRefused,
    SandboxError,
)
from evershell.sandbox.bwrap import bwrap_argv, etc_files
from evershell.sandbox.limits import budget_for

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PACK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
MIN_UID = 1000


class LocalBackend:
    """Live workspaces under ``root``; exec cgroups under ``cgroup_parent``."""

    def __init__(self, root: Path | str, *, cgroup_parent: str = "evershell",
                 bwrap: str = "bwrap") -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.root = self.root.resolve()
        # bwrap runs as the workspace's uid and must reach its /data by path: the root is
        # searchable (not listable) by all, each workspace directory by its own gid only.
        self.root.chmod(0o711)
        for parent in self.root.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                raise HostNotReady(f"sandbox root {self.root}: {parent} is not searchable by "
                                   "other users (chmod o+x it, or choose another root)")
        self.cgroup_parent, self.bwrap = cgroup_parent, bwrap

    # -- layout -------------------------------------------------------------------

    def _workspace_dir(self, workspace_id: str) -> Path:
        if not isinstance(workspace_id, str) or not _ID.match(workspace_id):
            raise SandboxError(f"invalid workspace id {workspace_id!r}")
        return self.root / workspace_id

    def live_path(self, workspace_id: str) -> Path:
        """The host directory that is the workspace's ``/data``."""
        return self._workspace_dir(workspace_id) / "data"

    def is_live(self, workspace_id: str) -> bool:
        """True when ``/data`` with its ``uploads/``, ``work/`` and ``packs/`` is there."""
        live = self.live_path(workspace_id)
        try:
            return all(stat.S_ISDIR(os.lstat(p).st_mode)
                       for p in (live, live / "uploads", live / "work", live / "packs"))
        except FileNotFoundError:
            return False

    def _open_root(self, workspace_id: str) -> int:
        try:
            return os.open(self._workspace_dir(workspace_id),
                           os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotLive(f"workspace {workspace_id} is not live on this node") from None

    # -- materialise / destroy ----------------------------------------------------

    def materialise(self, workspace_id: str, uid: int, packs: list[PackMount]) -> None:
        """Create (or complete) the live ``/data`` and put the packs in it afresh.

        ``uploads/`` and ``work/`` are kept if present; ``packs/`` is replaced, copied from
        each pack's source, owned by root and without write bits.
        """
        _check_uid(uid)
        workspace = self._workspace_dir(workspace_id)
        _workspace_dir_for(workspace, uid)
        live = workspace / "data"
        live.mkdir(mode=0o755, exist_ok=True)
        for area in paths.WRITABLE_AREAS:
            (live / area).mkdir(mode=0o755, exist_ok=True)
            os.chown(live / area, uid, uid, follow_symlinks=False)
        _install_packs(live, packs)

    def kill_running(self, workspace_id: str) -> int:
        """Kill every process still running in the workspace's exec cgroups (from any
        process: the reaper calls this for a run whose worker died, whose sandboxed
        commands may have outlived it); how many groups it emptied."""
        groups = list(cgroups.groups_of(self.cgroup_parent, workspace_id))
        for group in groups:
            group.kill_all()
            group.remove()
        return len(groups)

    def destroy(self, workspace_id: str) -> None:
        """Kill every exec of the workspace (from any process) and remove its files."""
        workspace = self._workspace_dir(workspace_id)
        # Moved aside first: an exec that is just starting sees its workspace gone and
        # kills itself, and one already running is in a cgroup we find below.
        doomed = self.root / f".destroying-{workspace_id}-{secrets.token_hex(4)}"
        try:
            os.rename(workspace, doomed)
        except FileNotFoundError:
            doomed = None
        for group in cgroups.groups_of(self.cgroup_parent, workspace_id):
            group.kill_all()
            group.remove()
        if doomed is not None:
            shutil.rmtree(doomed)  # fd-based on Linux: never follows a planted link

    # -- exec -----------------------------------------------------------------------

    def exec(self, workspace_id: str, uid: int, command: str, *, env: dict[str, str],
             limits: Limits, cwd: str = "/data/work",
             on_output: Callable[[bytes], None] | None = None,
             cancel: threading.Event | None = None) -> ExecResult:
        """Run ``/bin/sh -c command`` as host uid ``uid`` in the workspace's sandbox."""
        _check_uid(uid)
        if not self.is_live(workspace_id):
            raise NotLive(f"workspace {workspace_id} is not live on this node")
        budget = budget_for(limits)
        root_fd = self._open_root(workspace_id)
        fds: list[int] = [root_fd]
        try:
            data_real = str(self.live_path(workspace_id).resolve())
            cwd_fd, sandbox_cwd = paths.open_beneath(
                root_fd, data_real, paths.sandbox_relative(cwd),
                os.O_PATH | os.O_DIRECTORY)
            os.close(cwd_fd)
            for name in ("data", "data/uploads", "data/work"):
                fds.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW
                                   | os.O_CLOEXEC, dir_fd=root_fd))
            etc = etc_files(uid)
            fds.extend(fd for fd, _ in etc)
            argv = bwrap_argv(self.bwrap, data_fd=fds[1], uploads_fd=fds[2], work_fd=fds[3],
                              etc=etc, cwd=sandbox_cwd, command=command)
            group = cgroups.ExecGroup.create(
                self.cgroup_parent, workspace_id, memory_bytes=budget.memory_mb << 20,
                pids=budget.processes + execution.BWRAP_PROCESSES)
            try:
                live = self.live_path(workspace_id)
                return execution.run(
                    argv, env=_sandbox_env(env), pass_fds=tuple(fds[1:]), uid=uid,
                    budget=budget, group=group,
                    disk_usage=lambda: sum(_usage(live / a) for a in paths.WRITABLE_AREAS),
                    on_output=on_output, cancel=cancel,
                    gone=lambda: not self.is_live(workspace_id))
            except OSError:
                if not self.is_live(workspace_id):  # destroyed while we were starting
                    raise NotLive(f"workspace {workspace_id} was destroyed") from None
                raise
            finally:
                group.remove()
        finally:
            for fd in fds:
                os.close(fd)

    # -- files ----------------------------------------------------------------------

    def _resolve(self, workspace_id: str, path: str, flags: int) -> tuple[int, str]:
        relative = paths.sandbox_relative(path)
        root_fd = self._open_root(workspace_id)
        try:
            data_real = str(self.live_path(workspace_id).resolve())
            return paths.open_beneath(root_fd, data_real, relative, flags)
        finally:
            os.close(root_fd)

    def list_files(self, workspace_id: str, path: str) -> list[FileEntry]:
        """Entries of a directory under ``/data``, sorted by name; links are reported
        with their target, never followed."""
        fd, shown = self._resolve(workspace_id, path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            entries = []
            with os.scandir(fd) as scan:
                for entry in scan:
                    info = entry.stat(follow_symlinks=False)
                    kind = paths.entry_type(info.st_mode)
                    target = os.readlink(entry.name, dir_fd=fd) if kind == "symlink" else None
                    entries.append(FileEntry(
                        name=entry.name, path=f"{shown.rstrip('/')}/{entry.name}", type=kind,
                        size=info.st_size, mode=stat.S_IMODE(info.st_mode),
                        mtime=info.st_mtime, target=target))
            return sorted(entries, key=lambda e: e.name)
        finally:
            os.close(fd)

    def open_file(self, workspace_id: str, path: str) -> BinaryIO:
        """A regular file under ``/data`` for streamed reading (a FIFO or device is
        refused rather than opened, so a planted FIFO cannot hang the worker)."""
        fd, shown = self._resolve(workspace_id, path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PathNotFound(f"{shown} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def write_file(self, workspace_id: str, uid: int, path: str, data: bytes) -> None:
        """Create or replace a file under ``/data/uploads`` or ``/data/work`` as ``uid``;
        refused under ``/data/packs``, through links, or over another owner's file."""
        _check_uid(uid)
        relative = paths.sandbox_relative(path)
        if relative == "packs" or relative.startswith("packs/"):
            raise PathRefused("/data/packs is read-only")
        if not self.is_live(workspace_id):
            raise NotLive(f"workspace {workspace_id} is not live on this node")
        data_fd = os.open(self.live_path(workspace_id), os.O_PATH | os.O_DIRECTORY
                          | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            parent_fd, name = paths.open_writable_parent(data_fd, relative, uid)
        finally:
            os.close(data_fd)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, 0o644, dir_fd=parent_fd)
        except OSError as error:
            raise PathRefused(f"/data/{relative} cannot be written: {error.strerror}") from None
        finally:
            os.close(parent_fd)
        with os.fdopen(fd, "wb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid not in (0, uid):
                raise PathRefused(f"/data/{relative} is not a file of this workspace")
            os.fchown(fd, uid, uid)
            os.set_blocking(fd, True)
            handle.truncate(0)
            handle.write(data)

    # -- snapshots ------------------------------------------------------------------

    def snapshot(self, workspace_id: str, dest_dir: Path) -> Archive:
        """Archive ``uploads/`` and ``work/`` into ``dest_dir`` (a ``.tar.zst``)."""
        if not self.is_live(workspace_id):
            raise NotLive(f"workspace {workspace_id} is not live on this node")
        return archives.create(self.live_path(workspace_id), Path(dest_dir))

    def restore(self, workspace_id: str, uid: int, archive_path: Path,
                expected_sha256: str, packs: list[PackMount]) -> None:
        """Replace the live ``/data`` with the archive's (hash checked first), packs added.

        Unpacked beside the live directory and swapped in only when complete, so a bad
        archive leaves the workspace as it was.
        """
        _check_uid(uid)
        workspace = self._workspace_dir(workspace_id)
        _workspace_dir_for(workspace, uid)
        staging = workspace / ".restore"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o755)
        try:
            archives.extract(Path(archive_path), expected_sha256, staging, uid)
            for area in paths.WRITABLE_AREAS:
                if not (staging / area).exists():
                    (staging / area).mkdir(mode=0o755)
                    os.chown(staging / area, uid, uid)
            _install_packs(staging, packs)
            for group in cgroups.groups_of(self.cgroup_parent, workspace_id):
                group.kill_all()
                group.remove()
            if (workspace / "data").exists():
                shutil.rmtree(workspace / "data")
            os.rename(staging, workspace / "data")
        finally:
            if staging.exists():
                shutil.rmtree(staging)


def _check_uid(uid: int) -> None:
    if not isinstance(uid, int) or uid < MIN_UID:
        raise SandboxError(f"sandbox uid must be a non-root uid of {MIN_UID} or more")


def _workspace_dir_for(workspace: Path, uid: int) -> None:
    """The workspace directory: root's, searchable by the workspace's gid alone."""
    workspace.mkdir(mode=0o700, exist_ok=True)
    os.chown(workspace, 0, uid, follow_symlinks=False)
    workspace.chmod(0o710)


def _install_packs(live: Path, packs: list[PackMount]) -> None:
    """Copy each pack to ``packs/<name>/`` (root's, read-only), replacing what was there."""
    fresh = live / ".packs-new"
    if fresh.exists():
        shutil.rmtree(fresh)
    fresh.mkdir(mode=0o755)
    for pack in packs:
        if not _PACK.match(pack.name):
            raise SandboxError(f"invalid pack name {pack.name!r}")
        target = fresh / pack.name
        shutil.copytree(pack.source, target, symlinks=True)
        for path in [target, *target.rglob("*")]:
            info = path.lstat()
            if not stat.S_ISLNK(info.st_mode):
                os.chown(path, 0, 0)
                path.chmod(stat.S_IMODE(info.st_mode) & ~0o222 | 0o444
                           | (0o111 if stat.S_ISDIR(info.st_mode) else 0))
    old = live / "packs"
    if old.exists():
        shutil.rmtree(old)
    os.rename(fresh, old)


def _usage(top: Path) -> int:
    """Bytes of disk the tree uses (allocated blocks, so sparse files count as used).

    ``os.fwalk`` walks by directory fds and checks each one it enters is the directory it
    listed: the sandbox may swap a directory for a link to ``/`` while we walk, and must
    not make the worker sum the host's disk."""
    total = 0
    try:
        for _, dirs, files, dir_fd in os.fwalk(top, follow_symlinks=False):
            for name in dirs + files:
                try:
                    total += os.stat(name, dir_fd=dir_fd,
                                     follow_symlinks=False).st_blocks * 512
                except FileNotFoundError:
                    continue  # removed since listed
    except FileNotFoundError:
        pass  # the workspace was destroyed under a running exec
    return total


def _sandbox_env(env: dict[str, str]) -> dict[str, str]:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/data/work", "USER": "sandbox",
            "LOGNAME": "sandbox", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    return {**base, **env}
