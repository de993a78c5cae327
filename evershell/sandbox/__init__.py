"""Sandboxes: the backend interface, the local bubblewrap backend, limits, archives.

No database access here: the workspace services, the RQ jobs and the agent loop call a
:class:`SandboxBackend` with ids, uids and paths.
"""

from evershell.sandbox.backend import (
    Archive,
    ArchiveRefused,
    ExecResult,
    FileEntry,
    HostNotReady,
    Limits,
    NotLive,
    PackMount,
    PathNotFound,
    PathRefused,
    SandboxBackend,
    SandboxError,
)

__all__ = ["Archive", "ArchiveRefused", "ExecResult", "FileEntry", "HostNotReady", "Limits",
           "NotLive", "PackMount", "PathNotFound", "PathRefused", "SandboxBackend",
           "SandboxError"]
