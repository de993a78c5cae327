"""Workspace actions on behalf of a caller: create, read, list, stop, start, fork,
archive, unarchive, delete, snapshots and files. The work itself (materialise, snapshot,
restore, destroy) runs in RQ jobs (``runtime``); these functions validate, check the
caller may act on this workspace, move its status (``lifecycle.move``), audit, and
enqueue the job once the transaction has committed.

Rules held here:
- ``:own`` scopes reach only workspaces the caller created: another member's is 403
  ``workspace_not_visible`` to a caller who cannot read it, 403 ``permission_denied`` to
  one who can read but not change it; another org's is 404 ``workspace_not_found``.
- Archived workspaces refuse ``start`` and ``stop`` (409 ``workspace_state_conflict``)
  but allow reads, fork and delete. Archive needs ``stopped`` or ``failed`` (409
  ``workspace_running``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.access.scopes import Scope
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError
from evershell.core.pagination import paginate
from evershell.events import services as events
from evershell.extensions import db
from evershell.roles import usage as role_usage
from evershell.workspaces import environments, hooks, jobs_queue, lifecycle, packset, uids
from evershell.workspaces.models import LIVE, Snapshot, Status, Workspace

S = Scope


@dataclass
class WorkspaceView:
    """A workspace as a read returns it: the row plus what is computed at read time."""

    workspace: Workspace
    pack_status: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.workspace, name)


def not_found(workspace_id: str) -> EvershellError:
    return EvershellError(ErrorCode.WORKSPACE_NOT_FOUND,
                          f"Workspace {workspace_id!r} was not found in this organisation.", 404)


def _load(actor: Principal, workspace_id: str, *, write: bool = False,
          lock: bool = False) -> Workspace:
    query = sa.select(Workspace).where(Workspace.id == workspace_id,
                                       Workspace.org_id == actor.org_id,
                                       Workspace.deleted_at.is_(None))
    workspace = db.session.scalar(query.with_for_update() if lock else query)
    if workspace is None:
        raise not_found(workspace_id)
    authorize(actor, workspace, write=write)
    return workspace


def authorize(actor: Principal, workspace: Workspace, *, write: bool) -> None:
    """The per-object half of ``workspace:read|write[:own]`` (the guard did the rest)."""
    own = workspace.created_by_user_id == actor.user_id
    if not (own or actor.has_org_wide(S.WORKSPACE_READ)):
        raise EvershellError(ErrorCode.WORKSPACE_NOT_VISIBLE,
                             "This workspace belongs to another member; your access "
                             "covers only workspaces you created.", 403,
                             {"workspace_id": workspace.id})
    if write and not (own or actor.has_org_wide(S.WORKSPACE_WRITE)):
        raise EvershellError(ErrorCode.PERMISSION_DENIED,
                             "You can see this workspace but only change your own.", 403,
                             {"workspace_id": workspace.id})


def view(workspace: Workspace) -> WorkspaceView:
    return WorkspaceView(workspace, packset.status_of(workspace))


def _actor_label(actor: Principal) -> str:
    return actor.user_id


# -- create ------------------------------------------------------------------------------

def create(actor: Principal, role_id: str | None = None, role_name: str | None = None,
           environment: str | None = None, cause: str = "create") -> Workspace:
    """A new workspace from a role, ``provisioning`` until its job has materialised it."""
    profile = environments.resolve(environment)
    state = packset.usable_role(actor.org_id, role_id, role_name)
    workspace = Workspace(org_id=actor.org_id, role_id=state.role.id,
                          role_version=state.version.number, environment=profile.name,
                          status=Status.PROVISIONING, created_by_user_id=actor.user_id,
                          attempt=1, sandbox_uid=uids.allocate())
    workspace.job_deadline = jobs_queue.deadline("provision")
    db.session.add(workspace)
    db.session.flush()
    lifecycle.emit_status(workspace, None, Status.PROVISIONING, cause, _actor_label(actor))
    audit.record(actor.org_id, "workspace.create", "workspace", workspace.id, {
        "role_id": state.role.id, "role_version": state.version.number,
        "environment": profile.name, "cause": cause})
    jobs_queue.enqueue_after_commit("provision", workspace.id, workspace.attempt)
    return workspace


# -- reads -------------------------------------------------------------------------------

def get(actor: Principal, workspace_id: str) -> WorkspaceView:
    return view(_load(actor, workspace_id))


def list_workspaces(actor: Principal, *, limit: int, cursor: str | None,
                    status: str | None = None, role_id: str | None = None,
                    mine: bool = False, archived: bool | None = False) -> dict:
    """Workspaces the caller may read, newest first; ``:own`` callers see only theirs."""
    query = sa.select(Workspace).where(Workspace.org_id == actor.org_id,
                                       Workspace.deleted_at.is_(None))
    if mine or not actor.has_org_wide(S.WORKSPACE_READ):
        query = query.where(Workspace.created_by_user_id == actor.user_id)
    if status:
        query = query.where(Workspace.status == status)
    if role_id:
        query = query.where(Workspace.role_id == role_id)
    if archived is not None:
        query = query.where(Workspace.archived_at.is_not(None) if archived
                            else Workspace.archived_at.is_(None))
    page = paginate(db.session, query, Workspace.id, limit, cursor)
    statuses = packset.statuses_of(page["data"])
    return {"data": [WorkspaceView(w, statuses[w.id]) for w in page["data"]],
            "next_cursor": page["next_cursor"]}


def snapshots(actor: Principal, workspace_id: str, limit: int, cursor: str | None) -> dict:
    workspace = _load(actor, workspace_id)
    query = sa.select(Snapshot).where(Snapshot.workspace_id == workspace.id)
    return paginate(db.session, query, Snapshot.id, limit, cursor)


# -- lifecycle ---------------------------------------------------------------------------

def _not_archived(workspace: Workspace, wanted: str) -> None:
    if workspace.archived_at is not None:
        raise lifecycle.conflict(workspace, wanted)


def stop(actor: Principal, workspace_id: str) -> WorkspaceView:
    """``idle`` or ``busy`` → ``stopping``; the job snapshots ``/data`` and frees it."""
    workspace = _load(actor, workspace_id, write=True, lock=True)
    _not_archived(workspace, "stop")
    if workspace.status in LIVE:
        hooks.cancel_running_task(workspace, actor)
    lifecycle.move(workspace, allowed_from=LIVE, to=Status.STOPPING, cause="stop",
                   actor=_actor_label(actor), bump_attempt=True,
                   job_seconds=jobs_queue.timeout("stop"), wanted="stop")
    audit.record(actor.org_id, "workspace.stop", "workspace", workspace.id,
                 {"cause": "stop"})
    jobs_queue.enqueue_after_commit("stop", workspace.id, workspace.attempt)
    return view(workspace)


def start(actor: Principal, workspace_id: str) -> WorkspaceView:
    """``stopped`` (or ``failed`` with a snapshot) → ``provisioning`` from the latest
    snapshot, pinned to the role's current version."""
    workspace = _load(actor, workspace_id, write=True, lock=True)
    _not_archived(workspace, "start")
    allowed = [Status.STOPPED]
    if workspace.status == Status.FAILED and packset.latest_snapshot(workspace) is not None:
        allowed.append(Status.FAILED)
    if workspace.role_id is None:
        raise EvershellError(ErrorCode.ROLE_NOT_FOUND, "The workspace's role was deleted.", 409)
    state = packset.usable_role(actor.org_id, workspace.role_id, None)
    lifecycle.move(workspace, allowed_from=allowed, to=Status.PROVISIONING, cause="start",
                   actor=_actor_label(actor), bump_attempt=True,
                   job_seconds=jobs_queue.timeout("provision"), wanted="start",
                   values={"role_version": state.version.number, "failure_reason": None})
    audit.record(actor.org_id, "workspace.start", "workspace", workspace.id,
                 {"role_version": state.version.number, "cause": "start"})
    jobs_queue.enqueue_after_commit("provision", workspace.id, workspace.attempt)
    return view(workspace)


