"""Ten concurrent stop requests against a live server move a workspace exactly once."""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from evershell.events.models import Event
from evershell.extensions import db, get_queue
from evershell.workspaces import services
from tests.factories import make_api_key, make_member, make_org, principal_for
from tests.roles.conftest import make_provider, make_role
from tests.support.processes import gunicorn
from tests.workspaces.conftest import run_jobs


@pytest.fixture(scope="module")
def web(world):
    _app, env = world
    with gunicorn(dict(env, EVERSHELL_RATE_LIMIT_BURST="1000"), workers=2) as url:
        yield url


def test_ten_concurrent_stops_move_the_workspace_once(world, web):
    app, _env = world
    with app.app_context():
        owner = make_member(make_org(), role="owner")
        key = make_api_key(owner)
        role = make_role(owner, provider=make_provider(owner))
        get_queue("workspaces").empty()
        workspace_id = services.create(principal_for(owner), role.role.id).id
        db.session.commit()
        run_jobs()  # provisioned in-process: idle
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def stop_it() -> None:
        barrier.wait()
        response = requests.post(f"{web}/v1/workspaces/{workspace_id}/stop", timeout=30,
                                 headers={"Authorization": f"Bearer {key}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=stop_it) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [202] + [409] * 9
    with app.app_context():
        moves = db.session.scalars(sa.select(Event).where(
            Event.stream_key == f"workspace:{workspace_id}").order_by(Event.number)).all()
        assert [(e.data["from"], e.data["to"]) for e in moves] == [
            (None, "provisioning"), ("provisioning", "idle"), ("idle", "stopping")]
        assert [j.func_name for j in get_queue("workspaces").jobs] == ["jobs.workspaces.stop"]
        get_queue("workspaces").empty()
        db.session.commit()


def test_concurrent_retries_of_one_multipart_submit_make_one_task(world, web):
    from evershell.tasks.models import Task
    app, _env = world
    with app.app_context():
        owner = make_member(make_org(), role="owner")
        key = make_api_key(owner)
        role_id = make_role(owner, provider=make_provider(owner)).role.id
        org_id = owner.org_id
        db.session.commit()
    barrier = threading.Barrier(6)
    answers: list[tuple[int, dict]] = []

    def submit() -> None:
        barrier.wait()
        response = requests.post(
            f"{web}/v1/tasks", timeout=30,
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "upload-once"},
            data={"role_id": role_id, "description": "count"},
            files={"file": ("notes.txt", b"one two three")})
        answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    created = [body for status, body in answers if status == 202]
    assert created and all(body == created[0] for body in created)
    assert all(status == 202 or body["error"]["code"] == "idempotency_in_progress"
               for status, body in answers), answers
    with app.app_context():
        tasks = db.session.scalars(sa.select(Task).where(Task.org_id == org_id)).all()
        assert [t.id for t in tasks] == [created[0]["task_id"]]
        assert [u["name"] for u in tasks[0].uploads] == ["notes.txt"]
        for name in ("workspaces", "tasks"):
            get_queue(name).empty()
        db.session.commit()
