"""Helpers the two console pages of this domain share (``views``, ``credential_views``)."""

from __future__ import annotations

from flask import request

from evershell.access import billing
from evershell.access.principal import current_principal
from evershell.access.routes import current_declaration
from evershell.audit import services as audit
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.orgs.models import Org

LIST_LIMIT = 200  # one page is plenty for a settings screen


def htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def failure(exc: EvershellError) -> tuple[str, dict, int]:
    """(message, field errors, status) of a service refusal, after rolling it back: a 200
    fragment for htmx (it swaps only 2xx answers), else the error's own status."""
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    if exc.status == 403:
        # Shown inline rather than raised, so the guard does not see it: audit it here,
        # as the API would (SPEC §5: a denied mutation is audited on its own).
        target_id = next(iter(request.view_args.values()), None) if request.view_args else None
        audit.record_denied(current_principal().org_id, current_declaration().action or
                            request.endpoint, target_id=target_id,
                            details={"code": exc.code.value, "reason": exc.message})
    fields = (exc.details or {}).get("fields") or {}
    message = "Check the highlighted fields." if fields else exc.message
    return message, fields, 200 if htmx() else exc.status


def can_create() -> bool:
    """Whether the org's billing posture allows creating and rotating right now."""
    return billing.can_create(db.session.get(Org, current_principal().org_id))
