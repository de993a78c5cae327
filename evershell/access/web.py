"""Request hooks and console helpers of access: rate-limit headers, refreshed session
cookies, the console's sign-in requirement and ``can()`` for templates."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Flask, current_app, g, redirect, request, url_for

from evershell.access import sessions
from evershell.access.principal import Principal
from evershell.access.routes import AUTHENTICATED, Billing, Declaration, Requirement, any_of
from evershell.access.scopes import Scope, satisfies
from evershell.core.errors import EvershellError


def set_session_cookie(response, value: str) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME, value, max_age=sessions.COOKIE_MAX_AGE, httponly=True,
        secure=current_app.config["PUBLIC_URL"].startswith("https://"), samesite="Lax",
        path="/")


def clear_session_cookie(response) -> None:
    response.delete_cookie(sessions.COOKIE_NAME, path="/")


def init_app(app: Flask) -> None:
    @app.after_request
    def _access_headers(response):
        for name, value in (g.get("rate_limit_headers") or {}).items():
            response.headers.setdefault(name, value)
        refreshed = g.get("refreshed_session_cookie")
        if refreshed:
            set_session_cookie(response, refreshed)
        return response

    @app.context_processor
    def _console_helpers():
        principal: Principal | None = g.get("principal")

        def can(*scopes: str) -> bool:
            """True when the signed-in person holds any of ``scopes``."""
            return principal is not None and any(
                satisfies(principal.scopes, Scope(s)) for s in scopes)

        helpers = {"can": can, "current_user": principal}
        if principal is not None and principal.session_id and \
                principal.shape.value == "cookie":
            token = sessions.csrf_token(principal.session_id)
            helpers["csrf_token"] = lambda: token
        return helpers


def console_page(requires: Requirement | Scope | None = None, billing: Billing = Billing.READ,
                 action: str | None = None) -> Callable:
    """A console page: signed in (else to sign-in, ``HX-Redirect`` for htmx), then the
    same scope, billing and transaction rules as the API (errors render as HTML)."""
    declaration = Declaration(
        (any_of(requires) if isinstance(requires, Scope) else requires) or AUTHENTICATED,
        billing, action)

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            from evershell.access.guard import run_guarded
            try:
                return run_guarded(declaration, view, args, kwargs, console=True)
            except EvershellError as exc:
                if exc.status != 401:
                    raise
                return _to_sign_in()

        wrapper.evershell_declaration = declaration
        return wrapper

    return decorator


def _to_sign_in():
    target = url_for("access_views.sign_in", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = target
        return response
    response = redirect(target)
    if request.cookies.get(sessions.COOKIE_NAME):
        clear_session_cookie(response)
    return response
