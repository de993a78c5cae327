"""A fork's task history: the parent's finished tasks up to the fork point, copied as new
task rows with their event logs, so the fork reads like the workspace it came from."""

from __future__ import annotations

import sqlalchemy as sa

from evershell.events import services as events
from evershell.events.models import Event
from evershell.extensions import db
from evershell.tasks.models import TERMINAL, Task
from evershell.workspaces.models import Workspace

_COPIED = ("number", "created_by_user_id", "status", "description", "role_version",
           "thinking_effort", "max_continuations", "max_context_tokens", "uploads",
           "result", "failure_code", "failure_reason", "input_tokens", "output_tokens",
           "tool_calls", "model_calls", "queued_at", "started_at", "finished_at")


def terminal_count(workspace_id: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Task).where(
        Task.workspace_id == workspace_id, Task.status.in_(TERMINAL))) or 0


def copy(source: Workspace, child: Workspace, up_to: int) -> None:
    """Copy the first ``up_to`` finished tasks of ``source`` into ``child``."""
    tasks = db.session.scalars(sa.select(Task).where(
        Task.workspace_id == source.id, Task.status.in_(TERMINAL))
        .order_by(Task.number).limit(up_to)).all()
    for original in tasks:
        copied = Task(org_id=child.org_id, workspace_id=child.id,
                      copied_from_task_id=original.id,
                      **{name: getattr(original, name) for name in _COPIED})
        db.session.add(copied)
        db.session.flush()
        for event in db.session.scalars(sa.select(Event).where(
                Event.stream_key == f"task:{original.id}").order_by(Event.number)):
            data = dict(event.data)
            if data.get("task_id") == original.id:
                data["task_id"] = copied.id
            events.append(child.org_id, f"task:{copied.id}", event.type, data)
