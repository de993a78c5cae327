"""Console: Settings → Organisation (name, slug, billing posture)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from evershell.access import billing
from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.orgs import services

blp = Blueprint("org_views", __name__, url_prefix="/settings/org")


def _render(status: int = 200, **context):
    org = services.get_org(current_principal().org_id)
    template = "orgs/_panel.html" if request.headers.get("HX-Request") else "orgs/settings.html"
    return render_template(template, org=org, can_create=billing.can_create(org),
                           **context), status


@blp.get("")
@console_page(requires=Scope.ORG_READ)
def settings():
    return _render()


@blp.post("")
@console_page(requires=Scope.ORG_WRITE, billing=Billing.CREATE, action="org.update")
def update():
    try:
        services.update_org(current_principal(), {"name": request.form.get("name", "")})
        db.session.commit()
    except EvershellError as exc:
        db.session.rollback()
        if exc.status >= 500:
            raise
        return _render(errors=(exc.details or {}).get("fields", {}), error=exc.message)
    return _render(notice="Saved.")
