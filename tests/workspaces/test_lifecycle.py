"""The workspace lifecycle through /v1, with real jobs and real bubblewrap."""

from __future__ import annotations

import io
import shutil
from datetime import timedelta

import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.events.models import Event
from evershell.workspaces import reaper, sandboxes
from evershell.workspaces.models import Workspace
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.roles.conftest import make_role
from tests.workspaces.conftest import create, queued, run_jobs

SEED_004_FIELDS = {"id", "org_id", "role_id", "environment", "status", "created_by_user_id",
                   "snapshot_ref", "last_snapshot_error", "parent_workspace_id",
                   "fork_source_snapshot_ref", "fork_point_task_count", "pack_status",
                   "created_at", "updated_at", "archived_at"}


def _statuses(session, workspace_id):
    rows = session.scalars(sa.select(Event).where(
        Event.stream_key == f"workspace:{workspace_id}").order_by(Event.number)).all()
    return [(e.number, e.data["from"], e.data["to"], e.data["cause"]) for e in rows]


def _idle_workspace(client, owner, role):
    response = create(client, owner.headers, role)
    assert response.status_code == 202, response.get_data()
    run_jobs()
    return response.get_json()["id"]


def test_create_provisions_to_idle_with_every_seed_field(client, session, owner, role):
    response = create(client, owner.headers, role)
    assert response.status_code == 202, response.get_data()
    body = response.get_json()
    assert body["status"] == "provisioning"
    assert SEED_004_FIELDS <= set(body)
    assert body["pack_status"] == "unknown"
    assert queued() == ["provision"]  # enqueued once the request committed
    assert run_jobs() == ["provision"]
    got = client.get(f"/v1/workspaces/{body['id']}", headers=owner.headers).get_json()
    assert got["status"] == "idle" and got["pack_status"] == "current"
    assert got["role_version"] == 1 and got["environment"] == "default"
    assert _statuses(session, body["id"]) == [(1, None, "provisioning", "create"),
                                              (2, "provisioning", "idle", "provisioned")]
    live = sandboxes.backend().live_path(body["id"])
    assert (live / "work").is_dir() and (live / "uploads").is_dir()


def test_stop_snapshots_and_start_restores_the_data(client, session, owner, role):
    workspace_id = _idle_workspace(client, owner, role)
    backend = sandboxes.backend()
    row = session.get(Workspace, workspace_id)
    backend.write_file(workspace_id, row.sandbox_uid, "/data/work/notes.txt", b"kept\n")
    stopped = client.post(f"/v1/workspaces/{workspace_id}/stop", headers=owner.headers)
    assert stopped.status_code == 202 and stopped.get_json()["status"] == "stopping"
    assert run_jobs() == ["stop"]
    got = client.get(f"/v1/workspaces/{workspace_id}", headers=owner.headers).get_json()
    assert got["status"] == "stopped" and len(got["snapshot_ref"]) == 64
    assert got["last_snapshot_error"] is None and got["pack_status"] == "unknown"
    assert not backend.is_live(workspace_id)
    snapshots = client.get(f"/v1/workspaces/{workspace_id}/snapshots",
                           headers=owner.headers).get_json()["data"]
    assert [s["snapshot_ref"] for s in snapshots] == [got["snapshot_ref"]]
    assert snapshots[0]["task_count"] == 0 and snapshots[0]["size_bytes"] > 0

    started = client.post(f"/v1/workspaces/{workspace_id}/start", headers=owner.headers)
    assert started.status_code == 202 and started.get_json()["status"] == "provisioning"
    run_jobs()
    assert (backend.live_path(workspace_id) / "work" / "notes.txt").read_bytes() == b"kept\n"
    listing = client.get(f"/v1/workspaces/{workspace_id}/files?path=/data/work",
                         headers=owner.headers).get_json()
    assert [e["name"] for e in listing["data"]] == ["notes.txt"]
    content = client.get(f"/v1/workspaces/{workspace_id}/files/content?path=notes.txt",
                         headers=owner.headers)
    assert content.status_code == 200 and content.get_data() == b"kept\n"


