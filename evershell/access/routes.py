"""Route declarations: each ``/v1`` route states once which scopes it needs and which
billing class it belongs to; ``guard`` enforces both (plus authentication and the rate
limit) before the view runs, and owns the request's transaction.

The permission-matrix test walks ``declarations(app)``, so a route without a
declaration fails the suite.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from flask import Flask, g, request

from evershell.access.scopes import Scope, satisfies
from evershell.core.errors import ErrorCode, EvershellError


class Billing(enum.StrEnum):
    """SPEC §4: create-class needs an active posture; read and wind-down never 423."""

    CREATE = "create"
    READ = "read"
    WIND_DOWN = "wind_down"


@dataclass(frozen=True)
class Requirement:
    """All of the groups, each satisfied by any one of its scopes."""

    groups: tuple[frozenset[Scope], ...]

    def satisfied_by(self, held: frozenset[Scope]) -> bool:
        return all(any(satisfies(held, s) for s in group) for group in self.groups)

    def __str__(self) -> str:
        return " and ".join("(" + " or ".join(sorted(group)) + ")" for group in self.groups)


def any_of(*scopes: Scope) -> Requirement:
    return Requirement((frozenset(scopes),))


def all_of(*requirements: Requirement | Scope) -> Requirement:
    groups: list[frozenset[Scope]] = []
    for item in requirements:
        groups.extend(item.groups if isinstance(item, Requirement) else [frozenset([item])])
    return Requirement(tuple(groups))


AUTHENTICATED = Requirement(())


@dataclass(frozen=True)
class Declaration:
    requires: Requirement
    billing: Billing
    action: str | None = None  # audit action of a mutation, e.g. "api_key.create"
    sse: bool = False  # accepts ?api_key= (SSE consumers cannot set headers)
    public: bool = False


def declare(requires: Requirement | Scope | tuple[Scope, ...], billing: Billing,
            action: str | None = None, sse: bool = False) -> Callable:
    """Declare a ``/v1`` view's scopes (a scope, a tuple meaning any of them, or a
    ``Requirement``) and billing class, and guard it."""
    if isinstance(requires, Scope):
        requires = any_of(requires)
    elif isinstance(requires, tuple):
        requires = any_of(*requires)
    declaration = Declaration(requires, billing, action, sse)

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            from evershell.access.guard import run_guarded
            return run_guarded(declaration, view, args, kwargs)

        guarded.evershell_declaration = declaration
        return guarded

    return decorator


def public(view: Callable) -> Callable:
    """Mark a ``/v1`` view that needs no credential (docs, the spec)."""
    view.evershell_declaration = Declaration(AUTHENTICATED, Billing.READ, public=True)
    return view


# flask-smorest's own documentation routes: public by design.
PUBLIC_ENDPOINTS = frozenset({"api-docs.openapi_json", "api-docs.openapi_swagger_ui"})


def declarations(app: Flask) -> Iterator[tuple[str, str, str, Declaration | None]]:
    """Every ``/v1`` (rule, method, endpoint, declaration); declaration None if missing."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, rule.endpoint, declaration_of(app, rule.endpoint, method)


def declaration_of(app: Flask, endpoint: str, method: str) -> Declaration | None:
    """The declaration of ``endpoint``'s view for ``method``; None if it has none."""
    if endpoint in PUBLIC_ENDPOINTS:
        return Declaration(AUTHENTICATED, Billing.READ, public=True)
    target = app.view_functions[endpoint]
    view_class = getattr(target, "view_class", None)
    if view_class is not None:
        target = getattr(view_class, method.lower(), None)
    return getattr(target, "evershell_declaration", None)


def current_declaration() -> Declaration | None:
    return g.get("declaration")


def mutating_method() -> bool:
    return request.method not in ("GET", "HEAD", "OPTIONS")


def require(requirement: Requirement | Scope, held: Iterable[Scope]) -> None:
    """Raise 403 ``permission_denied`` unless ``held`` satisfies ``requirement``."""
    if isinstance(requirement, Scope):
        requirement = any_of(requirement)
    if not requirement.satisfied_by(frozenset(held)):
        raise EvershellError(ErrorCode.PERMISSION_DENIED, "caller lacks required scope", 403,
                             {"required": str(requirement)})
