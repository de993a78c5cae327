"""Task actions on behalf of a caller: submit (a new workspace and its first task, seed
001), submit the next task into a workspace, read, list, cancel, and the event log.

Permissions (seed 001): submitting needs (``workspace:write`` or ``workspace:write:own``)
and (``tasks:write`` or ``tasks:write:own``); the ``:own`` variants are satisfied because
the submitter owns the new workspace — for a next task, because they own the workspace.
Reads need ``tasks:read`` (org-wide) or ``tasks:read:own`` (tasks in workspaces the caller
owns); another member's task is 403 ``permission_denied`` to an ``:own`` caller, another
org's 404 ``task_not_found``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from evershell.access.principal import Principal
from evershell.access.scopes import Scope
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.pagination import paginate
from evershell.events import services as events
from evershell.extensions import db
from evershell.roles import rules as role_rules
from evershell.tasks import queue, signals, uploads
from evershell.tasks.models import ACTIVE, TERMINAL, Task, TaskStatus
from evershell.workspaces import lifecycle, packset
from evershell.workspaces import services as workspaces
from evershell.workspaces.models import Status, Workspace

S = Scope
MAX_DESCRIPTION = 100_000


def stream_key(task_id: str) -> str:
    return f"task:{task_id}"


def emit(task: Task, type_: str, data: dict[str, Any]) -> None:
    events.append(task.org_id, stream_key(task.id), type_, {"task_id": task.id, **data})


def not_found(task_id: str) -> EvershellError:
    return EvershellError(ErrorCode.TASK_NOT_FOUND,
                          f"Task {task_id!r} was not found in this organisation.", 404)


def _options(role_version, given: dict[str, Any]) -> dict[str, Any]:
    """The task's effort and limits: what it asks for within the global bounds, else the
    role version's defaults."""
    problems: dict[str, list[str]] = {}
    effort = given.get("thinking_effort") or role_version.thinking_effort
    if effort not in ("low", "medium", "high"):
        problems["thinking_effort"] = ["One of low, medium, high."]
    values = {"thinking_effort": effort}
    for name, bounds in (("max_continuations", role_rules.MAX_CONTINUATIONS),
                         ("max_context_tokens", role_rules.MAX_CONTEXT_TOKENS)):
        value = given.get(name)
        if value is None:
            value = getattr(role_version, name)
        elif not bounds[0] <= value <= bounds[1]:
            problems[name] = [f"Must be between {bounds[0]} and {bounds[1]}."]
        values[name] = value
    description = given.get("description")
    if not isinstance(description, str) or not description.strip():
        problems["description"] = ["Describe the task."]
    elif len(description) > MAX_DESCRIPTION:
        problems["description"] = [f"At most {MAX_DESCRIPTION:,} characters."]
    if problems:
        raise validation_error(problems)
    values["description"] = description
    return values


def _new_task(actor: Principal, workspace: Workspace, role_version, given: dict[str, Any],
              files: list[FileStorage], status: str) -> Task:
    options = _options(role_version, given)
    number = (db.session.scalar(sa.select(sa.func.max(Task.number)).where(
        Task.workspace_id == workspace.id)) or 0) + 1
    task = Task(org_id=workspace.org_id, workspace_id=workspace.id, number=number,
                created_by_user_id=actor.user_id, status=status,
                role_version=workspace.role_version, **options)
    try:
        with db.session.begin_nested():
            db.session.add(task)
            db.session.flush()
    except IntegrityError:
        raise EvershellError(ErrorCode.TASK_ALREADY_RUNNING,
                             "This workspace already has a task submitted, queued or "
                             "running; wait for it or cancel it.", 409,
                             {"workspace_id": workspace.id}) from None
    task.uploads = [u.as_dict() for u in uploads.store(task.id, files)]
    emit(task, "task.submitted", {"number": task.number, "description": task.description,
                                  "uploads": [u["name"] for u in task.uploads]})
    audit.record(actor.org_id, "task.submit", "task", task.id, {
        "workspace_id": workspace.id, "number": task.number,
        "uploads": len(task.uploads), "thinking_effort": task.thinking_effort})
    return task


