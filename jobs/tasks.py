"""Task jobs (queue ``tasks``): run one task's agent loop. A fenced run (cancelled before
it started, or given up by the reaper) ends quietly."""

from __future__ import annotations

import logging

from jobs import job

log = logging.getLogger("evershell.jobs")


@job
def run(task_id: str, attempt: int) -> None:
    from evershell.tasks import runtime
    from evershell.workspaces.lifecycle import Fenced
    try:
        runtime.run(task_id, attempt)
    except Fenced:
        log.info("task %s attempt %s fenced: cancelled or settled meanwhile", task_id, attempt)
