"""Enqueuing a task's run once the transaction that queued it commits."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from evershell.core.db import on_commit, utcnow
from evershell.extensions import db, get_queue
from evershell.extensions import job_lost as extensions_job_lost
from evershell.tasks.models import Task

QUEUE = "tasks"
# Seconds a task's job may run (its tool calls have their own wall limits within it).
TIMEOUT = 3600
GRACE_SECONDS = 120


def job_id(task_id: str, attempt: int) -> str:
    return f"task-run-{task_id}-{attempt}"


def job_lost(task_id: str, attempt: int) -> bool:
    """RQ has no live job for this run although the task is still queued."""
    return extensions_job_lost(QUEUE, job_id(task_id, attempt))


def enqueue_run(task: Task) -> None:
    """Queue ``jobs.tasks.run(task_id, attempt)`` after the commit; its deadline is what
    the reaper watches."""
    task.queued_at = utcnow()
    task.job_deadline = utcnow() + timedelta(seconds=TIMEOUT + GRACE_SECONDS)
    app = current_app._get_current_object()
    task_id, attempt = task.id, task.attempt

    def _enqueue() -> None:
        with app.app_context():
            get_queue(QUEUE).enqueue("jobs.tasks.run", task_id, attempt, job_timeout=TIMEOUT,
                                     job_id=job_id(task_id, attempt),
                                     result_ttl=3600, failure_ttl=86400,
                                     description=f"task {task_id} attempt {attempt}")

    on_commit(db.session(), _enqueue)
