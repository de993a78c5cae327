"""Reading the audit log: one filtered query for an org, pages of it for the list, and
all of it in keyset batches for exports (memory stays flat however long the log is)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.access.routes import require
from evershell.access.scopes import Scope
from evershell.audit.models import AuditEntry
from evershell.core.db import UTCDateTime
from evershell.core.errors import validation_error
from evershell.core.pagination import decode_cursor, encode_cursor, paginate
from evershell.extensions import db

FILTERS = ("actor", "action", "target", "since", "until", "outcome")
OUTCOMES = ("success", "denied")
TARGET_TYPE_PREFIX = "type:"
EXPORT_BATCH_SIZE = 500


def criteria(org_id: str, *, actor: str | None = None, action: str | None = None,
             target: str | None = None, since: datetime | None = None,
             until: datetime | None = None, outcome: str | None = None) \
        -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which conditions the filters make (a shape: names of ``_CONDITIONS``) and the
    values they bind. Statements are built once per shape and reused with other values.

    - ``actor``: an email (case-insensitive; anything with an ``@``) or a user id;
    - ``action``: exact, or a prefix when it ends with ``.*`` (``api_key.*``);
    - ``target``: a target id, or ``type:<target_type>``;
    - ``since`` (inclusive) and ``until`` (exclusive): timezone-aware datetimes;
    - ``outcome``: ``success`` or ``denied``.

    Raises 400 ``validation_error`` for filters that cannot match anything by
    construction (``since`` after ``until``, an empty ``type:``, a naive datetime).
    """
    fields: dict[str, list[str]] = {}
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            fields[name] = ["Give a timezone (e.g. a trailing Z for UTC)."]
    if since is not None and until is not None and not fields and since > until:
        fields["until"] = ["Must not be earlier than since."]
    if target is not None and target.startswith(TARGET_TYPE_PREFIX) and \
            not target.removeprefix(TARGET_TYPE_PREFIX):
        fields["target"] = ["Name a target type after type:, e.g. type:api_key."]
    if outcome is not None and outcome not in OUTCOMES:
        fields["outcome"] = [f"Must be one of: {', '.join(OUTCOMES)}."]
    if fields:
        raise validation_error(fields)

    values: dict[str, Any] = {"org_id": org_id}
    if actor:
        if "@" in actor:  # emails are stored normalised (lower case) by access.services
            values["actor_email"] = actor.strip().lower()
        else:
            values["actor_user_id"] = actor
    if action:
        if action.endswith(".*"):  # "_" in "api_key." is a LIKE wildcard unless escaped
            values["action_prefix"] = re.sub(r"([/%_])", r"/\1", action[:-1]) + "%"
        else:
            values["action"] = action
    if target:
        if target.startswith(TARGET_TYPE_PREFIX):
            values["target_type"] = target.removeprefix(TARGET_TYPE_PREFIX)
        else:
            values["target_id"] = target
    if since is not None:
        values["since"] = since
    if until is not None:
        values["until"] = until
    if outcome:
        values["outcome"] = outcome
    return tuple(name for name in _CONDITIONS if name in values), values


_CONDITIONS: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
    "org_id": lambda: AuditEntry.org_id == sa.bindparam("org_id"),
    "actor_email": lambda: AuditEntry.actor_email == sa.bindparam("actor_email"),
    "actor_user_id": lambda: AuditEntry.actor_user_id == sa.bindparam("actor_user_id"),
    "action_prefix": lambda: AuditEntry.action.like(sa.bindparam("action_prefix"),
                                                    escape="/"),
    "action": lambda: AuditEntry.action == sa.bindparam("action"),
    "target_type": lambda: AuditEntry.target_type == sa.bindparam("target_type"),
    "target_id": lambda: AuditEntry.target_id == sa.bindparam("target_id"),
    "since": lambda: AuditEntry.created_at >= sa.bindparam("since", type_=UTCDateTime),
    "until": lambda: AuditEntry.created_at < sa.bindparam("until", type_=UTCDateTime),
    "outcome": lambda: AuditEntry.outcome == sa.bindparam("outcome"),
    "before_id": lambda: AuditEntry.id < sa.bindparam("before_id"),
}


@functools.cache
def _where(shape: tuple[str, ...]) -> tuple[sa.ColumnElement[bool], ...]:
    return tuple(_CONDITIONS[name]() for name in shape)


def filtered(org_id: str, **filters: Any) -> sa.Select:
    """The entries of ``org_id`` matching every given filter (unordered); see
    :func:`criteria` for the filters and their errors."""
    shape, values = criteria(org_id, **filters)
    return sa.select(AuditEntry).where(*_where(shape)).params(values)


def list_entries(actor: Principal, filters: dict[str, Any], limit: int,
                 cursor: str | None) -> dict[str, Any]:
    """One page of the caller's org's log, newest first: ``{data, next_cursor}``."""
    require(Scope.AUDIT_READ, actor.scopes)
    return paginate(db.session, filtered(actor.org_id, **filters), AuditEntry.id, limit,
                    cursor)


