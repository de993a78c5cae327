"""Database helpers shared by every domain: the model base, UTC timestamps, SQLite tuning."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from evershell.core.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; constraint names are fixed so migrations work on every backend."""

    metadata = sa.MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Timestamped:
    """``created_at`` / ``updated_at`` in UTC, maintained by the ORM."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def id_column(prefix: str) -> Mapped[str]:
    """A primary key column holding a prefixed, time-sortable id."""
    return mapped_column(sa.String(40), primary_key=True, default=lambda: new_id(prefix))


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, and transactions SQLAlchemy fully controls, with writers that queue.

    pysqlite's own implicit BEGIN handling breaks SAVEPOINT (used by tests and nested
    services), so it is switched off and SQLAlchemy emits BEGIN itself.

    A deferred ``BEGIN`` that has read cannot always upgrade to a write: when another
    connection committed in between, SQLite answers "database is locked" at once, and no
    busy timeout helps. So every transaction that may write begins ``IMMEDIATE`` (it takes
    the write lock up front, and writers queue); only requests with a safe method that
    have not declared writes (``declare_writes``) begin deferred and read a snapshot
    without waiting. The wait for the lock is a Python loop with ``time.sleep`` rather
    than SQLite's busy handler, which sleeps in C: under gevent that would freeze every
    greenlet of the process, including the one holding the lock.
    """
    deadline_seconds = busy_timeout_ms / 1000

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get(BEGIN_OPTION)
        if mode == "NONE":  # read_statements_alone: pysqlite's autocommit, no BEGIN
            conn.info[_BEGIN_MODE] = "NONE"
            return
        if _reads_only() or mode == "DEFERRED":
            conn.info[_BEGIN_MODE] = "DEFERRED"
            conn.exec_driver_sql("BEGIN")
            return
        conn.info[_BEGIN_MODE] = "IMMEDIATE"
        _begin_immediate(conn.connection.dbapi_connection, deadline_seconds,
                         busy_timeout_ms)


_BEGIN_MODE = "evershell_begin_mode"
# ``connection.execution_options(evershell_begin="DEFERRED")``: a connection whose
# transactions begin deferred whatever the context (the test suite's outer transaction);
# ``"NONE"``: no transaction at all (``read_statements_alone``).
BEGIN_OPTION = "evershell_begin"


def read_statements_alone(session) -> None:
    """This request only reads (a ``/v1`` GET): each of its statements runs on its own
    and sees what was committed when it ran, without the BEGIN and COMMIT a transaction
    would add to every request (round trips on PostgreSQL, where the connection is put
    in autocommit; on SQLite no BEGIN is sent). A transaction would not give a read more
    than that on PostgreSQL, where READ COMMITTED takes a snapshot per statement: reads
    of two statements must not assume the second sees the rows of the first.

    Nothing changes when the session is already bound inside a transaction (the tests'
    sessions) or has begun one. A flush in such a request is a bug and raises
    (``_no_writes_in_reads``): a read that must write calls ``declare_writes`` first."""
    session = session() if callable(session) else session  # a scoped_session
    bind = session.get_bind()
    if not isinstance(bind, Engine) or session.in_transaction():
        return
    if bind.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    elif bind.dialect.name == "sqlite":
        session.connection(execution_options={BEGIN_OPTION: "NONE"})
    else:
        return
    session.info[_READS_ALONE] = True


_READS_ALONE = "evershell_reads_alone"


@event.listens_for(sa.orm.Session, "before_flush")
def _no_writes_in_reads(session, _context, _instances) -> None:
    if session.info.get(_READS_ALONE):
        raise RuntimeError("a read request's statements run without a transaction: "
                           "call declare_writes before writing")


@event.listens_for(sa.orm.Session, "after_transaction_end")
def _reads_ended(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_READS_ALONE, None)


def _reads_only() -> bool:
    from flask import g, has_request_context, request
    return (has_request_context() and request.method in SAFE_METHODS
            and not g.get("db_writes", False))


def _begin_immediate(dbapi_connection, deadline_seconds: float, busy_timeout_ms: int) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock with a cooperative sleep."""
    import sqlite3
    import time

    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + deadline_seconds
        pause = 0.001
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    from evershell.core.errors import ErrorCode, EvershellError
                    raise EvershellError(
                        ErrorCode.SERVICE_UNAVAILABLE,
                        "The database is busy with other writes; retry shortly.", 503,
                        headers={"Retry-After": "1"}) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.close()


def declare_writes(session) -> None:
    """Say that this safe-method request (a sign-in callback, a key's first use in a
    minute) is about to write. On SQLite a deferred read transaction already open is
    ended (it has written nothing) so the next one takes the write lock up front;
    elsewhere nothing changes."""
    if not _reads_only():
        return
    from flask import g
    g.db_writes = True
    session = session() if callable(session) else session  # a scoped_session
    if session.info.pop(_READS_ALONE, False) or session.in_transaction() and \
            session.connection().info.get(_BEGIN_MODE) == "DEFERRED":
        session.commit()


def on_commit(session, callback) -> None:
    """Call ``callback()`` once the session's current transaction commits; forget it if
    the transaction rolls back first (so it never fires with a later commit)."""
    _hook(session)
    session.info["evershell_on_commit"].append(callback)


def on_rollback(session, callback) -> None:
    """Call ``callback()`` if the session's current transaction rolls back (not a
    SAVEPOINT of it); forget it once the transaction commits."""
    _hook(session)
    session.info["evershell_on_rollback"].append(callback)


def _hook(session) -> None:
    session.info.setdefault("evershell_on_commit", [])
    session.info.setdefault("evershell_on_rollback", [])
    if session.info.get("evershell_hooked"):
        return
    session.info["evershell_hooked"] = True
    from sqlalchemy import event as sa_event

    def _end(sess, run: str) -> None:
        callbacks = list(sess.info[run])
        sess.info["evershell_on_commit"], sess.info["evershell_on_rollback"] = [], []
        for item in callbacks:
            item()

    @sa_event.listens_for(session, "after_commit")
    def _committed(sess):
        _end(sess, "evershell_on_commit")

    @sa_event.listens_for(session, "after_soft_rollback")
    def _rolled_back(sess, previous):
        if not previous.nested:  # a SAVEPOINT rolled back: the outer work goes on
            _end(sess, "evershell_on_rollback")
