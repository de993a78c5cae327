"""The lifecycle jobs' work, run on RQ workers: provision (fresh, restore or fork),
stop (snapshot), destroy.

Each job carries the ``attempt`` it was enqueued for and works in three steps: read its
workspace under the fence and commit (no lock is held during slow work), do the sandbox
work, then record the outcome in a new transaction that first re-checks the fence. A job
the reaper gave up on, or that a delete overtook, therefore changes no status and
appends no event (``lifecycle.Fenced``), whatever it finishes doing.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from flask import current_app

from evershell.core.blobs import blob_store
from evershell.extensions import db
from evershell.workspaces import hooks, lifecycle, packset, sandboxes
from evershell.workspaces.lifecycle import Fenced
from evershell.workspaces.models import Snapshot, Status, Workspace

log = logging.getLogger("evershell.workspaces")

SNAPSHOT_GONE = ("The live directory was gone when the workspace stopped, so no snapshot "
                 "was saved; earlier snapshots remain listed and restorable.")


def snapshot_store(org_id: str):
    return blob_store(f"snapshots/{org_id}")


def _begin(workspace_id: str, attempt: int, expected: str) -> Workspace:
    workspace = lifecycle.fenced_row(workspace_id, attempt)
    if workspace.status != expected:
        raise Fenced(workspace_id)
    db.session.expunge(workspace)
    db.session.commit()
    return workspace


def _fail(workspace_id: str, attempt: int, reason: str, expected: str) -> None:
    db.session.rollback()
    workspace = lifecycle.fenced_row(workspace_id, attempt)
    lifecycle.move(workspace, allowed_from=[expected], to=Status.FAILED, cause="job_failed",
                   actor=None, attempt=attempt, values={"failure_reason": reason[:2000]})
    hooks.on_failed(workspace, reason[:2000])
    db.session.commit()


def provision(workspace_id: str, attempt: int) -> None:
    """Materialise ``/data`` (restored from the latest snapshot, or the fork's source),
    mount the role's current packs, record them, and go ``idle``."""
    workspace = _begin(workspace_id, attempt, Status.PROVISIONING)
    backend = sandboxes.backend()
    try:
        sources = packset.pack_sources(workspace)
        restore = _restore_point(workspace)
        db.session.commit()  # end the read transaction before the slow part
        mounts = [sandboxes.mount(source) for source in sources]
        if restore is None:
            backend.materialise(workspace.id, workspace.sandbox_uid, mounts)
        else:
            org_id, ref = restore
            with _local_copy(org_id, ref) as archive:
                backend.restore(workspace.id, workspace.sandbox_uid, archive, ref, mounts)
    except Fenced:
        raise
    except Exception as exc:
        log.exception("provisioning %s failed", workspace_id)
        backend.destroy(workspace_id)
        _fail(workspace_id, attempt, f"Provisioning failed: {exc}", Status.PROVISIONING)
        raise
    current = lifecycle.fenced_row(workspace_id, attempt)
    lifecycle.move(current, allowed_from=[Status.PROVISIONING], to=Status.IDLE,
                   cause="provisioned", actor=None, attempt=attempt)
    packset.record_packs(current, sources)
    hooks.on_idle(current)  # a task waiting for this workspace is queued now
    db.session.commit()


def _restore_point(workspace: Workspace) -> tuple[str, str] | None:
    latest = packset.latest_snapshot(workspace)
    if latest is not None:
        return workspace.org_id, latest.ref
    if workspace.fork_source_snapshot_ref:
        return workspace.org_id, workspace.fork_source_snapshot_ref
    return None


class _local_copy:  # noqa: N801 - used as a context manager
    """A snapshot blob as a file on this host (the store's own file when it is local)."""

    def __init__(self, org_id: str, ref: str) -> None:
        self.store, self.ref, self.temp = snapshot_store(org_id), ref, None

    def __enter__(self) -> Path:
        path_of = getattr(self.store, "path_of", None)
        if path_of is not None and path_of(self.ref).is_file():
            return path_of(self.ref)
        handle, name = tempfile.mkstemp(suffix=".tar.zst", dir=_scratch())
        self.temp = Path(name)
        with open(handle, "wb") as sink, self.store.open(self.ref) as source:
            shutil.copyfileobj(source, sink, 1024 * 1024)
        return self.temp

    def __exit__(self, *exc) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


def _scratch() -> Path:
    path = Path(current_app.config["INSTANCE_DIR"]) / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_snapshot(backend, org_id: str, workspace_id: str):
    """Archive the live /data (minus packs) into the blob store; the stored blob."""
    with tempfile.TemporaryDirectory(dir=_scratch()) as scratch:
        archive = backend.snapshot(workspace_id, Path(scratch))
        with open(archive.path, "rb") as source:
            blob = snapshot_store(org_id).put(source)
    if blob.digest != archive.sha256:
        raise RuntimeError("the stored snapshot's hash differs from the archive's")
    return blob


def stop(workspace_id: str, attempt: int) -> None:
    """Snapshot ``/data`` (minus packs) into the blob store, record it, free the live
    directory, and go ``stopped``. A live directory that is gone sets
    ``last_snapshot_error`` and clears ``snapshot_ref``; earlier snapshots stay."""
    workspace = _begin(workspace_id, attempt, Status.STOPPING)
    backend = sandboxes.backend()
    if not backend.is_live(workspace.id):
        current = lifecycle.fenced_row(workspace_id, attempt)
        lifecycle.move(current, allowed_from=[Status.STOPPING], to=Status.STOPPED,
                       cause="stopped", actor=None, attempt=attempt,
                       values={"snapshot_ref": None, "last_snapshot_error": SNAPSHOT_GONE})
        db.session.commit()
        return
    try:
        blob = store_snapshot(backend, workspace.org_id, workspace.id)
    except Fenced:
        raise
    except Exception as exc:
        log.exception("snapshot of %s failed", workspace_id)
        _fail(workspace_id, attempt, f"Snapshot failed: {exc}; the live directory is "
                                     f"kept.", Status.STOPPING)
        raise
    current = lifecycle.fenced_row(workspace_id, attempt)
    db.session.add(Snapshot(org_id=current.org_id, workspace_id=current.id, ref=blob.digest,
                            task_count=hooks.terminal_task_count(current.id),
                            size_bytes=blob.size, cause="stop"))
    lifecycle.move(current, allowed_from=[Status.STOPPING], to=Status.STOPPED,
                   cause="stopped", actor=None, attempt=attempt,
                   values={"snapshot_ref": blob.digest, "last_snapshot_error": None})
    db.session.commit()
    backend.destroy(workspace_id)


def destroy(workspace_id: str, attempt: int) -> None:
    """Free a deleted workspace's live directory and kill anything left running."""
    workspace = db.session.get(Workspace, workspace_id)
    if workspace is None or workspace.deleted_at is None or workspace.attempt != attempt:
        raise Fenced(workspace_id)
    db.session.commit()
    sandboxes.backend().destroy(workspace_id)
