"""``evershell gc``: what nothing references any more, freed.

- Deleted workspaces past ``EVERSHELL_SNAPSHOT_RETENTION_DAYS``: their rows and their
  snapshot records (until then a deleted workspace's snapshots stay listed).
- Snapshot blobs no snapshot record (nor a fork that has not snapshotted yet) names.
- Pack blobs without a ``pack_blobs`` row: what a failed or interrupted upload left.
- Idempotency keys past their 24 hours.

Blobs younger than ``GRACE`` are kept whatever: a job or an upload may be about to record
the blob it has just stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from evershell.access import idempotency
from evershell.core.blobs import blob_store, namespaces
from evershell.core.db import utcnow
from evershell.extensions import db
from evershell.packs.models import PackBlob
from evershell.workspaces.models import Snapshot, Workspace

GRACE = timedelta(hours=1)


@dataclass
class Freed:
    workspaces: int = 0
    snapshots: int = 0
    snapshot_blobs: int = 0
    pack_blobs: int = 0
    idempotency_keys: int = 0
    bytes: int = 0
    details: list[str] = field(default_factory=list)


def collect(retention_days: int | None = None, grace: timedelta = GRACE) -> Freed:
    """Free everything above; commits as it goes (each step is safe to repeat)."""
    freed = Freed()
    days = current_app.config["SNAPSHOT_RETENTION_DAYS"] if retention_days is None \
        else retention_days
    _expired_workspaces(freed, utcnow() - timedelta(days=days))
    cutoff = time.time() - grace.total_seconds()
    _unreferenced(freed, "snapshots", _snapshot_refs, cutoff, "snapshot_blobs")
    _unreferenced(freed, "packs", _pack_digests, cutoff, "pack_blobs")
    freed.idempotency_keys = idempotency.delete_expired()
    return freed


def _expired_workspaces(freed: Freed, before) -> None:
    doomed = list(db.session.scalars(sa.select(Workspace.id).where(
        Workspace.deleted_at.is_not(None), Workspace.deleted_at < before)))
    for start in range(0, len(doomed), 500):
        batch = doomed[start:start + 500]
        freed.snapshots += db.session.execute(sa.delete(Snapshot).where(
            Snapshot.workspace_id.in_(batch))).rowcount
        db.session.execute(sa.update(Workspace).where(
            Workspace.parent_workspace_id.in_(batch)).values(parent_workspace_id=None))
        freed.workspaces += db.session.execute(sa.delete(Workspace).where(
            Workspace.id.in_(batch))).rowcount
        db.session.commit()


def _snapshot_refs(org_id: str) -> set[str]:
    refs = set(db.session.scalars(sa.select(Snapshot.ref).where(Snapshot.org_id == org_id)))
    refs |= set(db.session.scalars(sa.select(Workspace.fork_source_snapshot_ref).where(
        Workspace.org_id == org_id, Workspace.deleted_at.is_(None),
        Workspace.fork_source_snapshot_ref.is_not(None))))
    return refs


def _pack_digests(org_id: str) -> set[str]:
    return set(db.session.scalars(sa.select(PackBlob.digest).where(PackBlob.org_id == org_id)))


def _unreferenced(freed: Freed, prefix: str, referenced, cutoff: float, counter: str) -> None:
    for namespace in namespaces(prefix):
        org_id = namespace.split("/", 1)[1]
        keep = referenced(org_id)
        db.session.commit()
        store = blob_store(namespace)
        for digest, size, modified in list(store.stored()):
            if digest in keep or modified > cutoff:
                continue
            store.delete(digest)
            setattr(freed, counter, getattr(freed, counter) + 1)
            freed.bytes += size
            freed.details.append(f"{namespace}/{digest} ({size:,} bytes)")
