"""Console: Settings → Providers (list, create with a form that adapts to the kind, edit,
archive, unarchive, delete).

The list's actions re-render ``templates/providers/_list.html`` for htmx (the whole page
without it); refusals a person can fix show inline, as 200 fragments because htmx swaps
only 2xx answers. The create and edit forms live on their own page; choosing a kind
re-renders the form (``_form.html``) with that kind's fields, keeping what was typed.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from evershell.access import billing
from evershell.access.principal import current_principal
from evershell.access.routes import Billing
from evershell.access.scopes import Scope
from evershell.access.web import console_page
from evershell.core.errors import EvershellError, validation_error
from evershell.extensions import db
from evershell.orgs.models import Org
from evershell.providers import checks, rules, services
from evershell.providers.models import ProviderKind
from evershell.secrets import services as secrets

blp = Blueprint("providers_views", __name__, url_prefix="/settings/providers")
LIST_LIMIT = 200  # one page is plenty for a settings screen
KINDS = [k.value for k in ProviderKind]
KIND_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI",
              "openai_compatible": "OpenAI-compatible", "scripted": "Scripted"}
KIND_LABELS = {**KIND_NAMES, "openai_compatible": "OpenAI-compatible (vLLM, Ollama, llama.cpp)",
               "scripted": "Scripted (plays a fixed script)"}


def _htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _can_create() -> bool:
    return billing.can_create(db.session.get(Org, current_principal().org_id))


def _secret_names() -> dict[str, str] | None:
    """Secret names by id for pickers and the list, or None when the person may not read
    secrets (they can still type an id)."""
    principal = current_principal()
    if not principal.has(Scope.SECRETS_READ):
        return None
    page = secrets.list_secrets(principal, LIST_LIMIT, None)
    return {secret.id: secret.name for secret in page["data"]}


def _secrets_page() -> str | None:
    """Where to add a secret, for people who may (the page may not be built yet)."""
    principal = current_principal()
    if "secrets_views.index" not in current_app.view_functions or \
            not principal.has(Scope.SECRETS_WRITE):
        return None
    return url_for("secrets_views.index")


def _archived_view() -> bool:
    return request.args.get("archived") == "true"


def _render_list(status: int = 200, **context):
    archived = _archived_view()
    providers = services.list_providers(current_principal(), LIST_LIMIT, None,
                                        archived=archived)["data"]
    template = "providers/_list.html" if _htmx() else "providers/index.html"
    return render_template(template, providers=providers, archived=archived,
                           kind_names=KIND_NAMES, secret_names=_secret_names() or {},
                           can_create=_can_create(), status_of=services.status_of,
                           **context), status


def _list_failed(exc: EvershellError):
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    return _render_list(status=200 if _htmx() else exc.status, error=exc.message)


def _shown(provider, form) -> dict[str, str]:
    """What each field shows: what was just typed, else the provider's value as text."""
    shown = {"name": "", "base_url": "", "api_key_secret_id": "", "models": "", "script": ""}
    if provider is not None:
        shown.update(name=provider.name, base_url=provider.base_url or "",
                     api_key_secret_id=provider.api_key_secret_id or "",
                     models="\n".join(provider.models),
                     script=json.dumps(provider.script, indent=2) if provider.script else "")
    shown.update({field: form[field] for field in shown if field in form})
    return shown


def _label(path: tuple) -> str:
    parts, previous = [], None
    for part in path:
        if isinstance(part, int) or str(part).isdigit():
            parts.append(f"{'tool call' if previous == 'tool_calls' else 'step'} {int(part) + 1}")
        elif part not in ("tool_calls", "_schema"):
            parts.append(str(part))
        previous = part
    return " › ".join(parts)


def _messages(value, path: tuple = ()) -> list[str]:
    """A field's messages as sentences, however deeply marshmallow nested them (a
    script's errors are keyed by step and tool call)."""
    if isinstance(value, dict):
        return [m for key, inner in value.items() for m in _messages(inner, (*path, key))]
    if isinstance(value, list):
        label = _label(path)
        return [f"{label.capitalize()}: {m}" if label else str(m) for m in value]
    return [str(value)]


def _render_form(provider=None, form=None, errors=None, error=None, status: int = 200):
    form = form or {}
    kind = provider.kind if provider is not None else form.get("kind")
    if kind not in KINDS:
        kind = ProviderKind.ANTHROPIC.value
    template = "providers/_form.html" if _htmx() else "providers/form.html"
    errors = {field: _messages(messages) for field, messages in (errors or {}).items()}
    return render_template(template, provider=provider, kind=kind,
                           shown=_shown(provider, form), errors=errors, error=error,
                           kinds=KINDS, kind_labels=KIND_LABELS, secret_names=_secret_names(),
                           default_base_urls=rules.DEFAULT_BASE_URLS,
                           secrets_url=_secrets_page(), can_create=_can_create()), status