def test_illegal_transitions_are_409_with_the_current_status(client, owner, role):
    body = create(client, owner.headers, role).get_json()
    for action in ("stop", "start", "archive"):
        response = client.post(f"/v1/workspaces/{body['id']}/{action}", headers=owner.headers)
        assert response.status_code == 409, action
        error = response.get_json()["error"]
        if action == "archive":
            assert error["code"] == "workspace_running"
        else:
            assert error["code"] == "workspace_state_conflict"
        assert error["details"]["status"] == "provisioning"
    fork = client.post(f"/v1/workspaces/{body['id']}/fork", headers=owner.headers, json={})
    assert fork.status_code == 409


def test_fork_needs_a_snapshot_and_copies_it(client, session, owner, role):
    workspace_id = _idle_workspace(client, owner, role)
    no_snapshot = client.post(f"/v1/workspaces/{workspace_id}/fork", headers=owner.headers,
                              json={})
    assert no_snapshot.status_code == 409
    assert no_snapshot.get_json()["error"]["code"] == "no_snapshot"
    row = session.get(Workspace, workspace_id)
    sandboxes.backend().write_file(workspace_id, row.sandbox_uid, "/data/work/a.txt", b"A")
    client.post(f"/v1/workspaces/{workspace_id}/stop", headers=owner.headers)
    run_jobs()
    unknown = client.post(f"/v1/workspaces/{workspace_id}/fork", headers=owner.headers,
                          json={"snapshot_ref": "0" * 64})
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "snapshot_not_found"
    by_count = client.post(f"/v1/workspaces/{workspace_id}/fork", headers=owner.headers,
                           json={"task_count": 7})
    assert by_count.get_json()["error"]["code"] == "snapshot_not_found"
    fork = client.post(f"/v1/workspaces/{workspace_id}/fork", headers=owner.headers, json={})
    assert fork.status_code == 202, fork.get_data()
    child = fork.get_json()
    parent = client.get(f"/v1/workspaces/{workspace_id}", headers=owner.headers).get_json()
    assert child["parent_workspace_id"] == workspace_id
    assert child["fork_source_snapshot_ref"] == parent["snapshot_ref"]
    assert child["fork_point_task_count"] == 0
    run_jobs()
    child_row = session.get(Workspace, child["id"])
    assert child_row.status == "idle" and child_row.sandbox_uid != row.sandbox_uid
    live = sandboxes.backend().live_path(child["id"])
    assert (live / "work" / "a.txt").read_bytes() == b"A"
    assert (live / "work" / "a.txt").stat().st_uid == child_row.sandbox_uid


def test_stop_without_a_live_directory_records_last_snapshot_error(client, session, owner,
                                                                    role):
    workspace_id = _idle_workspace(client, owner, role)
    client.post(f"/v1/workspaces/{workspace_id}/stop", headers=owner.headers)
    run_jobs()
    first = client.get(f"/v1/workspaces/{workspace_id}", headers=owner.headers).get_json()
    client.post(f"/v1/workspaces/{workspace_id}/start", headers=owner.headers)
    run_jobs()
    shutil.rmtree(sandboxes.backend().live_path(workspace_id))  # the pod is gone
    client.post(f"/v1/workspaces/{workspace_id}/stop", headers=owner.headers)
    run_jobs()
    got = client.get(f"/v1/workspaces/{workspace_id}", headers=owner.headers).get_json()
    assert got["status"] == "stopped" and got["snapshot_ref"] is None
    assert "no snapshot was saved" in got["last_snapshot_error"]
    snapshots = client.get(f"/v1/workspaces/{workspace_id}/snapshots",
                           headers=owner.headers).get_json()["data"]
    assert [s["snapshot_ref"] for s in snapshots] == [first["snapshot_ref"]]
    # Nothing is lost: the earlier snapshot restores.
    assert client.post(f"/v1/workspaces/{workspace_id}/start",
                       headers=owner.headers).status_code == 202
    run_jobs()
    assert session.get(Workspace, workspace_id).status == "idle"


