"""What the console's role pages need beyond the services: the form's fields as the
service's input, caps.yaml problems with the line they point at, and the pickers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request

from evershell.access import billing
from evershell.access.principal import Principal, current_principal
from evershell.extensions import db
from evershell.orgs.models import Org
from evershell.roles import rules
from evershell.roles.models import THINKING_EFFORTS

LIST_LIMIT = 200  # one page is plenty for a settings screen
TEXT_FIELDS = ("name", "description", "provider_id", "model", "system_prompt",
               "capabilities", "thinking_effort")
NUMBER_FIELDS = ("max_continuations", "max_context_tokens")
EFFORTS = THINKING_EFFORTS


def htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def can_create() -> bool:
    return billing.can_create(db.session.get(Org, current_principal().org_id))


def values_from(form) -> dict[str, Any]:
    """The service's input from a submitted role form. A number that is not one is
    passed on as typed, so the service reports it on its field like any other rule."""
    values: dict[str, Any] = {field: form.get(field, "") for field in TEXT_FIELDS}
    for field in NUMBER_FIELDS:
        raw = form.get(field, "").strip()
        values[field] = int(raw) if raw.lstrip("-").isdigit() else raw
    values["pack_ids"] = form.getlist("pack_ids")
    return values


def shown(state=None, form=None) -> dict[str, Any]:
    """What each field of the form shows: what was just typed, else the role's current
    values, else the defaults (a new role starts from the starter caps.yaml)."""
    from evershell.roles.capset import STARTER_CAPS
    values = {**rules.DEFAULTS, "name": "", "provider_id": "", "model": "",
              "capabilities": STARTER_CAPS}
    if state is not None:
        values.update(state.values())
    if form:
        values.update({f: form.get(f, "") for f in TEXT_FIELDS + NUMBER_FIELDS})
        values["pack_ids"] = form.getlist("pack_ids")
    return values


@dataclass(frozen=True)
class ShownProblem:
    line: int
    column: int
    path: str
    reason: str
    text: str  # the line pointed at, as typed

    @property
    def caret(self) -> str:
        return " " * (self.column - 1) + "^"


def problems_of(exc, text: str) -> list[ShownProblem]:
    """An ``InvalidCapabilities``' problems with the line each points at. The text is
    what the person typed into their own form, shown back only to them."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    return [ShownProblem(p["line"], p["column"], p["path"], p["reason"],
                         lines[p["line"] - 1] if 0 < p["line"] <= len(lines) else "")
            for p in exc.details["errors"]]


def packs_url() -> str | None:
    """Where to upload a pack, for people who may (when that page exists)."""
    from flask import current_app, url_for

    from evershell.access.scopes import Scope
    if "packs_views.index" not in current_app.view_functions or \
            not current_principal().has(Scope.PACKS_WRITE):
        return None
    return url_for("packs_views.index")


def references(principal: Principal, state) -> dict[str, Any]:
    """The provider and packs a version names, for showing their names."""
    from evershell.packs import services as packs
    from evershell.providers import services as providers
    return {"provider": providers.get(principal, state.version.provider_id),
            "packs": [packs.get(principal, pack_id) for pack_id in state.pack_ids]}


def providers_for(principal: Principal, current_id: str | None = None) -> list:
    """Active providers to pick from, plus the role's own when it was archived since."""
    from evershell.providers import services as providers
    listed = providers.list_providers(principal, LIST_LIMIT, None)["data"]
    if current_id and current_id not in {p.id for p in listed}:
        listed.append(providers.get(principal, current_id))  # versions keep it alive
    return listed


def packs_for(principal: Principal, current_ids: list[str]) -> list:
    """Active packs to pick from, plus the role's own that were archived since."""
    from evershell.packs import services as packs
    listed = packs.list_packs(principal, LIST_LIMIT, None)["data"]
    known = {p.id for p in listed}
    for pack_id in current_ids:
        if pack_id not in known:
            listed.append(packs.get(principal, pack_id))
    return listed