def page_as_json(actor: Principal, filters: dict[str, Any], limit: int,
                 cursor: str | None, fields: tuple[str, ...]) -> str:
    """The same page as :func:`list_entries`, as the JSON text of ``{data, next_cursor}``
    (``fields`` of each entry, datetimes in ISO 8601), built without ORM objects or a
    schema: a page of the log is fifty entries of fourteen fields, and loading and
    dumping them one object and field at a time cost ten times the query
    (``bench/audit_scale.py``). On PostgreSQL the database writes the page's JSON itself
    in the same statement; elsewhere it is written from rows. The statement of each
    combination of filters is built once. The shape is the ``AuditEntrySchema``'s; a test
    holds both ways to that schema's output."""
    require(Scope.AUDIT_READ, actor.scopes)
    shape, values = criteria(actor.org_id, **filters)
    if cursor:
        shape, values["before_id"] = (*shape, "before_id"), decode_cursor(cursor)
    values["limit"] = limit
    json_in_sql = db.session.get_bind().dialect.name == "postgresql"
    statement = _page_statement(shape, fields, json_in_sql)
    if json_in_sql:
        data, count, last_id = db.session.execute(statement, values).one()
    else:
        rows = db.session.execute(statement, values).all()
        count, last_id = len(rows), rows[min(limit, len(rows)) - 1][0] if rows else None
        data = json.dumps([{name: value.isoformat() if isinstance(value, datetime) else value
                            for name, value in zip(fields, row, strict=True)}
                           for row in rows[:limit]])
    more = count > limit and last_id is not None
    cursor_json = json.dumps(encode_cursor(last_id) if more else None)
    return f'{{"data": {data}, "next_cursor": {cursor_json}}}'


@functools.cache
def _page_statement(shape: tuple[str, ...], fields: tuple[str, ...],
                    json_in_sql: bool) -> sa.Select:
    """The first ``:limit`` + 1 entries of a filter shape, newest first: as rows, or
    (``json_in_sql``) as :func:`_json_page` of them."""
    assert fields[0] == "id", "the cursor is the id of the page's last entry"
    columns = [AuditEntry.__table__.c[name] for name in fields]
    page = (sa.select(*columns).where(*_where(shape)).order_by(AuditEntry.id.desc())
            .limit(_limit() + sa.literal_column("1")))
    return _json_page(page, fields) if json_in_sql else page


def _limit() -> sa.BindParameter:
    """The page size, written into the SQL as a number when the statement runs: a
    prepared statement's generic plan, not knowing it, could choose to read every
    matching row of a million to keep fifty."""
    return sa.bindparam("limit", type_=sa.Integer, literal_execute=True)


def _json_page(page: sa.Select, fields: tuple[str, ...]) -> sa.Select:
    """PostgreSQL: one row of (the first ``:limit`` rows of ``page`` as a JSON array of
    objects, how many rows ``page`` had, the id of the last of them on the page).
    ``page`` is ordered by id, newest first, and has ``id`` first."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by
    inner = page.subquery()
    numbered = sa.select(inner, sa.func.row_number().over(
        order_by=inner.c.id.desc()).label("position")).subquery()
    on_page = numbered.c.position <= _limit()
    pairs = []
    for name in fields:
        column = numbered.c[name]
        pairs += [sa.literal(name), _iso_text(column)
                  if isinstance(AuditEntry.__table__.c[name].type, UTCDateTime) else column]
    entries = sa.func.json_agg(aggregate_order_by(sa.func.json_build_object(*pairs),
                                                  numbered.c.id.desc())).filter(on_page)
    return sa.select(sa.func.coalesce(sa.cast(entries, sa.Text), "[]"), sa.func.count(),
                     sa.func.min(numbered.c.id).filter(on_page))


def _iso_text(column) -> sa.ColumnElement:
    """``datetime.isoformat()`` of a UTC timestamp, written by PostgreSQL: microseconds
    only when there are any, and ``+00:00``."""
    utc = sa.func.timezone("UTC", column)
    return sa.case(
        (sa.func.date_trunc("second", column) == column,
         sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')),
        else_=sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))


def latest_details(org_id: str, refs: set[str]) -> dict[str, dict]:
    """The details of the latest successful entry about each of ``refs`` (target ids),
    in one query: what the log last recorded about them, such as their name."""
    if not refs:
        return {}
    latest = (sa.select(sa.func.max(AuditEntry.id))
              .where(AuditEntry.org_id == org_id, AuditEntry.target_id.in_(refs),
                     AuditEntry.outcome == "success")
              .group_by(AuditEntry.target_id))
    rows = db.session.execute(sa.select(AuditEntry.target_id, AuditEntry.details)
                              .where(AuditEntry.id.in_(latest)))
    return {target_id: details or {} for target_id, details in rows}


def export_query(actor: Principal, filters: dict[str, Any]) -> sa.Select:
    """The export's query, built (and its filters validated) before any byte is sent."""
    require(Scope.AUDIT_READ, actor.scopes)
    return filtered(actor.org_id, **filters)


def export_rows(query: sa.Select, batch_size: int | None = None) \
        -> Iterator[sa.RowMapping]:
    """Every row of ``query``, newest first, fetched ``batch_size`` at a time by keyset
    on the id. Rows are plain mappings (not ORM objects), so nothing accumulates in the
    session's identity map however many rows there are."""
    batch_size = batch_size or EXPORT_BATCH_SIZE
    columns = query.with_only_columns(*AuditEntry.__table__.columns)
    last_id: str | None = None
    while True:
        batch_query = columns if last_id is None else columns.where(AuditEntry.id < last_id)
        batch = db.session.execute(
            batch_query.order_by(AuditEntry.id.desc()).limit(batch_size)).mappings().all()
        # A slow client may take minutes to read the file: end the read-only
        # transaction between batches so no connection idles "in transaction".
        db.session.commit()
        yield from batch
        if len(batch) < batch_size:
            return
        last_id = batch[-1]["id"]
