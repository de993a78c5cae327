"""The sandbox backend this process uses (local bubblewrap today), built once per app."""

from __future__ import annotations

import functools
from pathlib import Path

from flask import current_app

from evershell.roles import capset
from evershell.sandbox.backend import PackMount, SandboxBackend
from evershell.workspaces.packset import PackSource


def backend() -> SandboxBackend:
    app = current_app._get_current_object()
    existing = app.extensions.get("evershell-sandbox")
    if existing is None:
        from evershell.sandbox.local import LocalBackend
        existing = LocalBackend(Path(app.config["SANDBOX_ROOT"]))
        app.extensions["evershell-sandbox"] = existing
    return existing


def _enforcement() -> dict[str, str]:
    from evershell.sandbox import doctor
    return doctor.enforcement()


# GET /v1/capabilities says how this host enforces each limit (roles cannot import us).
capset.enforcement = functools.cache(_enforcement)


def mount(source: PackSource) -> PackMount:
    return PackMount(name=source.name, source=source.directory)
