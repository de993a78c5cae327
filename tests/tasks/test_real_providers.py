"""Each real-provider adapter end to end: a task submitted through the service, run by a
real `evershell worker --burst` process whose adapter uses the official SDK against a
local server speaking that provider's wire protocol. The SDKs run unmodified; only the
far end of the network is ours."""

from __future__ import annotations

import json
import subprocess

import pytest
import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.events import services as events
from evershell.extensions import db, get_queue
from evershell.providers import services as providers
from evershell.providers.ssrf import ALLOW_PRIVATE_SETTING
from evershell.secrets import services as secrets
from evershell.tasks import services
from evershell.tasks.models import Task
from evershell.workspaces.models import Workspace
from tests.factories import make_member, make_org, principal_for
from tests.roles.conftest import make_role
from tests.support.model_servers import ModelServer
from tests.support.processes import BIN, ROOT

KINDS = {"anthropic": ("anthropic", "claude-sonnet-4-5"),
         "openai": ("openai", "o4-mini"),
         "openai_compatible": ("openai", "qwen2.5-coder:7b")}
KEY = "sk-live-canary-4f1d2a9c7e"
CAPS = "tools: [shell, read_file, write_file, list_files]\n"


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


@pytest.fixture
def server(kind):
    server = ModelServer(KINDS[kind][0], api_key=KEY).start()
    yield server
    server.stop()


def _submit(app, kind: str, server: ModelServer, key: str, monkeypatch) -> tuple[str, str]:
    monkeypatch.setenv(ALLOW_PRIVATE_SETTING, "true")  # the server listens on loopback
    model = KINDS[kind][1]
    with app.app_context():
        owner = make_member(make_org(), role="owner")
        actor = principal_for(owner)
        secret = secrets.create(actor, "MODEL_API_KEY", key)
        provider = providers.create(actor, {
            "kind": kind, "name": f"{kind} local", "base_url": server.base_url,
            "api_key_secret_id": secret.id, "models": [model]})
        db.session.commit()
        role = make_role(owner, provider=provider, model=model, capabilities=CAPS)
        for name in ("workspaces", "tasks"):
            get_queue(name).empty()
        task = services.submit(actor, {"role_id": role.role.id, "thinking_effort": "high",
                                       "description": "Write a greeting to out.txt"}, [])
        ids = task.id, task.workspace_id
        db.session.commit()
        return ids


def _burst(env) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN / "evershell"), "worker", "--burst"], cwd=ROOT, capture_output=True,
        text=True, timeout=180,
        env={**env, ALLOW_PRIVATE_SETTING: "true", "EVERSHELL_PROVIDER_BACKOFF_SECONDS": "0.01",
             "EVERSHELL_LOG_LEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _state(app, task_id: str, workspace_id: str):
    with app.app_context():
        task = db.session.get(Task, task_id)
        values = {c.key: getattr(task, c.key) for c in sa.inspect(Task).columns}
        status = db.session.get(Workspace, workspace_id).status
        log = events.page(f"task:{task_id}", limit=1000)["data"]
        audit = [json.dumps(e.details) for e in db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.org_id == task.org_id))]
        db.session.commit()
        return values, status, log, audit


def test_a_task_runs_through_each_provider_on_a_real_worker(world, kind, server, monkeypatch):
    app, env = world
    server.turns = [
        {"status": 429, "error_type": "rate_limit_error", "headers": {"retry-after": "0.2"}},
        {"thinking": "The user wants a file.", "text": "I'll write it.", "usage": (150, 25),
         "tool_calls": [{"name": "shell", "arguments": {
             "command": "printf 'hello from the sandbox' > out.txt && cat out.txt"}}]},
        {"text": "out.txt now says: hello from the sandbox", "chunks": 5, "usage": (260, 40)}]
    task_id, workspace_id = _submit(app, kind, server, KEY, monkeypatch)
    result = _burst(env)
    task, workspace_status, log, audit = _state(app, task_id, workspace_id)

    assert task["status"] == "succeeded", (task["failure_code"], task["failure_reason"])
    assert task["result"] == "out.txt now says: hello from the sandbox"
    assert (task["input_tokens"], task["output_tokens"]) == (150 + 260, 25 + 40)
    assert (task["model_calls"], task["tool_calls"]) == (2, 1)  # the 429 was a retry
    assert workspace_status == "idle"

    types = [e["type"] for e in log]
    assert types[:2] == ["task.submitted", "task.started"] and types[-1] == "task.completed"
    notes = log[1]["data"]["notes"]
    assert len(notes) == 1 and "thinking_effort" in notes[0]
    deltas = "".join(e["data"]["text"] for e in log if e["type"] == "message.delta")
    assert deltas == "I'll write it.out.txt now says: hello from the sandbox"
    call = next(e["data"] for e in log if e["type"] == "tool.call")
    assert call["name"] == "shell" and "printf" in call["arguments"]["command"]
    output = next(e["data"] for e in log if e["type"] == "tool.result")
    assert output["output"] == "hello from the sandbox" and output["exit_code"] == 0

    posts = server.posts()
    assert len(posts) == 3
    last = json.dumps(posts[-1]["body"])
    assert "hello from the sandbox" in last  # the tool's output went back to the model
    assert posts[0]["body"]["model"] == KINDS[kind][1]
    # The key went to the provider, and nowhere else.
    assert all(KEY not in json.dumps(e) for e in log)
    assert KEY not in result.stdout + result.stderr
    assert all(KEY not in entry for entry in audit)


def test_a_refused_key_fails_the_task_with_a_clear_code(world, kind, server, monkeypatch):
    app, env = world
    wrong = "sk-proj-not-the-key-77aa99bb"
    server.turns = [{"text": "never"}]
    task_id, workspace_id = _submit(app, kind, server, wrong, monkeypatch)
    result = _burst(env)
    task, workspace_status, log, _ = _state(app, task_id, workspace_id)
    assert (task["status"], task["failure_code"]) == ("failed", "provider_auth_failed")
    assert "refused the API key (HTTP 401" in task["failure_reason"]
    assert workspace_status == "idle" and len(server.posts()) == 1
    assert log[-1]["type"] == "task.failed"
    for text in (task["failure_reason"], json.dumps(log), result.stdout + result.stderr):
        assert wrong not in text and "77aa99bb" not in text
