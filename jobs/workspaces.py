"""Workspace lifecycle jobs (queue ``workspaces``): each takes the workspace id and the
attempt it was enqueued for, and calls one runtime function. A fenced job (the reaper or
a delete took over) ends quietly: it has nothing left to do."""

from __future__ import annotations

import logging

from jobs import job

log = logging.getLogger("evershell.jobs")


def _run(step, workspace_id: str, attempt: int) -> None:
    from evershell.workspaces.lifecycle import Fenced
    try:
        step(workspace_id, attempt)
    except Fenced:
        log.info("%s of %s attempt %s fenced: a newer attempt owns the workspace",
                 step.__name__, workspace_id, attempt)


@job
def provision(workspace_id: str, attempt: int) -> None:
    from evershell.workspaces import runtime
    _run(runtime.provision, workspace_id, attempt)


@job
def stop(workspace_id: str, attempt: int) -> None:
    from evershell.workspaces import runtime
    _run(runtime.stop, workspace_id, attempt)


@job
def destroy(workspace_id: str, attempt: int) -> None:
    from evershell.workspaces import runtime
    _run(runtime.destroy, workspace_id, attempt)
