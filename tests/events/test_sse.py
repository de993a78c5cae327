"""The SSE helper over real HTTP, through gunicorn's gevent worker: resume with
Last-Event-ID while another thread appends, heartbeats, termination, the single Redis
subscription per process, and recovery when Redis drops it."""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from evershell.events import services, sse
from evershell.extensions import db
from evershell.orgs import services as orgs
from tests.events.conftest import SSEReader

_keys = itertools.count(1)


@pytest.fixture(scope="module")
def org_id(live_db) -> str:
    app, _url = live_db
    with app.app_context():
        org = orgs.create_org("Streams", f"streams-{random.randrange(10**9)}")
        db.session.commit()
        return org.id


def new_key(kind: str = "task") -> str:
    return f"{kind}:{kind}_{os.getpid()}_{next(_keys)}_{random.randrange(10**6)}"


def append(app, org_id: str, key: str, type: str, data: dict | None = None) -> None:
    with app.app_context():
        services.append(org_id, key, type, data or {})
        db.session.commit()


def stored(app, key: str) -> list[dict]:
    with app.app_context():
        return services.page(key, after=0, limit=1000)["data"]


def test_resuming_with_last_event_id_yields_exactly_the_stored_log(server, live_db, org_id):
    app, _ = live_db
    key, total = new_key(), 120

    def writer() -> None:
        for n in range(1, total):
            append(app, org_id, key, "message.delta", {"n": n, "text": "x" * (n % 7)})
            time.sleep(random.uniform(0, 0.01))
        append(app, org_id, key, "task.completed", {"n": total})

    thread = threading.Thread(target=writer)
    thread.start()
    received: list[dict] = []
    connections = 0
    try:
        while True:
            connections += 1
            reader = SSEReader(f"{server}/test/events/{key}?terminal=task.completed",
                               last_event_id=received[-1]["id"] if received else None)
            try:
                for _ in range(random.randint(5, 25)):  # then drop the connection
                    frame = reader.next_event()
                    if frame is None:
                        break
                    body = json.loads(frame.data)
                    assert (frame.id, frame.event) == (body["id"], body["type"])
                    received.append(body)
                else:
                    continue
            finally:
                reader.close()
            break  # the server closed the stream
    finally:
        thread.join(60)
    assert connections > 3  # resumed several times while the writer was busy
    assert received[-1]["type"] == "task.completed"
    assert received == stored(app, key)  # every event, once, in order, as stored
    assert [e["id"] for e in received] == list(range(1, total + 1))


def test_after_parameter_and_header_precedence(server, live_db, org_id):
    app, _ = live_db
    key = new_key()
    for n in range(4):
        append(app, org_id, key, "message.delta", {"n": n})
    append(app, org_id, key, "task.completed")
    url = f"{server}/test/events/{key}?terminal=task.completed&after=1"
    reader = SSEReader(url)
    assert [reader.next_event().id for _ in range(4)] == [2, 3, 4, 5]
    assert reader.next_frame() is None  # closed after the terminal event
    reader = SSEReader(url, last_event_id=3)  # the header wins over ?after=
    assert [f.id for f in iter(reader.next_event, None)] == [4, 5]
    # Reconnecting after the terminal event: nothing more, and the stream closes at once.
    reader = SSEReader(url, last_event_id=5)
    assert reader.next_event() is None
    bad = requests.get(url, headers={"Last-Event-ID": "five"}, timeout=10)
    assert bad.status_code == 400


def test_a_long_log_replays_whole_across_batches(server, live_db, org_id):
    app, _ = live_db
    key = new_key()
    with app.app_context():
        for n in range(sse.REPLAY_BATCH + 100):
            services.append(org_id, key, "message.delta", {"n": n})
        services.append(org_id, key, "task.completed")
        db.session.commit()
    reader = SSEReader(f"{server}/test/events/{key}?terminal=task.completed&after=7")
    assert [f.id for f in iter(reader.next_event, None)] == list(
        range(8, sse.REPLAY_BATCH + 102))


def test_live_events_heartbeats_and_the_response_headers(server, live_db, org_id):
    app, _ = live_db
    key = new_key("workspace")
    reader = SSEReader(f"{server}/test/events/{key}?heartbeat=0.2")
    assert reader.response.headers["Content-Type"].startswith("text/event-stream")
    assert reader.response.headers["Cache-Control"] == "no-cache, no-transform"
    assert reader.response.headers["X-Accel-Buffering"] == "no"
    started = time.monotonic()
    beats = 0
    while beats < 3:
        frame = reader.next_frame()
        beats += "heartbeat" in frame.comments
    assert 0.4 < time.monotonic() - started < 3
    append(app, org_id, key, "workspace.status", {"from": "provisioning", "to": "idle"})
    frame = reader.next_event()
    assert (frame.id, frame.event) == (1, "workspace.status")
    assert json.loads(frame.data) == stored(app, key)[0]
    reader.close()