def test_archive_delete_and_role_in_use(client, owner, role):
    workspace_id = _idle_workspace(client, owner, role)
    role_delete = client.delete(f"/v1/roles/{role.role.id}", headers=owner.headers)
    assert role_delete.status_code == 409
    assert role_delete.get_json()["error"]["code"] == "role_in_use"
    assert role_delete.get_json()["error"]["details"] == {"workspaces": [workspace_id]}
    client.post(f"/v1/workspaces/{workspace_id}/stop", headers=owner.headers)
    run_jobs()
    archived = client.post(f"/v1/workspaces/{workspace_id}/archive", headers=owner.headers)
    assert archived.status_code == 200 and archived.get_json()["archived_at"]
    start = client.post(f"/v1/workspaces/{workspace_id}/start", headers=owner.headers)
    assert start.get_json()["error"]["code"] == "workspace_state_conflict"
    listed = client.get("/v1/workspaces", headers=owner.headers).get_json()["data"]
    assert listed == []
    listed = client.get("/v1/workspaces?archived=true", headers=owner.headers).get_json()
    assert [w["id"] for w in listed["data"]] == [workspace_id]
    deleted = client.delete(f"/v1/workspaces/{workspace_id}", headers=owner.headers)
    assert deleted.status_code == 202
    run_jobs()
    assert client.get(f"/v1/workspaces/{workspace_id}",
                      headers=owner.headers).status_code == 404
    assert client.delete(f"/v1/roles/{role.role.id}", headers=owner.headers).status_code == 200


def test_own_scopes_see_only_their_workspaces_and_other_orgs_see_nothing(client, owner,
                                                                         role):
    workspace_id = _idle_workspace(client, owner, role)
    member = bearer(make_api_key(make_member(owner.org, role="member")))
    denied = client.get(f"/v1/workspaces/{workspace_id}", headers=member)
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "workspace_not_visible"
    assert client.get("/v1/workspaces", headers=member).get_json()["data"] == []
    stop = client.post(f"/v1/workspaces/{workspace_id}/stop", headers=member)
    assert stop.get_json()["error"]["code"] == "workspace_not_visible"
    operator = bearer(make_api_key(make_member(owner.org, role="operator")))
    assert client.get(f"/v1/workspaces/{workspace_id}", headers=operator).status_code == 200
    refused = client.post(f"/v1/workspaces/{workspace_id}/stop", headers=operator)
    assert refused.status_code == 403
    outsider = bearer(make_api_key(make_member(make_org(), role="owner")))
    missing = client.get(f"/v1/workspaces/{workspace_id}", headers=outsider)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "workspace_not_found"


def test_create_validates_role_and_environment_as_seed_001(client, owner, role):
    other = make_role(owner.membership, provider=owner.provider)
    both = client.post("/v1/workspaces", headers=owner.headers, json={
        "role_id": role.role.id, "role_name": other.role.name})
    assert both.status_code == 400 and "role_name" in both.get_json()["error"]["details"][
        "fields"]
    agree = client.post("/v1/workspaces", headers=owner.headers, json={
        "role_id": role.role.id, "role_name": role.role.name})
    assert agree.status_code == 202
    by_name = client.post("/v1/workspaces", headers=owner.headers,
                          json={"role_name": role.role.name})
    assert by_name.status_code == 202
    neither = client.post("/v1/workspaces", headers=owner.headers, json={})
    assert neither.status_code == 400
    unknown_env = create(client, owner.headers, role, environment="gpu-xl")
    assert unknown_env.status_code == 400
    assert "environment" in unknown_env.get_json()["error"]["details"]["fields"]
    client.post(f"/v1/roles/{other.role.id}/archive", headers=owner.headers)
    archived = client.post("/v1/workspaces", headers=owner.headers,
                           json={"role_id": other.role.id})
    assert archived.status_code == 409
    assert archived.get_json()["error"]["code"] == "role_archived"


