"""Console: Settings → Secrets (create, rotate, delete; a value is never shown) and, from
``credential_views``, Settings → Credentials.

Every action re-renders the panel fragment for htmx (``templates/secrets/_panel.html``) or
the whole page without it. Errors a person can fix show inline; htmx swaps only 2xx
answers, so those are 200. A submitted value is never rendered back into a form, not
even when the form comes back with an error: the person types it again.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.secrets import services, usage
from evershell.secrets.credential_views import blp as credentials_blp  # noqa: F401
from evershell.secrets.forms import LIST_LIMIT, can_create, failure, htmx

blp = Blueprint("secrets_views", __name__, url_prefix="/settings/secrets")


def _render(status: int = 200, **context):
    principal = current_principal()
    secrets = services.list_secrets(principal, LIST_LIMIT, None)["data"]
    template = "secrets/_panel.html" if htmx() else "secrets/index.html"
    context.setdefault("dialog", htmx())
    return render_template(template, secrets=secrets, can_create=can_create(),
                           usage=usage.usage_of(principal.org_id, secrets),
                           **context), status


@blp.get("")
@console_page(requires=Scope.SECRETS_READ)
def index():
    return _render()


@blp.post("")
@console_page(requires=Scope.SECRETS_WRITE, billing=Billing.CREATE, action="secret.create")
def create():
    form = request.form
    try:
        secret = services.create(current_principal(), form.get("name", ""),
                                 form.get("value", ""), form.get("description", ""))
        name = secret.name
        db.session.commit()
    except EvershellError as exc:
        error, errors, status = failure(exc)
        # Name and description come back for correction; the value never does.
        return _render(status, error=error, errors=errors,
                       form={"name": form.get("name", ""),
                             "description": form.get("description", "")})
    return _render(notice=f"Saved secret {name}. Its value is stored encrypted and is "
                          "never shown again.")


@blp.get("/<secret_id>/rotate")
@console_page(requires=Scope.SECRETS_WRITE)
def rotate_form(secret_id: str):
    secret = services.get(current_principal(), secret_id)
    if htmx():
        return render_template("secrets/_rotate.html", secret=secret, dialog=True)
    return _render(rotating=secret)


@blp.post("/<secret_id>/rotate")
@console_page(requires=Scope.SECRETS_WRITE, billing=Billing.CREATE, action="secret.rotate")
def rotate(secret_id: str):
    principal = current_principal()
    try:
        secret = services.update(principal, secret_id, value=request.form.get("value", ""))
        name = secret.name
        db.session.commit()
    except EvershellError as exc:
        error, errors, status = failure(exc)
        if not errors:
            return _render(status, error=error)
        return _render(status, rotating=services.get(principal, secret_id),
                       rotate_errors=errors)
    return _render(notice=f"Rotated {name}. Tasks started from now on get the new value.")


@blp.post("/<secret_id>/delete")
@console_page(requires=Scope.SECRETS_WRITE, billing=Billing.WIND_DOWN, action="secret.delete")
def delete(secret_id: str):
    try:
        secret = services.delete(current_principal(), secret_id)
        name = secret.name
        db.session.commit()
    except EvershellError as exc:
        error, _errors, status = failure(exc)
        return _render(status, error=error)
    return _render(notice=f"Deleted secret {name}.")