def submit(actor: Principal, given: dict[str, Any], files: list[FileStorage]) -> Task:
    """A new workspace from the role and its first task, in one transaction (seed 001).
    The task waits, ``submitted``, until the workspace is ``idle``."""
    workspace = workspaces.create(actor, given.get("role_id"), given.get("role_name"),
                                  given.get("environment"), cause="task")
    state = packset.usable_role(actor.org_id, workspace.role_id, None)
    return _new_task(actor, workspace, state.version, given, files, TaskStatus.SUBMITTED)


def submit_next(actor: Principal, workspace_id: str, given: dict[str, Any],
                files: list[FileStorage]) -> Task:
    """The next task of a workspace: queued at once when it is idle; a stopped one is
    started first. Busy or not yet settled: 409."""
    workspace = workspaces.load_for_task(actor, workspace_id)
    if workspace.archived_at is not None or workspace.status not in (
            Status.IDLE, Status.STOPPED, Status.BUSY):
        raise lifecycle.conflict(workspace, "submit a task to")
    version = packset.pinned_version(workspace)
    if workspace.status == Status.STOPPED:
        workspaces.start(actor, workspace.id)
        return _new_task(actor, workspace, version, given, files, TaskStatus.SUBMITTED)
    task = _new_task(actor, workspace, version, given, files, TaskStatus.QUEUED)
    queue.enqueue_run(task)
    return task


def on_workspace_idle(workspace: Workspace) -> None:
    """The workspace became idle: its submitted task (if any) is queued now."""
    task = db.session.scalar(sa.select(Task).where(
        Task.workspace_id == workspace.id, Task.status == TaskStatus.SUBMITTED))
    if task is not None:
        task.status = TaskStatus.QUEUED
        queue.enqueue_run(task)


def on_workspace_failed(workspace: Workspace, reason: str) -> None:
    """The workspace could not be provisioned: its waiting task fails with the reason."""
    task = db.session.scalar(sa.select(Task).where(
        Task.workspace_id == workspace.id, Task.status.in_(ACTIVE)))
    if task is not None:
        finish(task, TaskStatus.FAILED, failure_code="workspace_failed",
               failure_reason=reason)


# -- reads -------------------------------------------------------------------------------

def _visible(actor: Principal, task: Task, *, write: bool = False) -> None:
    scope = S.TASKS_WRITE if write else S.TASKS_READ
    if actor.has_org_wide(scope):
        return
    owner = db.session.scalar(sa.select(Workspace.created_by_user_id).where(
        Workspace.id == task.workspace_id))
    if owner != actor.user_id:
        raise EvershellError(ErrorCode.PERMISSION_DENIED,
                             "This task runs in another member's workspace; your access "
                             "covers only tasks in workspaces you created.", 403,
                             {"task_id": task.id})


def load(actor: Principal, task_id: str, *, write: bool = False, lock: bool = False) -> Task:
    query = sa.select(Task).where(Task.id == task_id, Task.org_id == actor.org_id)
    task = db.session.scalar(query.with_for_update() if lock else query)
    if task is None:
        raise not_found(task_id)
    _visible(actor, task, write=write)
    return task


def list_tasks(actor: Principal, *, limit: int, cursor: str | None,
               workspace_id: str | None = None, status: str | None = None,
               mine: bool = False) -> dict:
    query = sa.select(Task).where(Task.org_id == actor.org_id)
    if mine or not actor.has_org_wide(S.TASKS_READ):
        owned = sa.select(Workspace.id).where(Workspace.org_id == actor.org_id,
                                              Workspace.created_by_user_id == actor.user_id)
        query = query.where(Task.workspace_id.in_(owned))
    if workspace_id:
        query = query.where(Task.workspace_id == workspace_id)
    if status:
        query = query.where(Task.status == status)
    return paginate(db.session, query, Task.id, limit, cursor)


def log(actor: Principal, task_id: str, after: int, limit: int) -> dict:
    task = load(actor, task_id)
    return events.page(stream_key(task.id), after=after, limit=limit)


# -- ending ------------------------------------------------------------------------------