def fork(actor: Principal, workspace_id: str, snapshot_ref: str | None = None,
         task_count: int | None = None) -> Workspace:
    """A new workspace, owned by the caller, from one of this workspace's snapshots."""
    source = _load(actor, workspace_id)
    if source.status == Status.PROVISIONING:
        raise lifecycle.conflict(source, "fork")
    snapshot = packset.chosen_snapshot(source, snapshot_ref, task_count)
    if source.role_id is None:
        raise EvershellError(ErrorCode.ROLE_NOT_FOUND, "The workspace's role was deleted.", 409)
    state = packset.usable_role(actor.org_id, source.role_id, None)
    child = Workspace(org_id=actor.org_id, role_id=state.role.id,
                      role_version=state.version.number, environment=source.environment,
                      status=Status.PROVISIONING, created_by_user_id=actor.user_id,
                      attempt=1, sandbox_uid=uids.allocate(),
                      parent_workspace_id=source.id, fork_source_snapshot_ref=snapshot.ref,
                      fork_point_task_count=snapshot.task_count,
                      job_deadline=jobs_queue.deadline("provision"))
    db.session.add(child)
    db.session.flush()
    hooks.copy_history(source, child, snapshot.task_count)
    lifecycle.emit_status(child, None, Status.PROVISIONING, "fork", _actor_label(actor),
                          parent_workspace_id=source.id, snapshot_ref=snapshot.ref)
    audit.record(actor.org_id, "workspace.fork", "workspace", child.id, {
        "parent_workspace_id": source.id, "snapshot_ref": snapshot.ref,
        "task_count": snapshot.task_count, "cause": "fork"})
    jobs_queue.enqueue_after_commit("provision", child.id, child.attempt)
    return child


