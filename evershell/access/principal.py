"""Who is calling: the authenticated principal of a request."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask import g

from evershell.access.scopes import Role, Scope, satisfies
from evershell.core.errors import ErrorCode, EvershellError


class CredentialShape(enum.StrEnum):
    SESSION_JWT = "session_jwt"
    API_KEY = "api_key"
    COOKIE = "cookie"
    CLI = "cli"  # an operator at the server's shell (bootstrap commands)


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    org_id: str
    org_slug: str
    role: Role
    shape: CredentialShape
    scopes: frozenset[Scope]
    api_key_id: str | None = None
    session_id: str | None = None

    def has(self, scope: Scope) -> bool:
        return satisfies(self.scopes, scope)

    def has_org_wide(self, scope: Scope) -> bool:
        """Holds the unscoped form (``workspace:read``), not only ``:own``."""
        return scope.org_wide in self.scopes


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise EvershellError(ErrorCode.UNAUTHENTICATED, "Authentication required.", 401)
    return principal
