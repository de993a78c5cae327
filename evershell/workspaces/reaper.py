"""Settling workspaces whose job died with its worker (``kill -9``, a lost machine).

A workspace in ``provisioning`` or ``stopping`` past its job's deadline is settled in a
transaction of its own: back to ``idle`` when its live directory is intact (a stop that
never snapshotted loses nothing; a provision that had finished materialising is usable),
else ``failed`` with the reason. The move bumps the attempt, so the dead job — should
it come back — can change no status and append no event.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.extensions import db
from evershell.workspaces import hooks, jobs_queue, lifecycle, sandboxes
from evershell.workspaces.models import IN_FLIGHT, Status, Workspace

log = logging.getLogger("evershell.reaper")


def overdue_ids(limit: int = 100) -> list[str]:
    return list(db.session.scalars(sa.select(Workspace.id).where(
        Workspace.status.in_(IN_FLIGHT), Workspace.deleted_at.is_(None),
        Workspace.job_deadline.is_not(None), Workspace.job_deadline < utcnow())
        .order_by(Workspace.job_deadline).limit(limit)))


def settle(workspace_id: str) -> str | None:
    """Settle one overdue workspace; the status it was moved to, or None if it no
    longer needed settling (its job finished meanwhile)."""
    workspace = db.session.scalar(sa.select(Workspace).where(
        Workspace.id == workspace_id).with_for_update())
    if workspace is None or workspace.deleted_at is not None \
            or workspace.status not in IN_FLIGHT or workspace.job_deadline is None \
            or workspace.job_deadline >= utcnow():
        db.session.rollback()
        return None
    backend = sandboxes.backend()
    backend.kill_running(workspace.id)  # what the dead job's commands left running
    intact = backend.is_live(workspace.id)
    was = workspace.status
    job = "provisioning" if was == Status.PROVISIONING else "stop"
    if intact:
        to, values = Status.IDLE, {}
    else:
        to = Status.FAILED
        values = {"failure_reason": f"The {job} job did not finish before its deadline "
                                    f"(its worker stopped); the live directory is gone."}
    lifecycle.move(workspace, allowed_from=[was], to=to, cause="reaper", actor=None,
                   bump_attempt=True, values=values)
    db.session.commit()
    log.warning("reaper settled workspace %s: %s → %s", workspace_id, was, to)
    return to


LOST_AFTER = timedelta(seconds=30)


def _relaunch_lost() -> dict[str, str]:
    """A provisioning workspace whose job RQ no longer has (a failed enqueue, a job lost
    with its worker) gets a new attempt and a new job now, not at its deadline."""
    relaunched = {}
    candidates = list(db.session.scalars(sa.select(Workspace).where(
        Workspace.status == Status.PROVISIONING, Workspace.deleted_at.is_(None),
        Workspace.status_changed_at < utcnow() - LOST_AFTER).limit(50)))
    lost = [w.id for w in candidates if jobs_queue.job_lost("provision", w.id, w.attempt)]
    db.session.commit()
    for workspace_id in lost:
        workspace = db.session.scalar(sa.select(Workspace).where(
            Workspace.id == workspace_id).with_for_update())
        if workspace is None or workspace.status != Status.PROVISIONING \
                or not jobs_queue.job_lost("provision", workspace.id, workspace.attempt):
            db.session.rollback()
            continue
        workspace.attempt += 1
        workspace.job_deadline = jobs_queue.deadline("provision")
        workspace.status_changed_at = utcnow()
        jobs_queue.enqueue_after_commit("provision", workspace.id, workspace.attempt)
        db.session.commit()
        relaunched[workspace_id] = "provisioning"
        log.warning("reaper relaunched the lost provisioning job of %s", workspace_id)
    return relaunched


def sweep() -> dict[str, str]:
    """Settle every overdue workspace; what each became."""
    settled = {}
    for sweeper in hooks.sweepers:  # tasks first: a dead task's workspace is busy
        settled.update(sweeper())
    settled.update(_relaunch_lost())
    for workspace_id in overdue_ids():
        outcome = settle(workspace_id)
        if outcome is not None:
            settled[workspace_id] = outcome
    return settled
