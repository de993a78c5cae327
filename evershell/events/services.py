"""Appending to and reading event streams.

``append`` joins the caller's transaction. The number comes from the stream's counter
row, incremented by an upsert that keeps the row locked until that transaction ends
(PostgreSQL: the row lock of ``INSERT … ON CONFLICT DO UPDATE``, the same lock
``SELECT … FOR UPDATE`` takes; SQLite: writers hold the database lock from ``BEGIN
IMMEDIATE``, see ``core.db``). A second appender to the stream waits for the first to
commit or roll back, so numbers are 1, 2, 3, … and never commit out of order.

The event is published to Redis only when the outermost transaction commits: a
released SAVEPOINT publishes nothing yet, a rolled-back one (or a rolled-back
transaction) drops its events.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as orm_event
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from evershell.core.db import utcnow
from evershell.events.models import Event, EventStream
from evershell.extensions import db, get_redis

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_PENDING = "evershell_pending_events"  # key in Session.info


def channel_prefix(client) -> str:
    """Redis channels ignore database numbers: the number goes into the name so two
    instances sharing a Redis server never see each other's events."""
    return f"evershell:{client.connection_pool.connection_kwargs.get('db', 0)}:events:"


def serialise(event: Event) -> dict[str, Any]:
    """The public shape of an event: the ``data:`` of its SSE frame and an item of the
    JSON logs."""
    return {"id": event.number, "type": event.type,
            "created_at": _timestamp(event.created_at), "data": event.data}


def _timestamp(value: datetime) -> str:
    return value.isoformat()


def encode(event: Event) -> str:
    """``serialise(event)`` as compact JSON: what is published and what SSE sends."""
    return json.dumps(serialise(event), separators=(",", ":"))


def append(org_id: str, stream_key: str, type: str, data: dict[str, Any] | None = None) \
        -> Event:
    """Add the next event of ``stream_key`` to the current transaction; it is published
    live once that transaction commits. Holds the stream's counter row until then, so
    keep the transaction short after appending."""
    session = db.session()
    number = _next_number(session, org_id, stream_key)
    event = Event(org_id=org_id, stream_key=stream_key, number=number, type=type,
                  data=data or {}, created_at=utcnow())
    session.add(event)
    session.flush()
    owner = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append(
        (owner, get_redis(), stream_key, encode(event)))
    return event


def _next_number(session: orm.Session, org_id: str, stream_key: str) -> int:
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"event streams do not support {dialect}")
    statement = insert(EventStream).values(stream_key=stream_key, org_id=org_id, last_number=1)
    statement = statement.on_conflict_do_update(
        index_elements=[EventStream.stream_key],
        set_={"last_number": EventStream.last_number + 1},
    ).returning(EventStream.last_number, EventStream.org_id)
    number, owner_org = session.execute(statement).one()
    if owner_org != org_id:
        raise ValueError(f"stream {stream_key!r} belongs to another org")
    return number


def read_after(session: orm.Session, stream_key: str, after: int, limit: int) -> list[Event]:
    """Up to ``limit`` events of the stream numbered above ``after``, in order."""
    return list(session.scalars(
        sa.select(Event).where(Event.stream_key == stream_key, Event.number > after)
        .order_by(Event.number).limit(limit)))


def latest(session: orm.Session, stream_key: str) -> tuple[int, str | None]:
    """The stream's highest committed number and that event's type; (0, None) if empty."""
    row = session.execute(
        sa.select(Event.number, Event.type).where(Event.stream_key == stream_key)
        .order_by(Event.number.desc()).limit(1)).first()
    return (row.number, row.type) if row else (0, None)


def page(stream_key: str, after: int = 0, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
    """One page of a stream's log, oldest first: ``{"data": [serialise(e)…],
    "next_cursor"}``; pass ``next_cursor`` back as ``after`` (None when no more)."""
    limit = max(1, min(limit, MAX_PAGE))
    rows = read_after(db.session, stream_key, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [serialise(row) for row in rows],
            "next_cursor": str(rows[-1].number) if more else None}


# Publishing after commit. The listeners are on every Session (the web's, a job's, a
# test's), and act only on sessions that appended.

@orm_event.listens_for(orm.Session, "after_commit")
def _publish_committed(session: orm.Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT released: the outer transaction may still roll back
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    by_client: dict[int, list] = {}
    for _owner, client, stream_key, payload in pending:
        by_client.setdefault(id(client), [client]).append((stream_key, payload))
    for client, *events in by_client.values():
        try:
            with client.pipeline(transaction=False) as pipe:  # one round trip per commit
                for stream_key, payload in events:
                    pipe.publish(channel_prefix(client) + stream_key, payload)
                pipe.execute()
        except Exception:
            # The events are committed; live clients catch up from the database at
            # their stream's next event (a gap) or when they reconnect.
            log.exception("could not publish %d event(s) after commit", len(events))


@orm_event.listens_for(orm.Session, "after_soft_rollback")
def _drop_rolled_back(session: orm.Session, previous: orm.SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [entry for entry in pending if not _within(entry[0], previous)]


@orm_event.listens_for(orm.Session, "after_transaction_end")
def _forget_unpublished(session: orm.Session, transaction: orm.SessionTransaction) -> None:
    # The outermost transaction is over: whatever was not published (closed without a
    # commit) never will be.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)


def _within(transaction: orm.SessionTransaction | None,
            ancestor: orm.SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
