"""Schemas for the routes that serve an event stream: ``?after=`` for SSE and the JSON
log, and the event object both return (``services.serialise``)."""

from __future__ import annotations

import marshmallow as ma

from evershell.core.pagination import page_schema
from evershell.events.services import DEFAULT_PAGE, MAX_PAGE


class EventStreamArgsSchema(ma.Schema):
    after = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0),
                              metadata={"description": "Replay events numbered above this "
                                        "(the `Last-Event-ID` header wins when sent)."})


class EventLogArgsSchema(ma.Schema):
    after = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0),
                              metadata={"description": "Events numbered above this: 0, "
                                        "or the `next_cursor` of the page before."})
    limit = ma.fields.Integer(load_default=DEFAULT_PAGE,
                              validate=ma.validate.Range(min=1, max=MAX_PAGE))


class EventSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "The event's number in its stream: "
                                     "1, 2, 3, … (the SSE `id:`)."})
    type = ma.fields.String(metadata={"description": "e.g. `workspace.status`"})
    created_at = ma.fields.String(metadata={"format": "date-time"})
    data = ma.fields.Dict()


EventPageSchema = page_schema(EventSchema, "EventPage")
