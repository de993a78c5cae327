"""The part of each ``/v1`` route's OpenAPI contract that the request guard and the
request pipeline own, derived from the route declarations (``routes.declare``) so that
no view repeats it:

- every guarded route: 401 ``unauthenticated``; 403 ``permission_denied`` (scopes,
  cross-org); 404 ``org_not_found`` (an org-slug host naming no org); 429
  ``rate_limited``; 503 ``service_unavailable`` (the identity provider's keys cannot be
  fetched); and the bearer security scheme (``?api_key=`` too on event-stream routes);
- create-class routes: 423 ``billing_inactive``; create-class POSTs also the
  ``Idempotency-Key`` header and its 409s (``idempotency.document``);
- a route with a body: 400 ``validation_error``, 413 ``payload_too_large``, 415
  ``unsupported_media_type``; a route with query parameters: 400;
- a route with path parameters: 404 ``not_found`` (a malformed id matches no route).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from evershell.access import idempotency
from evershell.access.routes import Billing, declaration_of
from evershell.core.api import RouteContract
from evershell.core.errors import ErrorCode

E = ErrorCode
GUARDED = frozenset({E.UNAUTHENTICATED, E.PERMISSION_DENIED, E.ORG_NOT_FOUND,
                     E.RATE_LIMITED, E.SERVICE_UNAVAILABLE})
BODY = frozenset({E.VALIDATION_ERROR, E.PAYLOAD_TOO_LARGE, E.UNSUPPORTED_MEDIA_TYPE})


def contract_for(app: Flask):
    """``DocumentedErrors``' callback for ``app``'s routes."""

    def contract(rule: Any, method: str, operation: dict) -> RouteContract:
        declaration = declaration_of(app, rule.endpoint, method.upper())
        codes: set[ErrorCode] = set()
        security: list[dict[str, list]] = []
        if declaration is not None and not declaration.public:
            codes |= GUARDED
            security = [{"bearer": []}]
            if declaration.sse:
                security.append({"apiKeyQuery": []})
            if declaration.billing is Billing.CREATE:
                codes.add(E.BILLING_INACTIVE)
            if idempotency.applies(declaration, method):
                codes |= idempotency.document(operation)
        if "requestBody" in operation:
            codes |= BODY
        parameters = operation.get("parameters", [])
        if any(p.get("in") == "query" for p in parameters):
            codes.add(E.VALIDATION_ERROR)
        if rule.arguments:
            codes.add(E.NOT_FOUND)
        return RouteContract(frozenset(codes), security)

    return contract
