"""Tasks run end to end: the scripted agent loop in the workspace's sandbox, its events,
follow-up tasks with history, cancel, redaction of a canary secret, the offline demo."""

from __future__ import annotations

import io
import threading
import time

from evershell.demo import CAPS, SCRIPT
from evershell.tasks.models import Task
from evershell.workspaces.models import Workspace
from tests.roles.conftest import make_provider, make_role
from tests.secrets.factories import make_secret
from tests.support.processes import processes_of
from tests.workspaces.conftest import run_jobs


def _log(client, headers, task_id):
    return client.get(f"/v1/tasks/{task_id}/log?limit=1000", headers=headers).get_json()["data"]


def _role_with_script(owner, script, caps="tools: [shell, read_file, write_file, list_files]\n"):
    provider = make_provider(owner.membership, script=script)
    return make_role(owner.membership, provider=provider, capabilities=caps)


def test_the_demo_script_counts_words_of_the_uploaded_file(client, session, owner):
    role = _role_with_script(owner, SCRIPT, CAPS)
    response = client.post("/v1/tasks", headers=owner.headers, data={
        "role_id": role.role.id, "description": "Count the words, please.",
        "file": [(io.BytesIO(b"the cat sat on the mat\nthe end\n"), "story.txt")]},
        content_type="multipart/form-data")
    assert response.status_code == 202, response.get_data()
    body = response.get_json()
    assert run_jobs() == ["provision", "run"]
    task = client.get(f"/v1/tasks/{body['task_id']}", headers=owner.headers).get_json()
    assert task["status"] == "succeeded", task
    assert "story.txt: 2 lines, 8 words" in task["result"]
    assert "3  the" in task["result"]
    assert task["tool_calls"] == 2 and task["model_calls"] == 3
    types = [e["type"] for e in _log(client, owner.headers, body["task_id"])]
    assert types[:2] == ["task.submitted", "task.started"]
    assert types[-1] == "task.completed"
    assert {"message.delta", "message.created", "tool.call", "tool.result"} <= set(types)
    numbers = [e["id"] for e in _log(client, owner.headers, body["task_id"])]
    assert numbers == list(range(1, len(numbers) + 1))
    workspace = session.get(Workspace, body["workspace_id"])
    assert workspace.status == "idle"
    from evershell.events import services as events
    moves = [(e["data"]["to"], e["data"]["cause"], e["data"].get("task_id")) for e in
             events.page(f"workspace:{workspace.id}")["data"]]
    assert moves[-2:] == [("busy", "task", body["task_id"]),
                          ("idle", "task_ended", body["task_id"])]


def test_a_follow_up_task_sees_the_history_and_runs_in_the_same_workspace(client, session,
                                                                         owner):
    script = [{"tool_calls": [{"name": "shell", "arguments": {
        "command": "echo run >> /data/work/runs.txt; wc -l < /data/work/runs.txt"}}]},
        {"text": "Runs so far: {last_tool_output}"}]
    role = _role_with_script(owner, script)
    first = client.post("/v1/tasks", headers=owner.headers,
                        json={"role_id": role.role.id, "description": "one"}).get_json()
    run_jobs()
    second = client.post(f"/v1/workspaces/{first['workspace_id']}/tasks",
                         headers=owner.headers, json={"description": "two"})
    assert second.status_code == 202, second.get_data()
    assert second.get_json()["workspace_id"] == first["workspace_id"]
    run_jobs()
    result = session.get(Task, second.get_json()["task_id"]).result
    assert result == "Runs so far: 2"


def test_cancel_kills_a_running_sleep(client, app, session, owner):
    script = [{"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 600"}}]},
              {"text": "never"}]
    role = _role_with_script(owner, script)
    body = client.post("/v1/tasks", headers=owner.headers,
                       json={"role_id": role.role.id, "description": "sleep"}).get_json()
    run_jobs(queues=("workspaces",))
    task_id = body["task_id"]
    uid = session.get(Workspace, body["workspace_id"]).sandbox_uid

    def cancel_soon():
        with app.app_context():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not bool(processes_of(uid)):
                time.sleep(0.05)
            from evershell.extensions import get_redis
            from evershell.tasks import signals
            get_redis().set(signals._KEY.format(task_id), "1")

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started = time.monotonic()
    run_jobs(queues=("tasks",))
    canceller.join(30)
    assert time.monotonic() - started < 30
    task = client.get(f"/v1/tasks/{task_id}", headers=owner.headers).get_json()
    assert task["status"] == "cancelled"
    last = _log(client, owner.headers, task_id)[-1]
    assert last["type"] == "task.cancelled" and last["data"]["running"] == "shell: sleep 600"
    assert not bool(processes_of(uid))
    assert session.get(Workspace, body["workspace_id"]).status == "idle"


