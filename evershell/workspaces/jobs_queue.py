"""Enqueuing lifecycle jobs: after the transaction that asked for them commits (a job
must find the row it was enqueued for), each with a timeout whose deadline the reaper
watches."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from evershell.core.db import on_commit, utcnow
from evershell.extensions import db, get_queue
from evershell.extensions import job_lost as extensions_job_lost

QUEUE = "workspaces"
# Seconds each job may run; the workspace's deadline adds a grace for the queue wait.
TIMEOUTS = {"provision": 600, "stop": 900, "destroy": 300}
GRACE_SECONDS = 120


def timeout(kind: str) -> int:
    return TIMEOUTS[kind] + GRACE_SECONDS


def deadline(kind: str) -> datetime:
    return utcnow() + timedelta(seconds=timeout(kind))


def job_id(kind: str, workspace_id: str, attempt: int) -> str:
    """Known in advance, so the reaper can ask RQ what became of a workspace's job."""
    return f"workspace-{kind}-{workspace_id}-{attempt}"


def job_lost(kind: str, workspace_id: str, attempt: int) -> bool:
    """RQ has no live job for this attempt although the workspace still waits for it."""
    return extensions_job_lost(QUEUE, job_id(kind, workspace_id, attempt))


def enqueue_after_commit(kind: str, workspace_id: str, attempt: int) -> None:
    """Enqueue ``jobs.workspaces.<kind>(workspace_id, attempt)`` once the current
    transaction commits; nothing if it rolls back. If Redis refuses after the commit,
    the deadline passes and the reaper settles the workspace with the reason."""
    app = current_app._get_current_object()

    def _enqueue() -> None:
        with app.app_context():
            get_queue(QUEUE).enqueue(
                f"jobs.workspaces.{kind}", workspace_id, attempt,
                job_id=job_id(kind, workspace_id, attempt),
                job_timeout=TIMEOUTS[kind], result_ttl=3600, failure_ttl=86400,
                description=f"workspace {kind} {workspace_id} attempt {attempt}")

    on_commit(db.session(), _enqueue)
