"""The lifecycle on real `evershell worker` processes (burst and live), and what a worker
killed with SIGKILL leaves behind: no work horse, no sandboxed process, and a workspace
the reaper settles."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.extensions import db, get_queue
from evershell.workspaces import services
from evershell.workspaces.models import Workspace
from tests.factories import make_member, make_org, principal_for
from tests.roles.conftest import make_provider, make_role
from tests.support.processes import BIN, ROOT, alive, processes_of, running_command, stop

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (apt-get install bubblewrap)")


@pytest.fixture
def workspace(world):
    app, _env = world
    with app.app_context():
        owner = make_member(make_org(), role="owner")
        role = make_role(owner, provider=make_provider(owner))
        get_queue("workspaces").empty()
        actor = principal_for(owner)
        created = services.create(actor, role.role.id)
        workspace_id = created.id
        # Commit last: outside requests a SQLite transaction holds the write lock.
        db.session.commit()
        yield app, workspace_id, actor


def _status(app, workspace_id: str) -> str:
    with app.app_context():
        value = db.session.scalar(sa.select(Workspace.status).where(
            Workspace.id == workspace_id))
        db.session.commit()
        return value


def _burst(env) -> None:
    result = subprocess.run([str(BIN / "evershell"), "worker", "--burst"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_burst_worker_provisions_and_stops(world, workspace):
    app, workspace_id, actor = workspace
    _burst(world[1])
    assert _status(app, workspace_id) == "idle"
    with app.app_context():
        services.stop(actor, workspace_id)
        db.session.commit()
    _burst(world[1])
    assert _status(app, workspace_id) == "stopped"


def test_a_worker_killed_mid_job_leaves_no_process_and_the_reaper_settles(world, workspace):
    app, workspace_id, _actor = workspace
    _burst(world[1])  # provisioned: idle
    with app.app_context():
        row = db.session.get(Workspace, workspace_id)
        uid, owner = row.sandbox_uid, principal_for_owner(row)
        # A long command in the sandbox, as a task's tool call will be.
        get_queue("workspaces").enqueue("tests.workspaces.sample_jobs.sleep_in_sandbox",
                                        workspace_id, job_timeout=600)
        # And a stop whose job will die with the worker.
        services.stop(owner, workspace_id)
        db.session.commit()
    worker = subprocess.Popen([str(BIN / "evershell"), "worker"], env=world[1], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not running_command(uid, "sleep 600") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running_command(uid, "sleep 600"), "the sandboxed command never started"
        horses = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()]
        assert horses
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 15
        while (any(alive(p) for p in horses) or processes_of(uid)) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in horses if alive(p)], "a work horse outlived its worker"
        assert not processes_of(uid), "a sandboxed process outlived its worker"
    finally:
        if worker.poll() is None:
            stop(worker)

    # The stop job never ran: past its deadline, a live worker's reaper settles it.
    with app.app_context():
        db.session.execute(sa.update(Workspace).where(Workspace.id == workspace_id).values(
            job_deadline=utcnow() - timedelta(seconds=1)))
        get_queue("workspaces").empty()
        db.session.commit()
    reaper = subprocess.Popen([str(BIN / "evershell"), "worker"], env=world[1], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _status(app, workspace_id) == "stopping" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(reaper)
    # The live directory was intact: nothing lost, back to idle.
    assert _status(app, workspace_id) == "idle"


def principal_for_owner(workspace: Workspace):
    from evershell.access.models import Membership
    membership = db.session.scalar(sa.select(Membership).where(
        Membership.org_id == workspace.org_id,
        Membership.user_id == workspace.created_by_user_id))
    return principal_for(membership)
