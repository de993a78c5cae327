"""Cursor pagination: ``?limit=&cursor=`` → ``{"data": [...], "next_cursor": ...}``.

Ids are time-sortable, so the cursor is simply the last id returned (opaque to callers:
base64url). Pages are newest first.
"""

from __future__ import annotations

import base64
from typing import Any

import marshmallow as ma
import sqlalchemy as sa

from evershell.core.errors import validation_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,400}$"  # base64url, unpadded


class PageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT,
                              validate=ma.validate.Range(min=1, max=MAX_LIMIT))
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Regexp(
        CURSOR_PATTERN, error="Not a cursor this API issued."), metadata={
            "pattern": CURSOR_PATTERN, "description": "The `next_cursor` of the page before"})


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A ``{data, next_cursor}`` envelope schema around ``item_schema``."""
    return ma.Schema.from_dict({
        "data": ma.fields.List(ma.fields.Nested(item_schema), required=True),
        "next_cursor": ma.fields.String(allow_none=True, required=True),
    }, name=name)


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise validation_error({"cursor": ["Not a cursor this API issued."]}) from None
    if "_" not in value:
        raise validation_error({"cursor": ["Not a cursor this API issued."]})
    return value


def paginate(session, query: sa.Select, id_column, limit: int, cursor: str | None) \
        -> dict[str, Any]:
    """Run ``query`` newest first, one page after ``cursor``."""
    if cursor:
        query = query.where(id_column < decode_cursor(cursor))
    rows = session.scalars(query.order_by(id_column.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}
