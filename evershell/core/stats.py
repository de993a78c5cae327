"""Counting what one request costs: SQL statements and Redis round trips.

With ``EVERSHELL_REQUEST_STATS=true`` every response carries
``X-Evershell-Stats: sql=<statements>;redis=<round trips>;tx=<transactions>`` (a pipeline
is one round trip; transaction control is not a statement here, but each transaction
that was open on the database when SQLAlchemy committed or rolled it back is a ``tx``).
``bench/request_path.py`` and the request-path tests read it from a live server: counts
are exact where timings are noisy.
Off by default: the hooks cost a little, and the header tells a stranger something.
"""

from __future__ import annotations

import contextvars
import re

from flask import Flask

HEADER = "X-Evershell-Stats"
# Not statements: transaction control, which SQLite's BEGIN IMMEDIATE/DEFERRED sends as
# a statement and psycopg sends implicitly (the same work, seen only on one of the two).
_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b",
                                  re.IGNORECASE)
_counts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "evershell_request_stats", default=None)
_installed = False


def _count(index: int) -> None:
    counts = _counts.get()
    if counts is not None:
        counts[index] += 1


def _install_hooks() -> None:
    """Process-wide hooks (once): every engine's cursor executions, every Redis
    connection's sends."""
    global _installed
    if _installed:
        return
    import redis.connection
    import sqlalchemy as sa

    def statement(conn, cursor, sql, *args, **kwargs) -> None:
        if not _TRANSACTION_CONTROL.match(sql):
            _count(0)

    def transaction_end(conn) -> None:
        if conn.invalidated:  # a dropped connection: nothing of it reached the database
            return
        raw = conn.connection.dbapi_connection
        if conn.dialect.name == "sqlite":
            if raw.in_transaction:
                _count(2)
        elif raw.info.transaction_status != 0:  # psycopg: not IDLE, so a BEGIN went out
            _count(2)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", statement)
    sa.event.listen(sa.engine.Engine, "commit", transaction_end)
    sa.event.listen(sa.engine.Engine, "rollback", transaction_end)
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        _count(1)
        return original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send_packed_command
    _installed = True


def init_app(app: Flask) -> None:
    if not app.config.get("REQUEST_STATS"):
        return
    _install_hooks()

    @app.before_request
    def start_counting() -> None:
        _counts.set([0, 0, 0])

    @app.after_request
    def report(response):
        counts = _counts.get()
        if counts is not None:
            response.headers[HEADER] = f"sql={counts[0]};redis={counts[1]};tx={counts[2]}"
        return response
