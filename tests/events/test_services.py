"""Appending: per-stream numbers 1, 2, 3… that commit in order, even under concurrent
appenders; publication to Redis only after the outermost commit."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
import sqlalchemy as sa

from evershell.events import services
from evershell.events.models import Event
from evershell.extensions import db, get_redis
from tests.factories import make_org


@pytest.fixture
def published(app):
    """The messages published on this instance's event channels, read on demand."""
    with app.app_context():
        client = get_redis()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(services.channel_prefix(client) + "*")
        pubsub.get_message(timeout=1)  # the psubscribe confirmation

    def drain(wait: float = 0.3) -> list[tuple[str, dict]]:
        messages, deadline = [], time.monotonic() + wait
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.05)
            if message:
                channel = message["channel"].decode().rsplit(":", 2)
                messages.append((f"{channel[-2]}:{channel[-1]}", json.loads(message["data"])))
        return messages

    yield drain
    pubsub.close()


def test_each_stream_numbers_its_events_from_one(app, session):
    org = make_org()
    for n in range(3):
        services.append(org.id, "workspace:ws_a", "workspace.status", {"n": n})
    services.append(org.id, "task:task_b", "task.submitted", {})
    session.commit()
    assert services.page("workspace:ws_a")["data"] == [
        {"id": n + 1, "type": "workspace.status", "created_at": e.created_at.isoformat(),
         "data": {"n": n}}
        for n, e in enumerate(session.scalars(sa.select(Event).where(
            Event.stream_key == "workspace:ws_a").order_by(Event.number)))]
    assert [e["id"] for e in services.page("task:task_b")["data"]] == [1]


def test_pages_resume_after_the_cursor(app, session):
    org = make_org()
    for n in range(5):
        services.append(org.id, "task:task_p", "message.delta", {"n": n})
    session.commit()
    first = services.page("task:task_p", after=0, limit=2)
    assert [e["id"] for e in first["data"]] == [1, 2] and first["next_cursor"] == "2"
    rest = services.page("task:task_p", after=int(first["next_cursor"]), limit=10)
    assert [e["id"] for e in rest["data"]] == [3, 4, 5] and rest["next_cursor"] is None


def test_a_stream_belongs_to_one_org(app, session):
    first, second = make_org(), make_org()
    services.append(first.id, "task:task_o", "task.submitted", {})
    with pytest.raises(ValueError, match="another org"):
        services.append(second.id, "task:task_o", "task.submitted", {})


def test_publishes_once_after_commit_and_never_on_rollback(app, session, published):
    org = make_org()
    published()  # nothing from the factory
    services.append(org.id, "task:task_r", "task.submitted", {"try": 1})
    assert published() == []  # not before the commit
    session.rollback()
    assert published() == []
    assert services.page("task:task_r")["data"] == []

    services.append(org.id, "task:task_r", "task.submitted", {"try": 2})
    assert published() == []
    session.commit()
    stored = services.page("task:task_r")["data"]
    assert [e["id"] for e in stored] == [1]  # the rolled-back number was never taken
    assert published() == [("task:task_r", stored[0])]
    session.commit()
    assert published() == []  # once


def test_a_released_savepoint_publishes_only_when_the_outer_transaction_commits(
        app, session, published):
    org = make_org()
    published()
    services.append(org.id, "task:task_s", "task.submitted", {"where": "outer"})
    with session.begin_nested():
        services.append(org.id, "task:task_s", "task.started", {"where": "kept"})
    assert published() == []  # released, but the outer transaction may still roll back
    nested = session.begin_nested()
    services.append(org.id, "task:task_s", "tool.call", {"where": "dropped"})
    nested.rollback()
    session.commit()
    assert [(key, e["id"], e["data"]["where"]) for key, e in published()] == [
        ("task:task_s", 1, "outer"), ("task:task_s", 2, "kept")]
    assert [e["data"]["where"] for e in services.page("task:task_s")["data"]] == [
        "outer", "kept"]


def test_concurrent_appenders_get_contiguous_numbers_committed_in_order(live_db):
    """Eight threads, each with its own session, append to one stream and linger before
    committing; a reader polling meanwhile never sees a number committed before a
    lower one, and the end result is exactly 1..N."""
    app, _url = live_db
    with app.app_context():
        from evershell.orgs import services as orgs
        org_id = orgs.create_org("Concurrent", f"concurrent-{random.randrange(10**9)}").id
        db.session.commit()
    threads, per_thread, key = 8, 15, f"task:task_c{random.randrange(10**9)}"
    errors: list[BaseException] = []
    done = threading.Event()
    gaps: list[list[int]] = []

    def appender(index: int) -> None:
        try:
            with app.app_context():
                for step in range(per_thread):
                    services.append(org_id, key, "message.delta", {"t": index, "s": step})
                    time.sleep(random.uniform(0, 0.003))  # hold the counter a moment
                    db.session.commit()
        except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    def reader() -> None:
        with app.app_context():
            while not done.is_set():
                numbers = db.session.scalars(sa.select(Event.number).where(
                    Event.stream_key == key).order_by(Event.number)).all()
                db.session.rollback()
                if numbers != list(range(1, len(numbers) + 1)):
                    gaps.append(numbers)
                time.sleep(0.002)

    watcher = threading.Thread(target=reader)
    watcher.start()
    workers = [threading.Thread(target=appender, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    done.set()
    watcher.join(10)
    assert not errors, errors
    assert not gaps, gaps[:1]
    with app.app_context():
        rows = db.session.execute(sa.select(Event.number, Event.data).where(
            Event.stream_key == key).order_by(Event.number)).all()
    assert [row.number for row in rows] == list(range(1, threads * per_thread + 1))
    for index in range(threads):  # each thread's own events in its order
        assert [r.data["s"] for r in rows if r.data["t"] == index] == list(range(per_thread))
