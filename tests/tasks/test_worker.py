"""Tasks on real `evershell worker` processes: a burst worker runs one end to end; a
worker killed with SIGKILL mid-task leaves no process behind, and the reaper fails the
task and settles its workspace."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.extensions import db, get_queue
from evershell.tasks import services
from evershell.tasks.models import Task
from evershell.workspaces.models import Workspace
from tests.factories import make_member, make_org, principal_for
from tests.roles.conftest import make_provider, make_role
from tests.support.processes import BIN, ROOT, alive, processes_of, running_command, stop


def _submit(app, script):
    with app.app_context():
        owner = make_member(make_org(), role="owner")
        provider = make_provider(owner, script=script)
        role = make_role(owner, provider=provider,
                         capabilities="tools: [shell, read_file, write_file, list_files]\n")
        for name in ("workspaces", "tasks"):
            get_queue(name).empty()
        actor = principal_for(owner)
        task = services.submit(actor, {"role_id": role.role.id, "description": "go"}, [])
        ids = task.id, task.workspace_id
        db.session.commit()
        return ids


def _row(app, model, row_id):
    with app.app_context():
        row = db.session.get(model, row_id)
        values = {c.key: getattr(row, c.key) for c in sa.inspect(model).columns}
        db.session.commit()
        return values


def test_a_burst_worker_runs_a_task_end_to_end(world):
    app, env = world
    task_id, workspace_id = _submit(app, [
        {"tool_calls": [{"name": "shell", "arguments": {"command": "echo hello > out.txt"}}]},
        {"text": "Wrote it."}])
    result = subprocess.run([str(BIN / "evershell"), "worker", "--burst"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    task = _row(app, Task, task_id)
    assert task["status"] == "succeeded", (task["failure_code"], task["failure_reason"])
    assert task["result"] == "Wrote it." and task["tool_calls"] == 1
    assert _row(app, Workspace, workspace_id)["status"] == "idle"


def test_a_worker_killed_mid_task_leaves_nothing_running(world):
    app, env = world
    task_id, workspace_id = _submit(app, [
        {"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 600"}}]},
        {"text": "never"}])
    uid = _row(app, Workspace, workspace_id)["sandbox_uid"]
    worker = subprocess.Popen([str(BIN / "evershell"), "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not running_command(uid, "sleep 600") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running_command(uid, "sleep 600"), "the task's command never started"
        assert _row(app, Task, task_id)["status"] == "running"
        horses = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in horses) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in horses if alive(p)], "a work horse outlived its worker"
    finally:
        if worker.poll() is None:
            stop(worker)
    with app.app_context():  # its deadline passes: a live worker's reaper settles it
        db.session.execute(sa.update(Task).where(Task.id == task_id).values(
            job_deadline=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    reaper = subprocess.Popen([str(BIN / "evershell"), "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _row(app, Task, task_id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(reaper)
    # bwrap --die-with-parent ends the sandbox with the horse; should a command have
    # outlived it (killed in the middle of bwrap's own start-up), the reaper killed its
    # cgroup: either way nothing of the task runs now.
    assert not processes_of(uid), "a process of the task is still running"
    task = _row(app, Task, task_id)
    assert task["status"] == "failed" and task["failure_code"] == "worker_lost"
    assert _row(app, Workspace, workspace_id)["status"] == "idle"
