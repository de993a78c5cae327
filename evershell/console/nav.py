"""The console's navigation: each entry shows only to people holding one of its scopes,
so no link leads to a 403. Pages register under these endpoint names."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g, request, url_for

from evershell.access.scopes import Scope, satisfies


@dataclass(frozen=True)
class NavEntry:
    label: str
    endpoint: str
    any_of: tuple[Scope, ...]


NAV: tuple[NavEntry, ...] = (
    NavEntry("Workspaces", "workspaces_views.index", (Scope.WORKSPACE_READ_OWN,)),
    NavEntry("Roles", "roles_views.index", (Scope.ROLES_READ,)),
    NavEntry("Providers", "providers_views.index", (Scope.PROVIDERS_READ,)),
    NavEntry("Packs", "packs_views.index", (Scope.PACKS_READ,)),
    NavEntry("Secrets", "secrets_views.index", (Scope.SECRETS_READ,)),
    NavEntry("Credentials", "credentials_views.index", (Scope.CREDENTIALS_READ_OWN,)),
    NavEntry("Members", "members_views.index", (Scope.MEMBERS_READ,)),
    NavEntry("API keys", "apikeys_views.index", (Scope.API_KEYS_READ_OWN,)),
    NavEntry("Audit log", "audit_views.index", (Scope.AUDIT_READ,)),
    NavEntry("Organisation", "org_views.settings", (Scope.ORG_READ,)),
)


def nav_items() -> list[dict]:
    principal = g.get("principal")
    if principal is None:
        return []
    items = []
    for entry in NAV:
        if entry.endpoint not in current_app.view_functions:
            continue
        if not any(satisfies(principal.scopes, s) for s in entry.any_of):
            continue
        href = url_for(entry.endpoint)
        items.append({"label": entry.label, "href": href,
                      "active": request.path.startswith(href)})
    return items


def init_app(app: Flask) -> None:
    @app.context_processor
    def _nav():
        return {"nav_items": nav_items()}
