"""Console: Settings → Roles (list, create, edit, version history with diffs, archive,
unarchive, delete) and the live caps.yaml check.

The caps.yaml textarea posts to ``validate`` as the person types (htmx, debounced) and
shows the compiler's problems, each with its line and a caret under the column, or what
the text compiles to and what it would change; saving shows the same problems. Refusals
a person can fix render inline as 200 fragments, because htmx swaps only 2xx answers.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import db
from evershell.roles import caps, capset, forms, history, services

blp = Blueprint("roles_views", __name__, url_prefix="/settings/roles")
READ, WRITE = Scope.ROLES_READ, Scope.ROLES_WRITE
# Where a refusal shows on the form: the field it is about.
_FIELD_OF = {ErrorCode.NAME_TAKEN: "name", ErrorCode.PROVIDER_NOT_FOUND: "provider_id",
             ErrorCode.PROVIDER_ARCHIVED: "provider_id", ErrorCode.PACK_NOT_FOUND: "pack_ids",
             ErrorCode.PACK_ARCHIVED: "pack_ids"}


def _archived_view() -> bool:
    return request.args.get("archived") == "true"


def _render_list(status: int = 200, **context):
    archived = _archived_view()
    roles = services.list_roles(current_principal(), forms.LIST_LIMIT, None,
                                archived=archived)["data"]
    template = "roles/_list.html" if forms.htmx() else "roles/index.html"
    return render_template(template, roles=roles, archived=archived,
                           can_create=forms.can_create(), status_of=services.status_of,
                           **context), status


def _list_failed(exc: EvershellError):
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    return _render_list(status=200 if forms.htmx() else exc.status, error=exc.message)


def _render_form(state=None, form=None, errors=None, error=None, problems=None,
                 status: int = 200):
    principal = current_principal()
    shown = forms.shown(state, form)
    providers = forms.providers_for(principal, shown["provider_id"] or None)
    if not shown["provider_id"] and providers:
        shown["provider_id"] = providers[0].id  # what the select shows first
    models = _models_of(providers, shown["provider_id"])
    if not shown["model"] and models:
        shown["model"] = models[0]
    result = None
    if problems is None:  # the live check's first answer, before anyone types
        result, problems = _check(shown["capabilities"], state)
    template = "roles/_form.html" if forms.htmx() else "roles/form.html"
    return render_template(
        template, state=state, shown=shown, errors=errors or {}, error=error,
        problems=problems, result=result, providers=providers, efforts=forms.EFFORTS,
        packs=forms.packs_for(principal, shown["pack_ids"]), packs_url=forms.packs_url(),
        models=models, can_create=forms.can_create(), reference=capset.registry()), status


def _check(text: str, state=None):
    """(what ``text`` compiles to with its changes from ``state``, None), or (None, its
    problems)."""
    try:
        return history.explain_text(text, state.version.capabilities if state else None), \
            None
    except caps.InvalidCapabilities as exc:
        return None, forms.problems_of(exc, text)


def _models_of(providers: list, provider_id: str) -> list[str]:
    chosen = next((p for p in providers if p.id == provider_id), None)
    return list(chosen.models) if chosen is not None else []


def _form_failed(exc: EvershellError, role_id: str | None = None):
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    state = services.get(current_principal(), role_id) if role_id else None
    status = 200 if forms.htmx() else exc.status
    if isinstance(exc, caps.InvalidCapabilities):
        return _render_form(state, request.form, error=exc.message, status=status,
                            problems=forms.problems_of(exc, request.form.get("capabilities")))
    fields = dict((exc.details or {}).get("fields") or {})
    if exc.code in _FIELD_OF:
        fields[_FIELD_OF[exc.code]] = [exc.message]
    return _render_form(state, request.form, errors=fields, status=status,
                        error=None if fields else exc.message)


def _to(endpoint: str, message: str, **values):
    flash(message, "success")
    target = url_for(endpoint, **values)
    if forms.htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@blp.get("")
@console_page(requires=READ)
def index():
    return _render_list()


@blp.get("/new")
@console_page(requires=WRITE)
def new():
    return _render_form()


@blp.post("")
@console_page(requires=WRITE, billing=Billing.CREATE, action="role.create")
def create():
    try:
        state = services.create(current_principal(), forms.values_from(request.form))
        role_id, name = state.role.id, state.role.name
        db.session.commit()
    except EvershellError as exc:
        return _form_failed(exc)
    return _to("roles_views.show", f"Created role “{name}” (version 1).", role_id=role_id)


@blp.get("/<role_id>")
@console_page(requires=READ)
def show(role_id: str):
    principal = current_principal()
    state = services.get(principal, role_id)
    versions = history.list_versions(principal, role_id, forms.LIST_LIMIT, None)["data"]
    changed = {}
    for newer, older in zip(versions, versions[1:], strict=False):
        before, after = older.values(), newer.values()
        changed[newer.version.number] = [f for f in after if after[f] != before[f]]
    explained = history.explain(principal, role_id)
    return render_template("roles/show.html", state=state, versions=versions,
                           changed=changed, explained=explained,
                           refs=forms.references(principal, state),
                           can_create=forms.can_create(), status_of=services.status_of)


@blp.get("/<role_id>/edit")
@console_page(requires=WRITE)
def edit(role_id: str):
    return _render_form(services.get(current_principal(), role_id))


@blp.post("/<role_id>")
@console_page(requires=WRITE, billing=Billing.CREATE, action="role.update")
def update(role_id: str):
    principal = current_principal()
    before = services.get(principal, role_id).version.number
    try:
        state = services.update(principal, role_id, forms.values_from(request.form))
        number, name = state.version.number, state.role.name
        db.session.commit()
    except EvershellError as exc:
        return _form_failed(exc, role_id)
    message = f"Saved “{name}” as version {number}." if number != before else \
        f"Nothing changed: “{name}” stays at version {number}."
    return _to("roles_views.show", message, role_id=role_id)


@blp.post("/validate")
@console_page(requires=READ)
def validate():
    """The live check under the caps.yaml textarea (read-only: nothing is saved)."""
    role_id = request.args.get("role_id")
    state = services.get(current_principal(), role_id) if role_id else None
    result, problems = _check(request.form.get("capabilities", ""), state)
    return render_template("roles/_caps_check.html", result=result, problems=problems)


@blp.get("/models")
@console_page(requires=WRITE)
def models():
    """The model select for the provider just chosen."""
    providers = forms.providers_for(current_principal())
    provider_id = request.args.get("provider_id", "")
    return render_template("roles/_model_field.html", shown={
        "model": request.args.get("model", "")}, errors={},
        models=_models_of(providers, provider_id))


@blp.get("/<role_id>/diff")
@console_page(requires=READ)
def compare(role_id: str):
    principal = current_principal()
    state = services.get(principal, role_id)
    new = request.args.get("to") or str(state.version.number)
    against = request.args.get("from") or None
    result, error, status = None, None, 200
    try:
        result = history.diff_versions(principal, role_id, new, against)
    except EvershellError as exc:
        if exc.status >= 500:
            raise
        error, status = exc.message, exc.status
    return render_template("roles/diff.html", state=state, result=result, error=error,
                           numbers=list(range(state.version.number, 0, -1)),
                           chosen={"from": against, "to": new}), status


def _lifecycle(action, role_id: str, message: str):
    try:
        state = action(current_principal(), role_id)
        name = state.role.name
        db.session.commit()
    except EvershellError as exc:
        return _list_failed(exc)
    return _render_list(notice=message.format(name=name))


@blp.post("/<role_id>/archive")
@console_page(requires=WRITE, billing=Billing.WIND_DOWN, action="role.archive")
def archive(role_id: str):
    return _lifecycle(services.archive, role_id,
                      "Archived “{name}”. New tasks cannot use it until it is unarchived.")


@blp.post("/<role_id>/unarchive")
@console_page(requires=WRITE, billing=Billing.CREATE, action="role.unarchive")
def unarchive(role_id: str):
    return _lifecycle(services.unarchive, role_id, "Unarchived “{name}”.")


@blp.post("/<role_id>/delete")
@console_page(requires=WRITE, billing=Billing.WIND_DOWN, action="role.delete")
def delete(role_id: str):
    return _lifecycle(services.delete, role_id, "Deleted “{name}” and all its versions.")
