"""The task-first console path (seed 001): "New task" on the home page, the task page
with its transcript (server-rendered from the log, then live over SSE), Cancel, the
follow-up box, tasks on the workspace page; nothing offered that the caller cannot do."""

from __future__ import annotations

import io
import re

from evershell.tasks.models import Task
from tests.factories import make_member
from tests.roles.conftest import make_provider, make_role
from tests.workspaces.conftest import run_jobs

SCRIPT = [{"tool_calls": [{"name": "shell", "arguments": {
    "command": "cat /data/uploads/*/notes.txt | wc -w"}}]},
    {"text": "Words: {last_tool_output}"}]
CAPS = "tools: [shell, read_file, write_file, list_files]\n"


def _role(owner, script=SCRIPT):
    provider = make_provider(owner.membership, script=script)
    return make_role(owner.membership, provider=provider, capabilities=CAPS,
                     name="word-counter", description="Counts the words of your files.")


def _text(response) -> str:
    return response.get_data(as_text=True)


def _submit(client, role, description="Count them.", files=()):
    return client.post("/tasks", data={
        "csrf_token": client.csrf_token, "role_id": role.role.id, "description": description,
        "thinking_effort": "", "max_continuations": "", "max_context_tokens": "",
        "file": [(io.BytesIO(body), name) for name, body in files]},
        content_type="multipart/form-data")


def _task_id(response) -> str:
    assert response.status_code == 303, _text(response)
    match = re.fullmatch(r"/tasks/(task_\w+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def test_the_home_form_offers_roles_advanced_and_uploads(console_client, owner):
    role = _role(owner)
    html = _text(console_client(owner.membership).get("/"))
    form = html.split('id="new-task"', 1)[1].split("</section>", 1)[0]
    assert f'value="{role.role.id}"' in form and "word-counter" in form
    assert "Counts the words of your files." in form
    assert "<details" in form and "Advanced" in form and 'name="max_continuations"' in form
    assert 'type="file"' in form and 'name="file"' in form and "multipart/form-data" in form
    assert "hx-on::xhr:progress" in form and "<progress" in form


def test_a_submitted_task_runs_and_its_page_shows_the_transcript(console_client, owner,
                                                                session):
    role = _role(owner)
    client = console_client(owner.membership)
    task_id = _task_id(_submit(client, role, files=[("notes.txt", b"one two three\n")]))
    page = _text(client.get(f"/tasks/{task_id}"))
    assert "sse-connect" in page and "Cancel task" in page and 'hx-confirm="' in page
    assert "notes.txt" in page
    assert run_jobs() == ["provision", "run"]
    assert session.get(Task, task_id).status == "succeeded"
    page = _text(client.get(f"/tasks/{task_id}"))
    assert "badge-succeeded" in page and "sse-connect" not in page
    assert "Cancel task" not in page
    transcript = page.split('id="task-transcript"', 1)[1]
    assert "task-tool" in transcript and "shell" in transcript and "wc -w" in transcript
    assert "Exit code" in transcript and "Peak memory" in transcript
    assert "Words: 3" in transcript and "Words: 3" in page.split('id="task-summary"')[1]
    assert "Follow up" in page
    # The live route of a finished task: one frame of parts that replace by id (the
    # connection removed), then the stream ends.
    live = _text(client.get(f"/tasks/{task_id}/live"))
    assert live.count("event: task") == 1
    assert 'id="task-live-wrap" hx-swap-oob="true"' in live
    assert 'id="task-transcript"' in live and "Words: 3" in live


def test_the_form_shows_what_is_wrong(console_client, owner):
    role = _role(owner)
    client = console_client(owner.membership)
    response = client.post("/tasks", headers={"HX-Request": "true"}, data={
        "csrf_token": client.csrf_token, "role_id": role.role.id, "description": " ",
        "max_continuations": "x"}, content_type="multipart/form-data")
    assert response.status_code == 200
    html = _text(response)
    assert 'id="new-task"' in html and "A whole number." in html


def test_cancel_before_it_runs(console_client, owner, session):
    role = _role(owner)
    client = console_client(owner.membership)
    task_id = _task_id(_submit(client, role))
    response = client.post(f"/tasks/{task_id}/cancel", data={"csrf_token": client.csrf_token})
    assert response.status_code == 303
    assert session.get(Task, task_id).status == "cancelled"
    page = _text(client.get(f"/tasks/{task_id}"))
    assert "badge-cancelled" in page and "Cancel task" not in page


def test_a_follow_up_runs_in_the_same_workspace_and_both_are_listed(console_client, owner,
                                                                   session):
    role = _role(owner, [{"text": "Done."}])
    client = console_client(owner.membership)
    first = _task_id(_submit(client, role))
    run_jobs()
    response = client.post(f"/tasks/{first}/next", data={
        "csrf_token": client.csrf_token, "description": "And again."},
        content_type="multipart/form-data")
    second = _task_id(response)
    run_jobs()
    a, b = session.get(Task, first), session.get(Task, second)
    assert b.workspace_id == a.workspace_id and b.number == 2 and b.status == "succeeded"
    page = _text(client.get(f"/workspaces/{a.workspace_id}"))
    listed = page.split("<h2>Tasks</h2>", 1)[1]
    assert listed.index(f"/tasks/{second}") < listed.index(f"/tasks/{first}")


def test_nothing_is_offered_that_the_caller_cannot_do(console_client, owner):
    role = _role(owner, [{"text": "Done."}])
    member = make_member(owner.org)
    member_client = console_client(member)
    assert 'id="new-task"' in _text(member_client.get("/"))  # members may submit
    task_id = _task_id(_submit(member_client, role))
    owners_task = _task_id(_submit(console_client(owner.membership), role))
    # A member cannot read another member's task: the console's error page.
    assert member_client.get(f"/tasks/{owners_task}").status_code == 403
    # An operator reads every task but may not cancel or follow up someone else's.
    operator = console_client(make_member(owner.org, role="operator"))
    page = _text(operator.get(f"/tasks/{task_id}"))
    assert "badge-submitted" in page
    assert "Cancel task" not in page and "Follow up" not in page
    assert operator.post(f"/tasks/{task_id}/cancel",
                         data={"csrf_token": operator.csrf_token}).status_code == 403
