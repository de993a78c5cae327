"""Console: Settings → API keys (create from a template, show the secret once, revoke)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template, request

from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import TEMPLATE_DESCRIPTIONS, Scope
from evershell.access.web import console_page
from evershell.apikeys import services
from evershell.core.db import utcnow
from evershell.core.errors import EvershellError, validation_error
from evershell.extensions import db

blp = Blueprint("apikeys_views", __name__, url_prefix="/settings/api-keys")
# What the console offers (the API takes any future ``expires_at``); days, "" = never.
EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"),
                  ("", "Never")]
DEFAULT_EXPIRY = "90"
READ = (Scope.API_KEYS_READ, Scope.API_KEYS_READ_OWN)
WRITE = (Scope.API_KEYS_WRITE, Scope.API_KEYS_WRITE_OWN)


def _render(status: int = 200, **context):
    principal = current_principal()
    page = services.list_keys(principal, 200, None)
    template = "apikeys/_panel.html" if request.headers.get("HX-Request") else \
        "apikeys/index.html"
    return render_template(template, keys=page["data"], status_of=services.status,
                           creators=services.creators(page["data"]),
                           templates=TEMPLATE_DESCRIPTIONS, expiry_choices=EXPIRY_CHOICES,
                           default_expiry=DEFAULT_EXPIRY, **context), status


def _expires_at(choice: str | None):
    """The expiry the form's choice means; only the offered choices are accepted."""
    choice = DEFAULT_EXPIRY if choice is None else choice
    if choice not in dict(EXPIRY_CHOICES):
        raise validation_error({"expires_in": ["Choose one of the offered expiries."]})
    return utcnow() + timedelta(days=int(choice)) if choice else None


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
                                          template=form.get("template") or "full",
                                          expires_at=_expires_at(form.get("expires_in")))
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
