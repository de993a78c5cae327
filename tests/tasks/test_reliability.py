"""Many tasks at once on real workers: 20 workspaces × 10 rounds (one task per workspace
per round, each round submitted at once) all reach a terminal state, and every task's
event log is complete and gap-free (1, 2, 3, … from task.submitted to its end)."""

from __future__ import annotations

import os
import subprocess
import time

import sqlalchemy as sa

from evershell.events.models import Event
from evershell.extensions import db, get_queue
from evershell.tasks import services
from evershell.tasks.models import TERMINAL, Task
from tests.factories import make_member, make_org, principal_for
from tests.roles.conftest import make_provider, make_role
from tests.support.processes import BIN, ROOT, stop

# The whole 20 × 10 on PostgreSQL (the whole suite); a quarter of it in the fast SQLite
# run, which is for one machine anyway.
_FULL = (os.environ.get("DATABASE_URL") or "").startswith("postgresql")
WORKSPACES = int(os.environ.get("EVERSHELL_RELIABILITY_WORKSPACES", "20" if _FULL else "5"))
ROUNDS = int(os.environ.get("EVERSHELL_RELIABILITY_ROUNDS", "10" if _FULL else "4"))
TERMINAL_TYPES = {"task.completed", "task.failed", "task.cancelled"}


def _wait_terminal(app, task_ids: list[str], seconds: float) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        with app.app_context():
            statuses = dict(db.session.execute(sa.select(Task.id, Task.status).where(
                Task.id.in_(task_ids))).all())
            db.session.commit()
        if all(s in TERMINAL for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


def _stuck(app, statuses: dict[str, str]) -> list:
    """What the unfinished tasks and their workspaces say, for the failure message."""
    from evershell.workspaces.models import Workspace
    report = []
    with app.app_context():
        for task_id, status in statuses.items():
            if status in TERMINAL:
                continue
            task = db.session.get(Task, task_id)
            workspace = db.session.get(Workspace, task.workspace_id)
            moves = db.session.execute(sa.select(Event.type, Event.data).where(
                Event.stream_key == f"workspace:{workspace.id}").order_by(Event.number)).all()
            report.append((task_id, status, workspace.status, workspace.failure_reason,
                           [(d.get("from"), d.get("to"), d.get("cause")) for _t, d in moves],
                           [j.func_name for j in get_queue("workspaces").jobs],
                           [j.func_name for j in get_queue("tasks").jobs]))
        db.session.commit()
    return report


def test_twenty_workspaces_ten_rounds_all_finish_with_whole_logs(world):
    app, env = world
    script = [{"tool_calls": [{"name": "shell", "arguments": {
        "command": "echo round >> /data/work/rounds.txt"}}]}, {"text": "done"}]
    with app.app_context():
        for name in ("workspaces", "tasks"):
            get_queue(name).empty()
        owner = make_member(make_org(), role="owner")
        role = make_role(owner, provider=make_provider(owner, script=script),
                         capabilities="tools: [shell]\n")
        actor, role_id = principal_for(owner), role.role.id
        db.session.commit()
    workers = [subprocess.Popen([str(BIN / "evershell"), "worker"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    all_tasks: list[str] = []
    try:
        with app.app_context():
            first = []
            for _ in range(WORKSPACES):
                task = services.submit(actor, {"role_id": role_id,
                                               "description": "round 1"}, [])
                first.append((task.id, task.workspace_id))
                db.session.commit()
        workspace_ids = [w for _t, w in first]
        round_ids = [t for t, _w in first]
        for number in range(2, ROUNDS + 2):
            statuses = _wait_terminal(app, round_ids, 180)
            assert all(s in TERMINAL for s in statuses.values()), _stuck(app, statuses)
            all_tasks += round_ids
            if number > ROUNDS:
                break
            round_ids = []
            with app.app_context():
                for workspace_id in workspace_ids:
                    task = services.submit_next(actor, workspace_id,
                                                {"description": f"round {number}"}, [])
                    round_ids.append(task.id)
                    db.session.commit()
    finally:
        for worker in workers:
            stop(worker)
    with app.app_context():
        rows = db.session.execute(sa.select(Task.id, Task.status, Task.failure_reason).where(
            Task.id.in_(all_tasks))).all()
        assert len(rows) == WORKSPACES * ROUNDS
        assert {status for _id, status, _r in rows} == {"succeeded"}, \
            [r for r in rows if r[1] != "succeeded"][:3]
        for task_id in all_tasks:
            log = db.session.execute(sa.select(Event.number, Event.type).where(
                Event.stream_key == f"task:{task_id}").order_by(Event.number)).all()
            numbers = [n for n, _t in log]
            assert numbers == list(range(1, len(numbers) + 1)), (task_id, numbers)
            assert log[0][1] == "task.submitted" and log[-1][1] in TERMINAL_TYPES
            assert [t for _n, t in log].count("task.started") == 1
        db.session.commit()