def archive(actor: Principal, workspace_id: str) -> WorkspaceView:
    workspace = _load(actor, workspace_id, write=True, lock=True)
    if workspace.status not in (Status.STOPPED, Status.FAILED):
        raise EvershellError(ErrorCode.WORKSPACE_RUNNING,
                             f"Only a stopped or failed workspace can be archived; this one "
                             f"is {workspace.status}. Stop it first.", 409,
                             {"status": workspace.status})
    if workspace.archived_at is None:
        workspace.archived_at = utcnow()
        audit.record(actor.org_id, "workspace.archive", "workspace", workspace.id,
                     {"cause": "archive"})
    return view(workspace)


def unarchive(actor: Principal, workspace_id: str) -> WorkspaceView:
    workspace = _load(actor, workspace_id, write=True, lock=True)
    if workspace.archived_at is not None:
        workspace.archived_at = None
        audit.record(actor.org_id, "workspace.unarchive", "workspace", workspace.id,
                     {"cause": "unarchive"})
    return view(workspace)


def delete(actor: Principal, workspace_id: str) -> WorkspaceView:
    """Cancel whatever runs, fence every job, and destroy the live directory (a job).
    Snapshots stay until ``evershell gc``'s retention."""
    workspace = _load(actor, workspace_id, write=True, lock=True)
    hooks.cancel_running_task(workspace, actor)
    now = utcnow()
    db.session.execute(sa.update(Workspace).where(Workspace.id == workspace.id).values(
        deleted_at=now, attempt=Workspace.attempt + 1, job_deadline=None, updated_at=now)
        .execution_options(synchronize_session=False))
    db.session.refresh(workspace)
    events.append(workspace.org_id, lifecycle.stream_key(workspace.id),
                  lifecycle.DELETED_EVENT, {"workspace_id": workspace.id,
                                            "status": workspace.status, "cause": "delete",
                                            "actor": _actor_label(actor)})
    audit.record(actor.org_id, "workspace.delete", "workspace", workspace.id,
                 {"status": workspace.status, "cause": "delete"})
    jobs_queue.enqueue_after_commit("destroy", workspace.id, workspace.attempt)
    return view(workspace)


