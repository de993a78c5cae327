"""Reading the audit log: one filtered query for an org, pages of it for the list, and
all of it in keyset batches for exports (memory stays flat however long the log is)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from evershell.access.principal import Principal
from evershell.access.routes import require
from evershell.access.scopes import Scope
from evershell.audit.models import AuditEntry
from evershell.core.errors import validation_error
from evershell.core.pagination import decode_cursor, encode_cursor, paginate
from evershell.extensions import db

FILTERS = ("actor", "action", "target", "since", "until", "outcome")
OUTCOMES = ("success", "denied")
TARGET_TYPE_PREFIX = "type:"
EXPORT_BATCH_SIZE = 500


def filtered(org_id: str, *, actor: str | None = None, action: str | None = None,
             target: str | None = None, since: datetime | None = None,
             until: datetime | None = None, outcome: str | None = None) -> sa.Select:
    """The entries of ``org_id`` matching every given filter (unordered).

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

    query = sa.select(AuditEntry).where(AuditEntry.org_id == org_id)
    if actor:
        if "@" in actor:  # emails are stored normalised (lower case) by access.services
            query = query.where(AuditEntry.actor_email == actor.strip().lower())
        else:
            query = query.where(AuditEntry.actor_user_id == actor)
    if action:
        if action.endswith(".*"):
            # autoescape: "_" in "api_key." is a LIKE wildcard otherwise
            query = query.where(AuditEntry.action.startswith(action[:-1], autoescape=True))
        else:
            query = query.where(AuditEntry.action == action)
    if target:
        if target.startswith(TARGET_TYPE_PREFIX):
            query = query.where(
                AuditEntry.target_type == target.removeprefix(TARGET_TYPE_PREFIX))
        else:
            query = query.where(AuditEntry.target_id == target)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    if outcome:
        query = query.where(AuditEntry.outcome == outcome)
    return query


def list_entries(actor: Principal, filters: dict[str, Any], limit: int,
                 cursor: str | None) -> dict[str, Any]:
    """One page of the caller's org's log, newest first: ``{data, next_cursor}``."""
    require(Scope.AUDIT_READ, actor.scopes)
    return paginate(db.session, filtered(actor.org_id, **filters), AuditEntry.id, limit,
                    cursor)


def page_as_json(actor: Principal, filters: dict[str, Any], limit: int,
                 cursor: str | None, fields: tuple[str, ...]) -> dict[str, Any]:
    """The same page as :func:`list_entries`, as plain JSON values (``fields`` of each
    entry, datetimes in ISO 8601) read as rows rather than ORM objects: a page of the
    log is fifty entries of fifteen fields, and loading and dumping them one object and
    field at a time cost ten times the query (``bench/audit_scale.py``). The shape is the
    ``AuditEntrySchema``'s; a test holds the two to the same output."""
    require(Scope.AUDIT_READ, actor.scopes)
    columns = [AuditEntry.__table__.c[name] for name in fields]
    query = filtered(actor.org_id, **filters).with_only_columns(*columns)
    if cursor:
        query = query.where(AuditEntry.id < decode_cursor(cursor))
    rows = db.session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    data = [{name: value.isoformat() if isinstance(value, datetime) else value
             for name, value in zip(fields, row, strict=True)} for row in rows[:limit]]
    return {"data": data,
            "next_cursor": encode_cursor(data[-1]["id"]) if more and data else None}


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
