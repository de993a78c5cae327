"""The one way a workspace's status changes: a conditional update, and its event.

``move`` reads the row, checks the transition is legal, then issues one
``UPDATE … WHERE id = :id AND status = :seen AND attempt = :attempt`` — so two requests,
two workers, or a request and the reaper can never both move a workspace: the loser's
update matches no row and it gets 409 ``workspace_state_conflict`` (or, for a job, a
quiet ``Fenced``). The ``workspace.status`` event (``from``, ``to``, ``cause``, ``actor``)
is appended in the same transaction, so the stream never shows a move that rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError
from evershell.events import services as events
from evershell.extensions import db
from evershell.workspaces.models import Workspace

STATUS_EVENT = "workspace.status"
DELETED_EVENT = "workspace.deleted"


class Fenced(Exception):  # noqa: N818 - a signal, not an error
    """A job's attempt is no longer current (the reaper or a newer job took over)."""


def stream_key(workspace_id: str) -> str:
    return f"workspace:{workspace_id}"


def conflict(workspace: Workspace, wanted: str) -> EvershellError:
    return EvershellError(
        ErrorCode.WORKSPACE_STATE_CONFLICT,
        f"Cannot {wanted} a workspace that is {workspace.status}"
        f"{' (archived)' if workspace.archived_at else ''}.", 409,
        {"status": workspace.status, "archived": workspace.archived_at is not None})


def move(workspace: Workspace, *, allowed_from: Iterable[str], to: str, cause: str,
         actor: str | None, attempt: int | None = None, bump_attempt: bool = False,
         job_seconds: int | None = None, values: dict[str, Any] | None = None,
         wanted: str | None = None, extra: dict[str, Any] | None = None) -> Workspace:
    """Move ``workspace`` to ``to`` if its status is one of ``allowed_from``.

    ``attempt`` fences a job: the move happens only while it is still the current attempt
    (else ``Fenced``). ``bump_attempt`` starts a new attempt (a new job is about to be
    enqueued for it). ``job_seconds`` sets the deadline by which that job must be done,
    after which the reaper settles the workspace. Requests get 409
    ``workspace_state_conflict`` with the current status when the move is illegal.
    """
    seen, seen_attempt = workspace.status, workspace.attempt
    if attempt is not None and attempt != seen_attempt:
        raise Fenced(workspace.id)
    if seen not in set(allowed_from) or workspace.deleted_at is not None:
        if attempt is not None:
            raise Fenced(workspace.id)
        raise conflict(workspace, wanted or f"move to {to}")
    now = utcnow()
    changes: dict[str, Any] = {"status": to, "status_changed_at": now, "updated_at": now,
                               **(values or {})}
    if bump_attempt:
        changes["attempt"] = seen_attempt + 1
    changes["job_deadline"] = now + timedelta(seconds=job_seconds) if job_seconds else None
    result = db.session.execute(
        sa.update(Workspace).where(
            Workspace.id == workspace.id, Workspace.status == seen,
            Workspace.attempt == seen_attempt, Workspace.deleted_at.is_(None))
        .values(**changes).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.refresh(workspace)
        if attempt is not None:
            raise Fenced(workspace.id)
        raise conflict(workspace, wanted or f"move to {to}")
    for name, value in changes.items():
        setattr(workspace, name, value)
    # The ORM must not write these again from its own copy.
    db.session.expire(workspace, ["updated_at"])
    emit_status(workspace, seen, to, cause, actor, **(extra or {}))
    return workspace


def emit_status(workspace: Workspace, before: str | None, after: str, cause: str,
                actor: str | None, **extra: Any) -> None:
    events.append(workspace.org_id, stream_key(workspace.id), STATUS_EVENT, {
        "workspace_id": workspace.id, "from": before, "to": after, "cause": cause,
        "actor": actor, **extra})


def fenced_row(workspace_id: str, attempt: int, *, lock: bool = True) -> Workspace:
    """The workspace a job works on, still at ``attempt`` (else ``Fenced``)."""
    query = sa.select(Workspace).where(Workspace.id == workspace_id)
    if lock:
        query = query.with_for_update()
    workspace = db.session.scalar(query)
    if workspace is None or workspace.attempt != attempt or workspace.deleted_at is not None:
        raise Fenced(workspace_id)
    return workspace