def test_a_canary_secret_never_leaves_the_sandbox(client, session, owner):
    canary = "cAnArY-t0k3n-0c41f9"
    make_secret(owner.membership, "CANARY", canary)
    caps = ("tools: [shell, read_file, write_file, list_files]\n"
            "env:\n  TOKEN: {secret: CANARY}\n")
    commands = ["env", "echo $TOKEN", "printf %s \"$TOKEN\" | base64",
                "printf %s \"$TOKEN\" | od -An -tx1 | tr -d ' \\n'",
                "printf %s \"$TOKEN\" | rev", "printf %s \"$TOKEN\" | fold -w1"]
    script = [{"tool_calls": [{"name": "shell", "arguments": {"command": c}}]}
              for c in commands] + [{"text": "Done: {last_tool_output}"}]
    role = _role_with_script(owner, script, caps)
    body = client.post("/v1/tasks", headers=owner.headers,
                       json={"role_id": role.role.id, "description": "leak it"}).get_json()
    run_jobs()
    task = session.get(Task, body["task_id"])
    assert task.status == "succeeded", task.failure_reason
    everything = str(_log(client, owner.headers, body["task_id"])) + (task.result or "")
    import base64
    for form in (canary, base64.b64encode(canary.encode()).decode(), canary.encode().hex(),
                 canary[::-1], "\n".join(canary)):
        assert form not in everything
    assert "[secret:CANARY]" in everything


def test_checkpoints_per_task_snapshot_after_each_task(client, owner):
    script = [{"tool_calls": [{"name": "shell", "arguments": {
        "command": "date +%N >> /data/work/log.txt"}}]}, {"text": "ok"}]
    role = _role_with_script(owner, script, "tools: [shell]\ncheckpoints: per_task\n")
    body = client.post("/v1/tasks", headers=owner.headers,
                       json={"role_id": role.role.id, "description": "one"}).get_json()
    run_jobs()
    client.post(f"/v1/workspaces/{body['workspace_id']}/tasks", headers=owner.headers,
                json={"description": "two"})
    run_jobs()
    snapshots = client.get(f"/v1/workspaces/{body['workspace_id']}/snapshots",
                           headers=owner.headers).get_json()["data"]
    assert [(s["cause"], s["task_count"]) for s in snapshots] == [
        ("checkpoint", 2), ("checkpoint", 1)]
    workspace = client.get(f"/v1/workspaces/{body['workspace_id']}",
                           headers=owner.headers).get_json()
    assert workspace["snapshot_ref"] == snapshots[0]["snapshot_ref"]
    assert workspace["status"] == "idle"


def test_a_fork_at_a_task_count_copies_those_tasks_and_their_logs(client, owner):
    script = [{"tool_calls": [{"name": "shell", "arguments": {"command": "true"}}]},
              {"text": "ok"}]
    role = _role_with_script(owner, script, "tools: [shell]\ncheckpoints: per_task\n")
    body = client.post("/v1/tasks", headers=owner.headers,
                       json={"role_id": role.role.id, "description": "one"}).get_json()
    run_jobs()
    client.post(f"/v1/workspaces/{body['workspace_id']}/tasks", headers=owner.headers,
                json={"description": "two"})
    run_jobs()
    fork = client.post(f"/v1/workspaces/{body['workspace_id']}/fork", headers=owner.headers,
                       json={"task_count": 1})
    assert fork.status_code == 202, fork.get_data()
    child = fork.get_json()
    assert child["fork_point_task_count"] == 1
    copied = client.get(f"/v1/tasks?workspace_id={child['id']}",
                        headers=owner.headers).get_json()["data"]
    assert [(t["number"], t["description"], t["copied_from_task_id"]) for t in copied] == [
        (1, "one", body["task_id"])]
    original = [(e["id"], e["type"]) for e in _log(client, owner.headers, body["task_id"])]
    assert [(e["id"], e["type"]) for e in _log(client, owner.headers, copied[0]["id"])] \
        == original
    run_jobs()
    follow = client.post(f"/v1/workspaces/{child['id']}/tasks", headers=owner.headers,
                         json={"description": "three"})
    assert follow.status_code == 202, follow.get_data()
    run_jobs()
    numbers = [t["number"] for t in client.get(f"/v1/tasks?workspace_id={child['id']}",
                                               headers=owner.headers).get_json()["data"]]
    assert numbers == [2, 1]


def test_the_reaper_queues_a_task_whose_workspace_became_idle_without_it(client, session,
                                                                          owner):
    from evershell.tasks import reaper
    from evershell.workspaces import hooks
    role = _role_with_script(owner, [{"text": "done"}])
    body = client.post("/v1/tasks", headers=owner.headers,
                       json={"role_id": role.role.id, "description": "x"}).get_json()
    on_idle, hooks.on_idle = hooks.on_idle, lambda _workspace: None  # a lost enqueue
    try:
        assert run_jobs() == ["provision"]
    finally:
        hooks.on_idle = on_idle
    assert session.get(Task, body["task_id"]).status == "submitted"
    assert reaper.sweep() == {body["task_id"]: "queued"}
    assert run_jobs() == ["run"]
    assert session.get(Task, body["task_id"]).status == "succeeded"
