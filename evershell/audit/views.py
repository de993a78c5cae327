"""Console: the audit log (filter form, table, "Load more", export links).

One GET route. htmx asks for fragments: the form swaps ``audit/_results.html`` (and
pushes the filtered URL to the history), "Load more" swaps ``audit/_rows.html`` in
place of its own row. Anything else (a first visit, a reload, htmx restoring a history
entry it has no snapshot of) gets the whole page.
"""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma
from flask import Blueprint, render_template, request, url_for

from evershell.access.principal import current_principal
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.audit import present, queries
from evershell.audit.schemas import ConsoleFilterSchema
from evershell.core.errors import ErrorCode, EvershellError

blp = Blueprint("audit_views", __name__, url_prefix="/audit")
PAGE_SIZE = 50


def _api_value(value) -> str:
    """A filter value as ``/v1/audit/export`` takes it (aware datetimes, with Z)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


@blp.get("")
@console_page(requires=Scope.AUDIT_READ)
def index():
    form = {name: request.args.get(name, "") for name in queries.FILTERS}
    cursor = request.args.get("cursor") or None
    entries, next_cursor, errors, filters = [], None, {}, {}
    try:
        filters = ConsoleFilterSchema().load({k: v for k, v in form.items() if v})
        for name in ("since", "until"):  # shown back in the form's UTC fields
            if filters.get(name) is not None:
                form[name] = filters[name].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        principal = current_principal()
        page = queries.list_entries(principal, filters, PAGE_SIZE, cursor)
        entries = present.describe(principal.org_id, page["data"])
        next_cursor = page["next_cursor"]
    except ma.ValidationError as exc:
        errors = exc.messages
    except EvershellError as exc:
        if exc.code is not ErrorCode.VALIDATION_ERROR:
            raise
        errors = (exc.details or {}).get("fields") or {"filters": [exc.message]}

    active = {k: v for k, v in form.items() if v}
    exports = {} if errors else {
        fmt: url_for("audit.export", format=fmt,
                     **{k: _api_value(v) for k, v in filters.items() if v is not None})
        for fmt in ("jsonl", "csv")}
    context = {
        "entries": entries, "errors": errors, "form": form, "exports": exports,
        "outcomes": queries.OUTCOMES, "filtered": bool(active),
        "more_url": url_for("audit_views.index", cursor=next_cursor, **active)
        if next_cursor else None,
    }
    htmx = request.headers.get("HX-Request") and \
        not request.headers.get("HX-History-Restore-Request")
    if htmx:
        # htmx swaps only 2xx answers: a filter mistake is shown in the fragment.
        template = "audit/_rows.html" if cursor else "audit/_results.html"
        return render_template(template, **context)
    return render_template("audit/index.html", **context), 400 if errors else 200
