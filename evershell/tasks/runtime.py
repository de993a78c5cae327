"""A task's run on a worker: workspace ``idle → busy``, uploads into ``/data``, the agent
loop, the outcome, ``busy → idle`` (and a checkpoint snapshot when the caps ask).

Like the workspace jobs, the run carries the task's ``attempt``: every event it appends
and every status it writes is checked against the task's current attempt in the same
transaction, so a run the reaper gave up on (or a cancel fenced) writes nothing more.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa
from flask import current_app

from evershell.agent import loop as agent_loop
from evershell.agent.adapters import adapter_for
from evershell.core.blobs import blob_store
from evershell.core.db import utcnow
from evershell.extensions import db
from evershell.providers import services as providers
from evershell.providers.models import Provider
from evershell.roles.capset import CapabilitySet
from evershell.roles.models import RoleVersion
from evershell.sandbox.backend import Limits
from evershell.secrets.credentials import resolve_for_task
from evershell.secrets.redaction import Redactor
from evershell.secrets.services import secret_values
from evershell.tasks import services, signals, uploads
from evershell.tasks.models import TERMINAL, Task, TaskStatus
from evershell.workspaces import environments, lifecycle, sandboxes
from evershell.workspaces.lifecycle import Fenced
from evershell.workspaces.models import Status, Workspace, WorkspacePack

log = logging.getLogger("evershell.tasks")


def _fenced(task_id: str, attempt: int) -> Task:
    task = db.session.scalar(sa.select(Task).where(Task.id == task_id).with_for_update())
    if task is None or task.attempt != attempt or task.status in TERMINAL:
        raise Fenced(task_id)
    return task


def _start(task_id: str, attempt: int) -> tuple[Task, Workspace]:
    task = _fenced(task_id, attempt)
    if task.status != TaskStatus.QUEUED:
        raise Fenced(task_id)
    workspace = db.session.scalar(sa.select(Workspace).where(
        Workspace.id == task.workspace_id).with_for_update())
    if workspace is None or workspace.deleted_at is not None:
        raise Fenced(task_id)
    lifecycle.move(workspace, allowed_from=[Status.IDLE], to=Status.BUSY, cause="task",
                   actor=None, wanted="run a task in", extra={"task_id": task.id})
    task.status = TaskStatus.RUNNING
    task.started_at = utcnow()
    return task, workspace


def run(task_id: str, attempt: int) -> None:
    """The whole run; ends with the task terminal and the workspace idle again."""
    task, workspace = _start(task_id, attempt)
    context_values = _context(task, workspace)
    services.emit(task, "task.started", {
        "number": task.number, "workspace_id": workspace.id,
        "role_version": task.role_version, "thinking_effort": task.thinking_effort,
        "max_continuations": task.max_continuations,
        "max_context_tokens": task.max_context_tokens, "notes": context_values.pop("notes")})
    # Plain values from here on: no ORM object may open a transaction (on SQLite, the
    # write lock) while the loop runs commands for minutes.
    workspace_id, uid, files = workspace.id, workspace.sandbox_uid, list(task.uploads)
    org_id, per_task = workspace.org_id, context_values.pop("checkpoint")
    db.session.commit()

    backend = sandboxes.backend()
    for upload in files:
        with blob_store(uploads.namespace(task_id)).open(upload["digest"]) as source:
            backend.write_file(workspace_id, uid, f"/data/uploads/{task_id}/{upload['name']}",
                               source.read())
    uploads.remove(task_id)

    cancel = threading.Event()
    watcher = signals.CancelWatcher(current_app._get_current_object(), task_id, cancel)
    watcher.start()
    try:
        outcome = agent_loop.run(agent_loop.LoopContext(
            **context_values, backend=backend, workspace_id=workspace_id, uid=uid,
            emit=_emitter(task_id, attempt), cancel=cancel))
    except Exception as exc:  # the loop's own bug or the sandbox failing: the task fails
        reason = context_values["redactor"].redact(f"The agent loop stopped: {exc}")
        log.error("task %s failed in its loop: %s", task_id, reason)
        outcome = agent_loop.LoopOutcome(status="failed", failure_code="internal_error",
                                         failure_reason=reason)
    finally:
        watcher.stop()
    checkpoint = _checkpoint(backend, org_id, workspace_id) if per_task else None
    _end(task_id, attempt, outcome, checkpoint)


def _checkpoint(backend, org_id: str, workspace_id: str):
    """``checkpoints: per_task``: a snapshot of /data after the task, while the workspace
    is still busy (no next task writes meanwhile). A failed checkpoint is logged; the
    task's own outcome stands."""
    from evershell.workspaces.runtime import store_snapshot
    try:
        return store_snapshot(backend, org_id, workspace_id)
    except Exception:
        log.exception("checkpoint of %s after a task failed", workspace_id)
        return None


