"""Tasks whose run died with its worker: past the run's deadline the task fails with the
reason, its attempt is bumped (the dead run can write nothing more), and its workspace
goes back to ``idle`` when the live directory is intact, else ``failed``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.extensions import db
from evershell.tasks import services
from evershell.tasks.models import Task, TaskStatus
from evershell.workspaces import lifecycle, sandboxes
from evershell.workspaces.models import Status, Workspace

log = logging.getLogger("evershell.reaper")
REASON = ("The task's run did not finish before its deadline: its worker stopped "
          "(killed, or the machine went away).")


def _requeue_waiting() -> dict[str, str]:
    """A task still ``submitted`` although its workspace is idle missed the moment the
    workspace became idle (they are queued in the same transaction that makes it idle,
    so this is a lost enqueue): queue it now."""
    settled = {}
    waiting = list(db.session.scalars(sa.select(Task.id).join(
        Workspace, Workspace.id == Task.workspace_id).where(
        Task.status == TaskStatus.SUBMITTED, Workspace.status == Status.IDLE,
        Workspace.deleted_at.is_(None)).limit(100)))
    db.session.commit()
    for task_id in waiting:
        if _enqueue_if(task_id, lambda t: t.status == TaskStatus.SUBMITTED,
                       lambda t: setattr(t, "status", TaskStatus.QUEUED)):
            settled[task_id] = TaskStatus.QUEUED
            log.warning("reaper queued task %s: its workspace was idle", task_id)
    return settled


def _enqueue_if(task_id: str, still: Callable[[Task], bool],
                change: Callable[[Task], None]) -> bool:
    """Lock the task; if it is ``still`` as it was seen, ``change`` it and enqueue its
    run in one commit. False (and nothing done) when it moved on meanwhile."""
    from evershell.tasks import queue
    task = db.session.scalar(sa.select(Task).where(Task.id == task_id).with_for_update())
    if task is None or not still(task):
        db.session.rollback()
        return False
    change(task)
    queue.enqueue_run(task)
    db.session.commit()
    return True


def _relaunch_lost() -> dict[str, str]:
    """A queued task whose run RQ no longer has gets a new attempt and a new run."""
    from datetime import timedelta

    from evershell.tasks import queue
    settled = {}
    candidates = db.session.execute(sa.select(Task.id, Task.attempt).where(
        Task.status == TaskStatus.QUEUED,
        Task.queued_at < utcnow() - timedelta(seconds=30)).limit(50)).all()
    db.session.commit()
    for task_id, attempt in candidates:
        if not queue.job_lost(task_id, attempt):
            continue
        if _enqueue_if(task_id,
                       lambda t, seen=attempt: t.status == TaskStatus.QUEUED
                       and t.attempt == seen,
                       lambda t: setattr(t, "attempt", t.attempt + 1)):
            settled[task_id] = TaskStatus.QUEUED
            log.warning("reaper relaunched the lost run of task %s", task_id)
    return settled


def sweep() -> dict[str, str]:
    settled = _requeue_waiting()
    settled.update(_relaunch_lost())
    overdue = list(db.session.scalars(sa.select(Task.id).where(
        Task.status.in_([TaskStatus.QUEUED, TaskStatus.RUNNING]),
        Task.job_deadline.is_not(None), Task.job_deadline < utcnow()).limit(100)))
    db.session.commit()
    for task_id in overdue:
        task = db.session.scalar(sa.select(Task).where(Task.id == task_id).with_for_update())
        if task is None or task.status not in (TaskStatus.QUEUED, TaskStatus.RUNNING) \
                or task.job_deadline is None or task.job_deadline >= utcnow():
            db.session.rollback()
            continue
        task.attempt += 1
        services.finish(task, TaskStatus.FAILED, failure_code="worker_lost",
                        failure_reason=REASON)
        workspace = db.session.scalar(sa.select(Workspace).where(
            Workspace.id == task.workspace_id).with_for_update())
        if workspace is not None:
            # The dead run's sandboxed commands may have outlived their worker.
            sandboxes.backend().kill_running(workspace.id)
        if workspace is not None and workspace.status == Status.BUSY:
            intact = sandboxes.backend().is_live(workspace.id)
            lifecycle.move(workspace, allowed_from=[Status.BUSY],
                           to=Status.IDLE if intact else Status.FAILED,
                           cause="reaper", actor=None, extra={"task_id": task.id},
                           values={} if intact else {"failure_reason": REASON})
        db.session.commit()
        settled[task_id] = TaskStatus.FAILED
        log.warning("reaper failed task %s: its run died", task_id)
    return settled
