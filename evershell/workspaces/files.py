"""Browsing and downloading a live workspace's ``/data`` through the sandbox backend,
which resolves every path beneath ``/data`` and never follows a link out of it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from evershell.access.principal import Principal
from evershell.core.errors import ErrorCode, EvershellError
from evershell.sandbox.backend import PathRefused, SandboxError
from evershell.workspaces import lifecycle, sandboxes, services
from evershell.workspaces.models import LIVE

CHUNK = 256 * 1024


def _live(actor: Principal, workspace_id: str):
    workspace = services.get(actor, workspace_id).workspace
    backend = sandboxes.backend()
    if workspace.status not in LIVE or not backend.is_live(workspace.id):
        raise lifecycle.conflict(workspace, "browse the files of")
    return workspace, backend


def _not_found(path: str, reason: str = "No such file in /data.") -> EvershellError:
    return EvershellError(ErrorCode.FILE_NOT_FOUND, reason, 404, {"path": path})


def listing(actor: Principal, workspace_id: str, path: str) -> dict:
    workspace, backend = _live(actor, workspace_id)
    try:
        entries = backend.list_files(workspace.id, path)
    except PathRefused as exc:
        raise _not_found(path, str(exc)) from None
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, "No such directory in /data.") from None
    except SandboxError as exc:
        raise _not_found(path, str(exc)) from None
    return {"path": path, "data": entries}


def content(actor: Principal, workspace_id: str, path: str) -> tuple[str, Iterator[bytes]]:
    """The file's name and its bytes in chunks (opened now, so a refusal is an error
    response rather than a broken stream)."""
    workspace, backend = _live(actor, workspace_id)
    try:
        handle = backend.open_file(workspace.id, path)
    except PathRefused as exc:
        raise _not_found(path, str(exc)) from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise _not_found(path) from None
    except SandboxError as exc:
        raise _not_found(path, str(exc)) from None

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK):
                yield block

    return path.rstrip("/").rsplit("/", 1)[-1] or "file", chunks()


def disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