def _emitter(task_id: str, attempt: int):
    """Each event in a short transaction of its own, fenced by the attempt."""
    def emit(type_: str, data: dict[str, Any]) -> None:
        task = _fenced(task_id, attempt)
        services.emit(task, type_, data)
        db.session.commit()
    return emit


def _end(task_id: str, attempt: int, outcome, checkpoint=None) -> None:
    task = _fenced(task_id, attempt)
    task.input_tokens += outcome.input_tokens
    task.output_tokens += outcome.output_tokens
    task.tool_calls += outcome.tool_calls
    task.model_calls += outcome.model_calls
    status = {"succeeded": TaskStatus.SUCCEEDED, "failed": TaskStatus.FAILED,
              "cancelled": TaskStatus.CANCELLED}[outcome.status]
    services.finish(task, status, result=outcome.result, failure_code=outcome.failure_code,
                    failure_reason=outcome.failure_reason, cause="cancel",
                    running=outcome.running)
    if checkpoint is not None:
        db.session.flush()
        record_checkpoint(task, checkpoint)
    release_workspace(task)
    db.session.commit()


def record_checkpoint(task: Task, blob) -> None:
    from evershell.tasks.history import terminal_count
    from evershell.workspaces.models import Snapshot
    db.session.add(Snapshot(org_id=task.org_id, workspace_id=task.workspace_id,
                            ref=blob.digest, task_count=terminal_count(task.workspace_id),
                            size_bytes=blob.size, cause="checkpoint"))
    db.session.execute(sa.update(Workspace).where(Workspace.id == task.workspace_id)
                       .values(snapshot_ref=blob.digest, last_snapshot_error=None))


def release_workspace(task: Task) -> None:
    """``busy → idle`` with the task as cause (a stop or delete that came meanwhile has
    already moved it on: then nothing to do)."""
    workspace = db.session.scalar(sa.select(Workspace).where(
        Workspace.id == task.workspace_id).with_for_update())
    if workspace is not None and workspace.status == Status.BUSY \
            and workspace.deleted_at is None:
        lifecycle.move(workspace, allowed_from=[Status.BUSY], to=Status.IDLE,
                       cause="task_ended", actor=None, extra={"task_id": task.id})


def _provider_key(provider: Provider,
                  exposed: dict[str, list[str]]) -> str | None:
    """The provider's API key, added to what the task's redactor hides (a model could
    only echo it if a tool printed it, and nothing would show it then either)."""
    found = providers.api_key(provider)
    if found is None:
        return None  # the adapter fails the task with provider_auth_failed
    name, value = found
    exposed.setdefault(name, []).append(value)
    return value


def _context(task: Task, workspace: Workspace) -> dict[str, Any]:
    """Everything the loop needs, read now, in the run's first transaction."""
    version = db.session.scalar(sa.select(RoleVersion).where(
        RoleVersion.role_id == workspace.role_id, RoleVersion.number == task.role_version))
    provider = db.session.get(Provider, version.provider_id)
    caps = CapabilitySet.from_dict(version.capabilities)
    profile = environments.available().get(workspace.environment) \
        or environments.resolve(None)
    limits = profile.cap(dict(caps.limits))
    secrets = [name for _var, kind, name in caps.env if kind == "secret"]
    credentials = [name for _var, kind, name in caps.env if kind == "credential"]
    values = secret_values(task.org_id, secrets)
    resolved = resolve_for_task(task.org_id, task.created_by_user_id, credentials)
    env = {var: values[name] for var, kind, name in caps.env if kind == "secret"}
    exposed: dict[str, list[str]] = {name: [value] for name, value in values.items()}
    for name, credential in resolved.items():
        env.update(credential.environment())
        exposed[name] = credential.secret_parts()
    history = [(t.description, t.result or "") for t in db.session.scalars(
        sa.select(Task).where(Task.workspace_id == workspace.id,
                              Task.status.in_(TERMINAL), Task.number < task.number)
        .order_by(Task.number))]
    packs = [f"/data/packs/{row.name}/" for row in db.session.scalars(
        sa.select(WorkspacePack).where(WorkspacePack.workspace_id == workspace.id)
        .order_by(WorkspacePack.name))]
    adapter = adapter_for(provider.kind, model=version.model, script=provider.script,
                          base_url=provider.base_url,
                          api_key=_provider_key(provider, exposed))
    return {
        "system_prompt": version.system_prompt, "history": history, "pack_listing": packs,
        "description": task.description,
        "uploads": [f"/data/uploads/{task.id}/{u['name']}" for u in task.uploads],
        "tools": set(caps.tools), "limits": Limits(**limits), "env": env,
        "redactor": Redactor(exposed),
        "adapter": adapter,
        "max_continuations": task.max_continuations,
        "max_context_tokens": task.max_context_tokens,
        "thinking_effort": task.thinking_effort, "notes": adapter.notes(task.thinking_effort),
        "checkpoint": caps.checkpoints == "per_task",
    }