def finish(task: Task, status: str, *, result: str | None = None,
           failure_code: str | None = None, failure_reason: str | None = None,
           cause: str | None = None, running: str | None = None) -> None:
    """Move a task to a terminal status with its event (in the caller's transaction)."""
    task.status = status
    task.finished_at = utcnow()
    task.job_deadline = None
    task.result = result if status == TaskStatus.SUCCEEDED else task.result
    task.failure_code, task.failure_reason = failure_code, failure_reason
    data: dict[str, Any] = {"status": status, "input_tokens": task.input_tokens,
                            "output_tokens": task.output_tokens,
                            "tool_calls": task.tool_calls, "model_calls": task.model_calls}
    if status == TaskStatus.SUCCEEDED:
        emit(task, "task.completed", {**data, "result": result})
    elif status == TaskStatus.FAILED:
        emit(task, "task.failed", {**data, "code": failure_code, "reason": failure_reason})
    else:
        emit(task, "task.cancelled", {**data, "cause": cause, "running": running})


def cancel(actor: Principal, task_id: str, cause: str = "cancel") -> Task:
    """Cancel a task: at once when it has not started; a running one is signalled and
    its loop stops, killing what runs in the sandbox."""
    task = load(actor, task_id, write=True, lock=True)
    if task.status in TERMINAL:
        return task
    _cancel(task, actor, cause)
    return task


def _cancel(task: Task, actor: Principal, cause: str) -> None:
    task.cancel_requested_at = utcnow()
    audit.record(actor.org_id, "task.cancel", "task", task.id,
                 {"status": task.status, "cause": cause})
    if task.status == TaskStatus.RUNNING:
        signals.request_cancel_after_commit(task.id)
    else:
        task.attempt += 1  # fences a queued job that has not started yet
        finish(task, TaskStatus.CANCELLED, cause=cause)


def cancel_active(workspace: Workspace, actor: Principal) -> None:
    """``stop`` or ``DELETE`` of a busy workspace cancels its task first (SPEC §7)."""
    task = db.session.scalar(sa.select(Task).where(
        Task.workspace_id == workspace.id, Task.status.in_(ACTIVE)).with_for_update())
    if task is not None:
        _cancel(task, actor, "workspace_stop")


def _register() -> None:
    """Plug tasks into the workspace lifecycle (workspaces cannot import tasks)."""
    from evershell.tasks import history, reaper
    from evershell.workspaces import hooks

    hooks.cancel_running_task = cancel_active
    hooks.on_idle = on_workspace_idle
    hooks.on_failed = on_workspace_failed
    hooks.terminal_task_count = history.terminal_count
    hooks.copy_history = history.copy
    if reaper.sweep not in hooks.sweepers:
        hooks.sweepers.append(reaper.sweep)


_register()


# -- for the console (read-only) ---------------------------------------------------------

def all_events(task: Task) -> list[dict]:
    """The task's whole log, oldest first, as ``events.page`` serialises it."""
    found, after = [], 0
    while True:
        page = events.page(stream_key(task.id), after=after, limit=events.MAX_PAGE)
        found.extend(page["data"])
        if page["next_cursor"] is None:
            return found
        after = int(page["next_cursor"])


def can_cancel(actor: Principal, task: Task) -> bool:
    """Whether ``actor`` may cancel ``task`` now (the console's Cancel button)."""
    if task.status not in ACTIVE or not actor.has(S.TASKS_WRITE_OWN):
        return False
    if actor.has_org_wide(S.TASKS_WRITE):
        return True
    return db.session.scalar(sa.select(Workspace.created_by_user_id).where(
        Workspace.id == task.workspace_id)) == actor.user_id


def can_submit(actor: Principal) -> bool:
    """Seed 001's permissions sentence: may this caller submit tasks at all?"""
    return actor.has(S.WORKSPACE_WRITE_OWN) and actor.has(S.TASKS_WRITE_OWN)


def can_follow_up(actor: Principal, task: Task) -> bool:
    """Whether ``submit_next`` into the task's workspace would be accepted now: the caller
    may write to it, it is idle or stopped, and none of its tasks is active."""
    if not can_submit(actor):
        return False
    workspace = db.session.get(Workspace, task.workspace_id)
    if workspace is None or workspace.deleted_at is not None or \
            workspace.archived_at is not None or \
            workspace.status not in (Status.IDLE, Status.STOPPED):
        return False
    if not workspaces.can_change(actor, workspace):
        return False
    return db.session.scalar(sa.select(sa.func.count()).select_from(Task).where(
        Task.workspace_id == workspace.id, Task.status.in_(ACTIVE))) == 0