def _form_failed(exc: EvershellError, provider=None):
    db.session.rollback()
    if exc.status >= 500:
        raise exc
    fields = (exc.details or {}).get("fields") or {}
    return _render_form(provider, form=request.form, errors=fields,
                        error=None if fields else exc.message,
                        status=200 if _htmx() else exc.status)


def _values(form, kind: str) -> dict:
    """The service's input from the form: only the fields the kind's form shows (so a
    blank field means "none" or "the default", as in the API). Models are one per line
    or comma-separated; the script is JSON."""
    values: dict = {"name": form.get("name", "")}
    models = [m.strip() for line in form.get("models", "").splitlines()
              for m in line.split(",") if m.strip()]
    values["models"] = models or None
    if kind == ProviderKind.SCRIPTED:
        text = form.get("script", "").strip()
        try:
            values["script"] = json.loads(text) if text else None
        except ValueError as exc:
            raise validation_error({"script": [f"Not valid JSON: {exc}."]}) from None
    else:
        values["base_url"] = form.get("base_url", "")
        values["api_key_secret_id"] = form.get("api_key_secret_id", "")
    return values


def _to_list(message: str):
    flash(message, "success")
    target = url_for("providers_views.index")
    if _htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@blp.get("")
@console_page(requires=Scope.PROVIDERS_READ)
def index():
    return _render_list()


@blp.get("/new")
@console_page(requires=Scope.PROVIDERS_WRITE)
def new():
    return _render_form(form=request.args)


@blp.post("")
@console_page(requires=Scope.PROVIDERS_WRITE, billing=Billing.CREATE, action="provider.create")
def create():
    kind = request.form.get("kind", "")
    try:
        values = _values(request.form, kind)
        values["kind"] = kind
        provider = services.create(current_principal(), values)
        name = provider.name
        db.session.commit()
    except EvershellError as exc:
        return _form_failed(exc)
    return _to_list(f"Created provider “{name}”.")


@blp.get("/<provider_id>/edit")
@console_page(requires=Scope.PROVIDERS_WRITE)
def edit(provider_id: str):
    provider = services.get(current_principal(), provider_id)
    return _render_form(provider)


@blp.post("/<provider_id>")
@console_page(requires=Scope.PROVIDERS_WRITE, billing=Billing.CREATE, action="provider.update")
def update(provider_id: str):
    principal = current_principal()
    provider = services.get(principal, provider_id)
    try:
        provider = services.update(principal, provider_id,
                                   _values(request.form, provider.kind))
        name = provider.name
        db.session.commit()
    except EvershellError as exc:
        return _form_failed(exc, services.get(principal, provider_id))
    return _to_list(f"Saved provider “{name}”.")


def _list_action(action, provider_id: str, notice: str):
    """Run a service action on one provider and re-render the list with ``notice``
    (``{name}`` is the provider's name), or the error inline."""
    try:
        name = action(current_principal(), provider_id).name
        db.session.commit()
    except EvershellError as exc:
        return _list_failed(exc)
    return _render_list(notice=notice.format(name=name))


@blp.post("/<provider_id>/archive")
@console_page(requires=Scope.PROVIDERS_WRITE, billing=Billing.WIND_DOWN,
              action="provider.archive")
def archive(provider_id: str):
    return _list_action(services.archive, provider_id,
                        "Archived “{name}”. New roles and tasks cannot use it.")


@blp.post("/<provider_id>/unarchive")
@console_page(requires=Scope.PROVIDERS_WRITE, billing=Billing.CREATE,
              action="provider.unarchive")
def unarchive(provider_id: str):
    return _list_action(services.unarchive, provider_id, "Unarchived “{name}”.")


@blp.post("/<provider_id>/delete")
@console_page(requires=Scope.PROVIDERS_WRITE, billing=Billing.WIND_DOWN,
              action="provider.delete")
def delete(provider_id: str):
    return _list_action(services.delete, provider_id, "Deleted “{name}”.")


@blp.post("/<provider_id>/check")
@console_page(requires=Scope.PROVIDERS_READ, billing=Billing.READ)
def check(provider_id: str):
    """Test connection: the check's report as a fragment under the provider's row."""
    report = checks.check(current_principal(), provider_id)
    return render_template("providers/_check.html", report=report)
