"""The sandbox backend interface and its value types.

A backend owns the *live* ``/data`` of each workspace (``uploads/`` and ``work/``
writable by the workspace's uid, ``packs/<name>/`` read-only), runs commands against it
under limits, and turns it into snapshot archives and back. It never touches the
database: the workspace services and RQ jobs call it with ids, uids and paths.

Paths given by callers are absolute under ``/data`` or relative to ``/data/work``;
anything that resolves outside ``/data`` raises :class:`PathRefused`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

LIMIT_NAMES = ("memory", "cpu", "wall", "processes", "disk", "output")


class SandboxError(Exception):
    """Anything a sandbox backend refuses or cannot do."""


class PathRefused(SandboxError):
    """A path that resolves outside ``/data`` (or somewhere the call may not write)."""


class PathNotFound(SandboxError):
    """A path under ``/data`` that does not exist (or is not of the kind asked for)."""


class NotLive(SandboxError):
    """The workspace has no live ``/data`` on this node."""


class ArchiveRefused(SandboxError):
    """A snapshot archive whose hash does not match or that holds an unsafe member."""


class HostNotReady(SandboxError):
    """This host lacks something the backend needs (a package, a kernel setting)."""


@dataclass(frozen=True)
class Limits:
    """Per-exec limits, named as in caps.yaml ``limits``; None = the backend default."""

    cpu_seconds: int | None = None
    wall_seconds: int | None = None
    memory_mb: int | None = None
    processes: int | None = None
    disk_mb: int | None = None
    max_output_bytes: int | None = None


@dataclass(frozen=True)
class ExecResult:
    """What one command did. ``limit`` names the limit that stopped or cut it, if any.

    ``exit_code`` is shell-style (128 + N when a signal ended the command), or None when
    the sandbox itself had to be killed before it could report one.
    """

    exit_code: int | None
    duration_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int | None
    limit: str | None
    output: bytes
    output_truncated: bool
    cancelled: bool
    output_bytes_total: int = 0


@dataclass(frozen=True)
class FileEntry:
    """One directory entry under ``/data``; ``type`` is file, dir, symlink or other."""

    name: str
    path: str
    type: str
    size: int
    mode: int
    mtime: float
    target: str | None = None


@dataclass(frozen=True)
class PackMount:
    """A pack to place read-only at ``/data/packs/<name>/``, copied from ``source``."""

    name: str
    source: Path


@dataclass(frozen=True)
class Archive:
    """A snapshot archive on disk (``.tar.zst``) with its content hash and size."""

    path: Path
    sha256: str
    size: int
    members: int = field(default=0, compare=False)


@runtime_checkable
class SandboxBackend(Protocol):
    """What the workspace lifecycle, the RQ jobs and the agent loop call."""

    def materialise(self, workspace_id: str, uid: int, packs: list[PackMount]) -> None:
        """Create the live ``/data`` (``uploads/``, ``work/`` for ``uid``; packs read-only)."""

    def is_live(self, workspace_id: str) -> bool:
        """Whether the workspace's live ``/data`` exists and is intact on this node."""

    def live_path(self, workspace_id: str) -> Path:
        """The host directory that is the workspace's ``/data``."""

    def exec(self, workspace_id: str, uid: int, command: str, *, env: dict[str, str],
             limits: Limits, cwd: str = "/data/work",
             on_output: Callable[[bytes], None] | None = None,
             cancel: threading.Event | None = None) -> ExecResult:
        """Run ``/bin/sh -c command`` in the sandbox as ``uid``; blocks until it ends."""

    def list_files(self, workspace_id: str, path: str) -> list[FileEntry]:
        """The entries of a directory under ``/data`` (links listed, never followed out)."""

    def open_file(self, workspace_id: str, path: str) -> BinaryIO:
        """A regular file under ``/data``, opened for streaming reads."""

    def write_file(self, workspace_id: str, uid: int, path: str, data: bytes) -> None:
        """Create or replace a file under ``/data/work`` or ``/data/uploads``, owned by uid."""

    def snapshot(self, workspace_id: str, dest_dir: Path) -> Archive:
        """Archive ``/data`` minus ``packs/`` into ``dest_dir`` as a ``.tar.zst``."""

    def restore(self, workspace_id: str, uid: int, archive_path: Path,
                expected_sha256: str, packs: list[PackMount]) -> None:
        """Make the live ``/data`` from a verified archive plus packs; files go to uid."""

    def kill_running(self, workspace_id: str) -> int:
        """Kill whatever still runs for the workspace (a dead worker's commands)."""
        ...

    def destroy(self, workspace_id: str) -> None:
        """Kill anything running for the workspace and remove its live ``/data``."""