def test_network_allowlist_roles_are_refused(client, owner):
    caps = "tools: [shell]\nnetwork:\n  allowlist: [api.github.com]\n"
    role = make_role(owner.membership, provider=owner.provider, capabilities=caps)
    response = client.post("/v1/workspaces", headers=owner.headers,
                           json={"role_id": role.role.id})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "network_policy_unsupported"


def test_the_reaper_settles_a_dead_provision_and_fences_the_job(client, session, owner,
                                                                 role):
    body = create(client, owner.headers, role).get_json()
    job = queued()
    assert job == ["provision"]
    row = session.get(Workspace, body["id"])
    row.job_deadline = utcnow() - timedelta(seconds=1)
    session.commit()
    assert reaper.sweep() == {body["id"]: "failed"}
    got = client.get(f"/v1/workspaces/{body['id']}", headers=owner.headers).get_json()
    assert got["status"] == "failed" and "deadline" in got["failure_reason"]
    run_jobs()  # the job the reaper gave up on comes back: it may change nothing
    got = client.get(f"/v1/workspaces/{body['id']}", headers=owner.headers).get_json()
    assert got["status"] == "failed"
    assert [s[2] for s in _statuses(session, body["id"])] == ["provisioning", "failed"]
    assert not sandboxes.backend().is_live(body["id"])


def test_a_retried_create_with_an_idempotency_key_makes_one_workspace(client, owner, role):
    headers = {**owner.headers, "Idempotency-Key": "create-ws-1"}
    first = client.post("/v1/workspaces", headers=headers, json={"role_id": role.role.id})
    again = client.post("/v1/workspaces", headers=headers, json={"role_id": role.role.id})
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert queued() == ["provision"]  # one workspace, one job
    listed = client.get("/v1/workspaces", headers=owner.headers).get_json()["data"]
    assert [w["id"] for w in listed] == [first.get_json()["id"]]
    other = client.post("/v1/workspaces", headers=headers,
                        json={"role_id": role.role.id, "environment": "default"})
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_conflict"


def test_a_new_pack_version_makes_a_live_workspace_stale_until_it_starts_again(
        client, session, owner):
    from tests.roles.conftest import make_pack
    pack = make_pack(owner.membership)
    role = make_role(owner.membership, provider=owner.provider, pack_ids=[pack.id])
    workspace_id = _idle_workspace(client, owner, role)
    url = f"/v1/workspaces/{workspace_id}"
    assert client.get(url, headers=owner.headers).get_json()["pack_status"] == "current"
    live = sandboxes.backend().live_path(workspace_id)
    assert (live / "packs" / pack.name / "README.md").read_bytes() == b"# notes\n"
    upload = client.post(f"/v1/packs/{pack.id}/versions", headers=owner.headers,
                         data={"files": (io.BytesIO(b"# v2\n"), "README.md")},
                         content_type="multipart/form-data")
    assert upload.status_code == 201, upload.get_data()
    assert client.get(url, headers=owner.headers).get_json()["pack_status"] == "stale"
    client.post(f"{url}/stop", headers=owner.headers)
    run_jobs()
    client.post(f"{url}/start", headers=owner.headers)
    run_jobs()
    assert client.get(url, headers=owner.headers).get_json()["pack_status"] == "current"
    assert (live / "packs" / pack.name / "README.md").read_bytes() == b"# v2\n"


def test_the_reaper_relaunches_a_provisioning_job_rq_lost(client, session, owner, role):
    from evershell.extensions import get_queue
    body = create(client, owner.headers, role).get_json()
    get_queue("workspaces").empty()  # the job is gone, deleted with its queue
    row = session.get(Workspace, body["id"])
    row.status_changed_at = utcnow() - timedelta(seconds=31)
    session.commit()
    assert reaper.sweep() == {body["id"]: "provisioning"}
    assert session.get(Workspace, body["id"]).attempt == 2
    assert run_jobs() == ["provision"]
    assert session.get(Workspace, body["id"]).status == "idle"
