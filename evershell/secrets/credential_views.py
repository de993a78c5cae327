"""Console: Settings → Credentials (create yours or, with credentials:write, org-wide
ones; rotate; delete). Material is never shown, and never rendered back into a form."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.secrets import credentials as services
from evershell.secrets.forms import LIST_LIMIT, can_create, failure, htmx
from evershell.secrets.material import FIELD_LABELS, KIND_FIELDS, kind_fields

blp = Blueprint("credentials_views", __name__, url_prefix="/settings/credentials")
KIND_LABELS = {"token": "Token", "ssh_key": "SSH key",
               "username_password": "Username and password"}
WRITE_OWN = Scope.CREDENTIALS_WRITE_OWN


def _kind(value: str | None) -> str:
    return value if value in KIND_FIELDS else "token"


def _material(kind: str) -> dict[str, str]:
    """The kind's fields from the form (a field left out stays out: the service says
    which are required)."""
    return {name: request.form[name] for name in kind_fields(kind) if name in request.form}


def _context(**context) -> dict:
    principal = current_principal()
    items = services.list_credentials(principal, LIST_LIMIT, None)["data"]
    return dict(credentials=items, owners=services.owner_emails(items),
                can_create=can_create(), kinds=KIND_LABELS, labels=FIELD_LABELS,
                kind_fields=kind_fields, required=lambda k: KIND_FIELDS[k][0],
                kind=_kind(request.values.get("kind")), **context)


def _render(status: int = 200, **context):
    template = "credentials/_panel.html" if htmx() else "credentials/index.html"
    context.setdefault("dialog", htmx())
    return render_template(template, **_context(**context)), status


@blp.get("")
@console_page(requires=Scope.CREDENTIALS_READ_OWN)
def index():
    return _render()


@blp.get("/fields")
@console_page(requires=WRITE_OWN)
def material_fields():
    """The create form's material fields for ``?kind=`` (swapped in when the kind changes)."""
    kind = request.args.get("kind")
    if kind not in KIND_FIELDS:
        abort(404)
    return render_template("credentials/_material_fields.html", kind=kind, labels=FIELD_LABELS,
                           kind_fields=kind_fields, required=lambda k: KIND_FIELDS[k][0],
                           errors=None, prefix="new")


@blp.post("")
@console_page(requires=WRITE_OWN, billing=Billing.CREATE, action="credential.create")
def create():
    form = request.form
    kind = _kind(form.get("kind"))
    try:
        credential = services.create(current_principal(), form.get("name", ""), kind,
                                     _material(kind), scope=form.get("scope") or "user",
                                     description=form.get("description", ""))
        name = credential.name
        db.session.commit()
    except EvershellError as exc:
        error, errors, status = failure(exc)
        # Name, kind and scope come back for correction; the material never does.
        return _render(status, error=error, errors=errors,
                       form={k: form.get(k, "") for k in ("name", "description", "scope")})
    return _render(notice=f"Saved credential {name}. Its material is stored encrypted and "
                          "is never shown again.")


@blp.get("/<credential_id>/rotate")
@console_page(requires=WRITE_OWN)
def rotate_form(credential_id: str):
    credential = services.load_for_change(current_principal(), credential_id)
    if htmx():
        return render_template("credentials/_rotate.html", credential=credential, dialog=True,
                               **_context())
    return _render(rotating=credential)


@blp.post("/<credential_id>/rotate")
@console_page(requires=WRITE_OWN, billing=Billing.CREATE, action="credential.rotate")
def rotate(credential_id: str):
    principal = current_principal()
    try:
        credential = services.load_for_change(principal, credential_id)
        credential = services.update(principal, credential_id,
                                     material=_material(credential.kind))
        name = credential.name
        db.session.commit()
    except EvershellError as exc:
        error, errors, status = failure(exc)
        if not errors:
            return _render(status, error=error)
        return _render(status, rotating=services.load_for_change(principal, credential_id),
                       rotate_errors=errors)
    return _render(notice=f"Rotated {name}. Tasks started from now on get the new material.")


@blp.post("/<credential_id>/delete")
@console_page(requires=WRITE_OWN, billing=Billing.WIND_DOWN, action="credential.delete")
def delete(credential_id: str):
    try:
        credential = services.delete(current_principal(), credential_id)
        name = credential.name
        db.session.commit()
    except EvershellError as exc:
        error, _errors, status = failure(exc)
        return _render(status, error=error)
    return _render(notice=f"Deleted credential {name}.")
