"""POST /v1/tasks as seed 001 says, route by route and code by code (JSON and multipart),
and the next-task route."""

from __future__ import annotations

import io
import os

import sqlalchemy as sa

from evershell.core.blobs import blob_root
from evershell.tasks.models import Task
from evershell.workspaces.models import Workspace
from tests.factories import bearer, make_api_key, make_member
from tests.roles.conftest import make_role
from tests.workspaces.conftest import queued


def _post(client, headers, **body):
    return client.post("/v1/tasks", headers=headers, json=body)


def _counts(session):
    return (session.scalar(sa.select(sa.func.count()).select_from(Workspace)),
            session.scalar(sa.select(sa.func.count()).select_from(Task)))


def test_json_submit_answers_202_with_the_seed_shape(client, session, owner, role):
    response = _post(client, owner.headers, role_id=role.role.id, description="Say hi")
    assert response.status_code == 202, response.get_data()
    body = response.get_json()
    assert set(body) == {"task_id", "workspace_id", "status"}
    assert body["status"] == "submitted"
    task = session.get(Task, body["task_id"])
    assert task.workspace_id == body["workspace_id"] and task.number == 1
    assert task.max_continuations == role.version.max_continuations
    assert session.get(Workspace, body["workspace_id"]).status == "provisioning"
    assert queued() == ["provision"]
    log = client.get(f"/v1/tasks/{body['task_id']}/log", headers=owner.headers).get_json()
    assert [e["type"] for e in log["data"]] == ["task.submitted"]
    assert log["data"][0]["id"] == 1


def test_multipart_uploads_are_stored_with_safe_names(client, session, owner, role):
    response = client.post("/v1/tasks", headers=owner.headers, data={
        "role_name": role.role.name, "description": "Count the words",
        "max_continuations": "5",
        "file": [(io.BytesIO(b"one two three"), "../../etc/notes.txt"),
                 (io.BytesIO(b"\x00\x01"), "data.bin")]},
        content_type="multipart/form-data")
    assert response.status_code == 202, response.get_data()
    task = session.get(Task, response.get_json()["task_id"])
    assert [u["name"] for u in task.uploads] == ["notes.txt", "data.bin"]
    assert task.max_continuations == 5
    got = client.get(f"/v1/tasks/{task.id}", headers=owner.headers).get_json()
    assert got["uploads"] == [{"name": "notes.txt", "size": 13}, {"name": "data.bin", "size": 2}]


def _stored_uploads() -> set[str]:
    uploads = blob_root() / "uploads"
    return {entry.name for entry in os.scandir(uploads)} if uploads.exists() else set()


def test_a_failed_request_leaves_no_rows_files_or_blobs(client, app, session, owner, role,
                                                        monkeypatch):
    before, stored = _counts(session), _stored_uploads()
    monkeypatch.setitem(app.config, "UPLOAD_MAX_FILE_BYTES", 10)
    cases = (
        ({"environment": "nowhere"}, [(b"payload", "a.txt")], "environment"),
        ({"max_continuations": "0"}, [(b"payload", "a.txt")], "max_continuations"),
        ({"thinking_effort": "extreme"}, [(b"payload", "a.txt")], "thinking_effort"),
        # Refused after the first file was stored: it must go again.
        ({}, [(b"payload", "a.txt"), (b"again", "a.txt")], "file"),
        ({}, [(b"payload", "a.txt"), (b"far too large", "b.txt")], "file"),
        ({}, [(b"payload", "")], "file"),
    )
    for body, files, field in cases:
        response = client.post("/v1/tasks", headers=owner.headers, data={
            "role_id": role.role.id, "description": "x", **body,
            "file": [(io.BytesIO(content), name) for content, name in files]},
            content_type="multipart/form-data")
        assert response.status_code == 400, response.get_data()
        assert field in response.get_json()["error"]["details"]["fields"]
    assert _counts(session) == before
    assert _stored_uploads() == stored


def test_role_by_id_or_name_and_both_must_agree(client, owner, role):
    other = make_role(owner.membership, provider=owner.provider)
    both = _post(client, owner.headers, role_id=role.role.id, role_name=other.role.name,
                 description="x")
    assert both.status_code == 400
    assert "role_name" in both.get_json()["error"]["details"]["fields"]
    neither = _post(client, owner.headers, description="x")
    assert neither.status_code == 400
    missing = _post(client, owner.headers, role_name="no such role", description="x")
    assert missing.status_code == 404
    no_description = _post(client, owner.headers, role_id=role.role.id)
    assert "description" in no_description.get_json()["error"]["details"]["fields"]