def workspaces_using_role(org_id: str, role_id: str) -> list[str]:
    """Ids of workspaces (not deleted) that use ``role_id``: the roles service refuses
    its delete while there are any (409 ``role_in_use``)."""
    return list(db.session.scalars(sa.select(Workspace.id).where(
        Workspace.org_id == org_id, Workspace.role_id == role_id,
        Workspace.deleted_at.is_(None)).order_by(Workspace.id).limit(20)))



def event_stream(actor: Principal, workspace_id: str, after: str | None):
    """The workspace's ``workspace.status`` stream over SSE, resumed after
    ``Last-Event-ID`` (which wins) or ``?after=``; it ends when the workspace is
    deleted (or after 30 minutes, with a ``retry:`` hint)."""
    from evershell.events import sse

    workspace = _load(actor, workspace_id)

    def finished() -> bool:
        deleted = db.session.scalar(sa.select(Workspace.deleted_at).where(
            Workspace.id == workspace.id))
        db.session.commit()
        return deleted is not None

    return sse.stream(lifecycle.stream_key(workspace.id), after=sse.after_param(after) or 0,
                      terminal_types=set(), is_finished=finished)

role_usage.register("workspaces", workspaces_using_role)


# -- reads for the console ---------------------------------------------------------------

def can_change(actor: Principal, workspace: Workspace) -> bool:
    """Whether ``actor`` may stop, start, archive or delete ``workspace`` (what the
    console shows buttons for: never one that answers 403)."""
    if not actor.has(S.WORKSPACE_WRITE_OWN):
        return False
    return workspace.created_by_user_id == actor.user_id or \
        actor.has_org_wide(S.WORKSPACE_WRITE)



def timeline(actor: Principal, workspace_id: str, limit: int = 200) -> list[dict]:
    """The last ``limit`` events of the workspace's stream, oldest first, as the JSON
    log returns them."""
    from evershell.events import services as events

    workspace = _load(actor, workspace_id)
    key = lifecycle.stream_key(workspace.id)
    newest, _type = events.latest(db.session, key)
    return events.page(key, after=max(newest - limit, 0), limit=limit)["data"]


def all_snapshots(actor: Principal, workspace_id: str, limit: int = 200) -> list[Snapshot]:
    """The workspace's snapshots, newest first (one page; a console has no more room)."""
    return list(snapshots(actor, workspace_id, limit, None)["data"])


def current_states(actor: Principal, workspace_ids: list[str]) -> dict[str, Workspace]:
    """Those of ``workspace_ids`` the caller may read, deleted ones included (a live
    list shows them as deleted), in one query."""
    if not workspace_ids:
        return {}
    query = sa.select(Workspace).where(Workspace.org_id == actor.org_id,
                                       Workspace.id.in_(workspace_ids))
    if not actor.has_org_wide(S.WORKSPACE_READ):
        query = query.where(Workspace.created_by_user_id == actor.user_id)
    return {w.id: w for w in db.session.scalars(query)}


def people(user_ids: set[str | None]) -> dict[str, str]:
    """Email by user id, for owners and actors shown beside workspaces (one query)."""
    from evershell.access.models import User

    wanted = sorted(u for u in user_ids if u)
    if not wanted:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.email).where(
        User.id.in_(wanted))).all())


def role_names(org_id: str) -> dict[str, tuple[str, bool]]:
    """Every role of the org (archived ones too): id → (current name, archived), in
    one query, for naming a workspace's role and the role filter."""
    from evershell.roles.models import Role, RoleVersion

    rows = db.session.execute(
        sa.select(Role.id, RoleVersion.name, Role.archived_at)
        .join(RoleVersion, sa.and_(RoleVersion.role_id == Role.id,
                                   RoleVersion.number == Role.current_version))
        .where(Role.org_id == org_id).order_by(RoleVersion.name))
    return {row.id: (row.name, row.archived_at is not None) for row in rows}


def load_for_task(actor: Principal, workspace_id: str) -> Workspace:
    """A workspace the caller may submit a task to (write access to it), locked."""
    return _load(actor, workspace_id, write=True, lock=True)
