"""`evershell gc`: deleted workspaces past the retention, unreferenced blobs, and nothing
that anything still names."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from evershell import gc
from evershell.core.blobs import blob_store
from evershell.workspaces.models import Snapshot, Workspace
from tests.workspaces.conftest import create, run_jobs


def _stopped(client, owner, role) -> str:
    workspace_id = create(client, owner.headers, role).get_json()["id"]
    run_jobs()
    client.post(f"/v1/workspaces/{workspace_id}/stop", headers=owner.headers)
    run_jobs()
    return workspace_id


def test_gc_frees_deleted_workspaces_and_unreferenced_blobs_only(client, session, owner,
                                                                  role):
    kept_id = _stopped(client, owner, role)
    doomed_id = _stopped(client, owner, role)
    kept_ref = session.get(Workspace, kept_id).snapshot_ref
    doomed_ref = session.get(Workspace, doomed_id).snapshot_ref
    assert client.delete(f"/v1/workspaces/{doomed_id}", headers=owner.headers).status_code \
        == 202
    run_jobs()
    org_id = owner.membership.org_id
    stray = blob_store(f"packs/{org_id}").put(b"an upload that failed half way")

    snapshots = blob_store(f"snapshots/{org_id}")
    # Within the retention, and blobs younger than the grace: nothing of ours goes.
    gc.collect(retention_days=30)
    assert session.get(Workspace, doomed_id) is not None
    assert snapshots.exists(doomed_ref)
    assert blob_store(f"packs/{org_id}").exists(stray.digest)

    # (Counts include what other tests' rolled-back uploads left in the shared store.)
    freed = gc.collect(retention_days=0, grace=timedelta(0))
    assert freed.workspaces >= 1 and freed.snapshots >= 1
    assert freed.pack_blobs >= 1 and freed.bytes > 0
    if doomed_ref != kept_ref:  # identical content shares one blob
        assert not snapshots.exists(doomed_ref)
    assert snapshots.exists(kept_ref)
    assert not blob_store(f"packs/{org_id}").exists(stray.digest)
    assert session.get(Workspace, doomed_id) is None
    assert session.scalar(sa.select(sa.func.count()).select_from(Snapshot).where(
        Snapshot.workspace_id == kept_id)) == 1
    # The live one still starts from its snapshot.
    assert client.post(f"/v1/workspaces/{kept_id}/start",
                       headers=owner.headers).status_code == 202
    run_jobs()
    assert session.get(Workspace, kept_id).status == "idle"