def test_archived_role_or_provider_is_409(client, owner, role):
    client.post(f"/v1/providers/{owner.provider.id}/archive", headers=owner.headers)
    response = _post(client, owner.headers, role_id=role.role.id, description="x")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "provider_archived"
    client.post(f"/v1/providers/{owner.provider.id}/unarchive", headers=owner.headers)
    client.post(f"/v1/roles/{role.role.id}/archive", headers=owner.headers)
    response = _post(client, owner.headers, role_id=role.role.id, description="x")
    assert response.get_json()["error"]["code"] == "role_archived"


def test_the_seed_001_permissions(client, owner, role):
    """(workspace:write or :own) and (tasks:write or :own): every default role can
    submit (the :own variants hold, the submitter owns the new workspace); a read-only
    key cannot."""
    member = make_member(owner.org, role="member")
    for headers in (bearer(make_api_key(member)),
                    bearer(make_api_key(member, template="tasks_only"))):
        response = _post(client, headers, role_id=role.role.id, description="x")
        assert response.status_code == 202, response.get_data()
    read_only = _post(client, bearer(make_api_key(member, template="read_only")),
                      role_id=role.role.id, description="x")
    assert read_only.status_code == 403
    assert read_only.get_json()["error"]["code"] == "permission_denied"


def test_billing_and_rate_limit(client, app, session, owner, role, monkeypatch):
    from evershell.orgs.models import Org
    org = session.get(Org, owner.membership.org_id)
    org.billing_posture = "past_due"
    session.commit()
    response = _post(client, owner.headers, role_id=role.role.id, description="x")
    assert response.status_code == 423
    assert response.get_json()["error"]["code"] == "billing_inactive"
    org.billing_posture = "active"
    session.commit()
    monkeypatch.setitem(app.config, "RATE_LIMIT_BURST", 0)
    monkeypatch.setitem(app.config, "RATE_LIMIT_PER_MINUTE", 1)
    limited = [_post(client, owner.headers, role_id=role.role.id, description="x")
               for _ in range(3)]
    assert limited[-1].status_code == 429 and int(limited[-1].headers["Retry-After"]) >= 1


def test_a_retried_multipart_submit_makes_one_workspace_task_and_file(client, session,
                                                                      owner, role):
    def submit():
        return client.post("/v1/tasks", headers={**owner.headers, "Idempotency-Key": "up-1"},
                           data={"role_id": role.role.id, "description": "x",
                                 "file": [(io.BytesIO(b"same bytes"), "a.txt")]},
                           content_type="multipart/form-data")
    before = _counts(session)
    first, again = submit(), submit()
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _counts(session) == (before[0] + 1, before[1] + 1)


def test_a_workspace_has_one_active_task_at_a_time(client, session, owner, role):
    body = _post(client, owner.headers, role_id=role.role.id, description="first").get_json()
    from tests.workspaces.conftest import run_jobs
    run_jobs(queues=("workspaces",))  # provisioned: the task is queued, not yet run
    assert session.get(Task, body["task_id"]).status == "queued"
    second = client.post(f"/v1/workspaces/{body['workspace_id']}/tasks",
                         headers=owner.headers, json={"description": "second"})
    assert second.status_code == 409
    assert second.get_json()["error"]["code"] == "task_already_running"
    cancelled = client.post(f"/v1/tasks/{body['task_id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 202 and cancelled.get_json()["status"] == "cancelled"
    third = client.post(f"/v1/workspaces/{body['workspace_id']}/tasks",
                        headers=owner.headers, json={"description": "third"})
    assert third.status_code == 202, third.get_data()
    assert session.get(Task, third.get_json()["task_id"]).number == 2
    listed = client.get(f"/v1/tasks?workspace_id={body['workspace_id']}",
                        headers=owner.headers).get_json()["data"]
    assert [t["number"] for t in listed] == [2, 1]


def test_own_scopes_reach_only_tasks_in_their_workspaces(client, owner, role):
    body = _post(client, owner.headers, role_id=role.role.id, description="x").get_json()
    member = bearer(make_api_key(make_member(owner.org, role="member")))
    assert client.get(f"/v1/tasks/{body['task_id']}", headers=member).status_code == 403
    assert client.get("/v1/tasks", headers=member).get_json()["data"] == []
    assert client.post(f"/v1/tasks/{body['task_id']}/cancel",
                       headers=member).status_code == 403
