"""Browser-facing routes: the "Sign in as" page that issues codes, and logout."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, redirect, render_template_string, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from evershell.localauth import templates
from evershell.localauth.context import current

bp = Blueprint("localauth_authorize", __name__)

# The query parameters the sign-in form carries back on POST; validated again there, so the
# server keeps no pending-request state and a restart between GET and POST is harmless.
_CARRIED = ("client_id", "redirect_uri", "response_type", "state", "provider",
            "code_challenge", "code_challenge_method", "organization_id")
_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class AuthorizeError(Exception):
    """An authorize request that must be refused without redirecting anywhere."""


def _message(title: str, message: str, status: int, *, is_error: bool = True) -> Response:
    html = render_template_string(templates.MESSAGE, title=title, message=message,
                                  is_error=is_error)
    return Response(html, status=status, mimetype="text/html")


def _validated(params: MultiDict[str, str]) -> dict[str, str]:
    """The carried parameters of a well-formed request to our client, or AuthorizeError."""
    state = current()
    settings = state.settings
    if params.get("client_id") != settings.client_id:
        raise AuthorizeError("Unknown client_id.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise AuthorizeError("redirect_uri is required.")
    if not state.redirect_allowed(redirect_uri):
        raise AuthorizeError(
            f"redirect_uri {redirect_uri!r} is not allowed; allowed prefixes: "
            + ", ".join(settings.allowed_redirect_prefixes))
    if params.get("response_type") != "code":
        raise AuthorizeError("response_type must be 'code'.")
    provider = params.get("provider")
    if provider and provider != "authkit":
        raise AuthorizeError(f"Only provider 'authkit' is available locally, not {provider!r}.")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge or method:
        if method != "S256":
            raise AuthorizeError("code_challenge_method must be 'S256' with a code_challenge.")
        if not challenge or not _CHALLENGE.match(challenge):
            raise AuthorizeError("code_challenge must be 43-128 URL-safe characters.")
    org = params.get("organization_id")
    if org and not org.startswith("org_"):
        raise AuthorizeError("organization_id must be an organization id (org_...).")
    return {name: params[name] for name in _CARRIED if params.get(name)}


def _sign_in_page(carried: dict[str, str], status: int = 200, error: str | None = None,
                  email: str = "", first_name: str = "", last_name: str = "") -> Response:
    html = render_template_string(
        templates.SIGN_IN, action=request.path, carried=carried, error=error,
        email=email, first_name=first_name, last_name=last_name)
    return Response(html, status=status, mimetype="text/html")


@bp.get("/user_management/authorize")
def authorize_page() -> Response:
    """Render the "Sign in as" form for a valid authorize request."""
    try:
        carried = _validated(request.args)
    except AuthorizeError as exc:
        return _message("Cannot sign in", str(exc), 400)
    return _sign_in_page(carried, email=request.args.get("login_hint", ""))


@bp.post("/user_management/authorize")
def authorize_submit() -> Response:
    """Sign the entered identity in and redirect to ``redirect_uri`` with a one-time code."""
    try:
        carried = _validated(request.form)
    except AuthorizeError as exc:
        return _message("Cannot sign in", str(exc), 400)
    email = request.form.get("email", "").strip()
    first_name = request.form.get("first_name", "").strip() or None
    last_name = request.form.get("last_name", "").strip() or None
    if len(email) > 254 or not _EMAIL.match(email):
        return _sign_in_page(carried, 400, "Enter an email address such as you@example.com.",
                             email, first_name or "", last_name or "")
    state = current()
    user = state.store.sign_in(email, first_name, last_name)
    code = state.store.issue_code(state.settings.client_id, user.id,
                                  carried.get("organization_id"), carried.get("code_challenge"))
    params = {"code": code}
    if "state" in carried:
        params["state"] = carried["state"]
    return redirect(_with_query(carried["redirect_uri"], params), code=302)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@bp.get("/user_management/sessions/logout")
def logout() -> Response:
    """End the session, then go to ``return_to`` when allowed, else show "Signed out"."""
    session_id = request.args.get("session_id", "")
    if not session_id:
        return _message("Cannot sign out", "session_id is required.", 400)
    state = current()
    # An unknown id (e.g. the server restarted since sign-in) still signs the browser out:
    # the app has already dropped its cookie and the person only wants to land somewhere.
    state.store.end_session(session_id)
    return_to = request.args.get("return_to", "")
    if return_to and state.redirect_allowed(return_to):
        return redirect(return_to, code=302)
    note = "You are signed out."
    if return_to:
        note += " The return address is not an allowed URL, so you stay on this page."
    return _message("Signed out", note, 200, is_error=False)
