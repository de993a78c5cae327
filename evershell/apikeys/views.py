"""Console: Settings → API keys (create from a template, show the secret once, revoke)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import TEMPLATE_DESCRIPTIONS, Scope
from evershell.access.web import console_page
from evershell.apikeys import services
from evershell.core.errors import EvershellError
from evershell.extensions import db

blp = Blueprint("apikeys_views", __name__, url_prefix="/settings/api-keys")
READ = (Scope.API_KEYS_READ, Scope.API_KEYS_READ_OWN)
WRITE = (Scope.API_KEYS_WRITE, Scope.API_KEYS_WRITE_OWN)


def _render(status: int = 200, **context):
    principal = current_principal()
    page = services.list_keys(principal, 200, None)
    template = "apikeys/_panel.html" if request.headers.get("HX-Request") else \
        "apikeys/index.html"
    return render_template(template, keys=page["data"], status_of=services.status,
                           templates=TEMPLATE_DESCRIPTIONS, **context), status


@blp.get("")
@console_page(requires=READ[1])
def index():
    return _render()


@blp.post("")
@console_page(requires=WRITE[1], billing=Billing.CREATE, action="api_key.create")
def create():
    form = request.form
    try:
        api_key, secret = services.create(current_principal(), form.get("name", ""),
                                          template=form.get("template") or "full")
        db.session.commit()
    except EvershellError as exc:
        db.session.rollback()
        if exc.status >= 500:
            raise
        fields = (exc.details or {}).get("fields", {})
        return _render(errors=fields, error=None if fields else exc.message,
                       form=form, status=200 if request.headers.get("HX-Request") else 400)
    return _render(created=api_key, secret=secret)


@blp.post("/<key_id>/revoke")
@console_page(requires=WRITE[1], billing=Billing.WIND_DOWN, action="api_key.revoke")
def revoke(key_id: str):
    api_key = services.revoke(current_principal(), key_id)
    db.session.commit()
    return _render(notice=f"Revoked “{api_key.name}”. It stopped working at once.")