def test_a_stream_without_terminal_events_ends_when_finished_or_after_max_seconds(
        server, live_db):
    app, _ = live_db
    with app.app_context():
        doomed = orgs.create_org("Doomed", f"doomed-{random.randrange(10**9)}").id
        db.session.commit()
    key = new_key("workspace")
    append(app, doomed, key, "workspace.status", {"to": "idle"})
    reader = SSEReader(f"{server}/test/events/{key}?org={doomed}&heartbeat=0.2")
    assert reader.next_event().id == 1
    with app.app_context():
        db.session.execute(db.text("DELETE FROM orgs WHERE id = :id"), {"id": doomed})
        db.session.commit()
    started = time.monotonic()
    while reader.next_frame() is not None:
        pass
    assert time.monotonic() - started < 3  # noticed at a heartbeat

    reader = SSEReader(f"{server}/test/events/{new_key('workspace')}?max_seconds=0.5")
    frames = list(iter(reader.next_frame, None))
    assert frames[-1].retry == 3000


def test_one_redis_subscription_per_process_whatever_the_number_of_clients(
        server, live_db, org_id, redis_url):
    app, _ = live_db
    keys = [new_key() for _ in range(5)]
    readers = [SSEReader(f"{server}/test/events/{keys[n % 5]}") for n in range(30)]
    try:
        for reader in readers:
            reader.next_frame()  # ": open": registered
        state = requests.get(f"{server}/test/live", timeout=10).json()
        assert state["clients"] >= 30
        pid = state["pid"]
        named = [c for c in redis.Redis.from_url(redis_url).client_list()
                 if c.get("name") == f"evershell-events:{pid}"]
        assert len(named) == 1 and named[0]["psub"] == "1"
        # Every Redis connection the web process holds: the subscription, and at most
        # one pooled connection — not one per client.
        assert redis_connections(pid, redis.Redis.from_url(redis_url)) <= 2
        # And every client gets the events of its stream.
        for key in keys:
            append(app, org_id, key, "task.started")
        for reader in readers:
            assert reader.next_event().event == "task.started"
    finally:
        for reader in readers:
            reader.close()


def append_unpublished(app, org_id: str, key: str, type: str) -> None:
    """Commit an event whose publication is lost (as when Redis is unreachable)."""
    with app.app_context():
        services.append(org_id, key, type, {})
        db.session.info.pop("evershell_pending_events")
        db.session.commit()


def test_a_live_number_ahead_of_the_last_sent_is_filled_from_the_database(
        server, live_db, org_id):
    app, _ = live_db
    key = new_key()
    reader = SSEReader(f"{server}/test/events/{key}?terminal=task.completed")
    reader.next_frame()
    append_unpublished(app, org_id, key, "task.started")
    append(app, org_id, key, "task.completed")
    assert [f.id for f in iter(reader.next_event, None)] == [1, 2]


def test_the_subscription_recovers_when_redis_drops_it(server, live_db, org_id, redis_url):
    """Events committed while the subscription was down arrive once it is back."""
    app, _ = live_db
    key = new_key()
    reader = SSEReader(f"{server}/test/events/{key}?terminal=task.completed")
    reader.next_frame()
    pid = requests.get(f"{server}/test/live", timeout=10).json()["pid"]
    admin = redis.Redis.from_url(redis_url)
    [subscription] = [c for c in admin.client_list()
                      if c.get("name") == f"evershell-events:{pid}"]
    append_unpublished(app, org_id, key, "task.started")
    admin.client_kill_filter(_id=subscription["id"])
    assert reader.next_event().id == 1  # nothing else was published: re-read on resubscribe
    [again] = [c for c in admin.client_list() if c.get("name") == f"evershell-events:{pid}"]
    assert again["id"] != subscription["id"]
    append(app, org_id, key, "task.completed")
    assert [f.id for f in iter(reader.next_event, None)] == [2]


def redis_connections(pid: int, admin: redis.Redis) -> int:
    """TCP connections of process ``pid`` to the Redis server ``admin`` talks to."""
    port = admin.connection_pool.connection_kwargs.get("port", 6379)
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes and fields[3] == "01":
                count += 1
    return count


def test_stream_reads_never_take_the_sqlite_write_lock(live_db):
    """Even when the request declared writes (an API key's first use in a minute), the
    stream's reads begin deferred: an open stream never queues behind, or holds up,
    writers."""
    app, url = live_db
    if not url.startswith("sqlite"):
        pytest.skip("SQLite-only behaviour")
    from flask import g

    with app.test_request_context("/v1/anything", method="GET"):
        g.db_writes = True
        with sse._short_session() as session:
            assert session.connection().info["evershell_begin_mode"] == "DEFERRED"
        assert not session.in_transaction()  # and over straight after
