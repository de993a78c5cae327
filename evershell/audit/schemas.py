"""Audit log schemas: the filters (query string), an entry, the export's arguments.

Datetime filters must carry a timezone on ``/v1`` (``2024-05-01T00:00:00Z``): an audit
query answered in the wrong timezone silently hides events, so a naive value is a 400
rather than a guess. The console's form (``<input type="datetime-local">`` sends naive
values) is labelled UTC and loads them as UTC with ``ConsoleFilterSchema``.
"""

from __future__ import annotations

import re
from datetime import UTC

import marshmallow as ma

from evershell.audit.queries import FILTERS, OUTCOMES
from evershell.core.api import TimeOrEmpty
from evershell.core.pagination import PageArgsSchema

EXPORT_FORMATS = ("jsonl", "csv")
# "2024-05-01T10:00:00+02:00" sent unencoded in a query string arrives with a space
# where the "+" was; put it back rather than answer with a puzzling 400.
_UNENCODED_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


class AuditFilterSchema(ma.Schema):
    actor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=320),
                             metadata={"description": "A user id (`user_…`) or an email."})
    action = ma.fields.String(
        load_default=None, validate=ma.validate.Length(max=80),
        metadata={"description": "An action (`api_key.create`), or a prefix ending in "
                                 "`.*` (`api_key.*`)."})
    target = ma.fields.String(
        load_default=None, validate=ma.validate.Length(max=120),
        metadata={"description": "A target id, or `type:<target type>` (`type:api_key`)."})
    since = TimeOrEmpty(
        load_default=None, default_timezone=None,
        metadata={"description": "Entries at or after this time (ISO 8601 with a "
                                 "timezone, e.g. `2024-05-01T00:00:00Z`)."})
    until = TimeOrEmpty(
        load_default=None, default_timezone=None,
        metadata={"description": "Entries strictly before this time (ISO 8601 with a "
                                 "timezone). Must not be earlier than `since`."})
    outcome = ma.fields.String(load_default=None, validate=ma.validate.OneOf(OUTCOMES),
                               metadata={"enum": list(OUTCOMES)})

    @ma.pre_load
    def _tidy(self, data, **_kwargs):
        """An empty filter means "no filter" (forms submit every field); an empty
        ``limit`` or ``cursor`` is still an error (an empty ``format`` is the default)."""
        tidy = {}
        for key in data:
            value = data[key]
            if isinstance(value, str):
                value = value.strip()
                if not value and (key in AuditFilterSchema._declared_fields or key == "format"):
                    continue
                if key in ("since", "until"):
                    value = _UNENCODED_PLUS.sub(r"\1+\2", value)
            tidy[key] = value
        return tidy


class ConsoleFilterSchema(AuditFilterSchema):
    """The console's form: naive times are UTC (the form says so)."""

    since = ma.fields.AwareDateTime(load_default=None, default_timezone=UTC)
    until = ma.fields.AwareDateTime(load_default=None, default_timezone=UTC)


class AuditListArgsSchema(AuditFilterSchema, PageArgsSchema):
    pass


class AuditExportArgsSchema(AuditFilterSchema):
    format = ma.fields.String(load_default="jsonl",
                              validate=ma.validate.OneOf(EXPORT_FORMATS),
                              metadata={"description": "`jsonl` (default) or `csv`; empty "
                                                       "means the default.",
                                        "enum": [*EXPORT_FORMATS, ""]})


class AuditEntrySchema(ma.Schema):
    id = ma.fields.String()
    created_at = ma.fields.DateTime()
    actor_user_id = ma.fields.String(allow_none=True)
    actor_email = ma.fields.String(allow_none=True)
    credential_shape = ma.fields.String(
        allow_none=True, metadata={"enum": ["session_jwt", "api_key", "cookie", "cli"]})
    api_key_id = ma.fields.String(allow_none=True)
    action = ma.fields.String(metadata={"description": "e.g. `api_key.create`"})
    target_type = ma.fields.String(allow_none=True)
    target_id = ma.fields.String(allow_none=True)
    outcome = ma.fields.String(metadata={"enum": list(OUTCOMES)})
    request_id = ma.fields.String(allow_none=True)
    ip = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    details = ma.fields.Dict()


def filter_values(args: dict) -> dict:
    """The filter arguments of loaded ``args`` (without limit, cursor, format)."""
    return {name: args.get(name) for name in FILTERS}
