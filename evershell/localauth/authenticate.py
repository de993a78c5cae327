"""``POST /user_management/authenticate``: code and refresh-token grants, as AuthKit answers."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from evershell.localauth import ids
from evershell.localauth.context import LocalAuthState, current
from evershell.localauth.store import GrantError, Session

bp = Blueprint("localauth_authenticate", __name__)


def oauth_error(status: int, error: str, description: str) -> Response:
    """AuthKit's error body for this endpoint: ``{"error", "error_description"}``."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def access_token_claims(state: LocalAuthState, session: Session) -> dict[str, Any]:
    """The claims of an access token for ``session``, named as in AuthKit's tokens."""
    now = int(state.store.clock())
    claims: dict[str, Any] = {
        "iss": state.settings.token_issuer,
        "sub": session.user_id,
        "sid": session.id,
        "jti": ids.ulid(),
        "iat": now,
        "exp": now + state.settings.access_ttl,
        "auth_time": session.auth_time,
    }
    if session.organization_id:
        claims["org_id"] = session.organization_id
    return claims


def _body() -> dict[str, Any] | None:
    if request.is_json:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else None
    return request.form.to_dict()


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


@bp.post("/user_management/authenticate")
def authenticate() -> Response:
    """Exchange an authorization code or a refresh token for a token pair and the user."""
    body = _body()
    if body is None:
        return oauth_error(400, "invalid_request", "The body must be a JSON object or a form.")
    state = current()
    settings = state.settings
    client_id = _text(body, "client_id") or ""
    secret = _text(body, "client_secret") or ""
    # Both comparisons always run so a wrong client id and a wrong secret take equal time.
    id_ok = hmac.compare_digest(client_id.encode(), settings.client_id.encode())
    secret_ok = hmac.compare_digest(secret.encode(), settings.api_key.encode())
    if not (id_ok and secret_ok):
        return oauth_error(401, "invalid_client", "Invalid client ID or client secret.")

    grant_type = _text(body, "grant_type")
    try:
        if grant_type == "authorization_code":
            code = _text(body, "code")
            if code is None:
                return oauth_error(400, "invalid_request", "code is required.")
            session = state.store.redeem_code(code, client_id, _text(body, "code_verifier"))
            refresh_token = state.store.issue_refresh_token(session)
        elif grant_type == "refresh_token":
            token = _text(body, "refresh_token")
            if token is None:
                return oauth_error(400, "invalid_request", "refresh_token is required.")
            org = _text(body, "organization_id")
            if org is not None and not org.startswith("org_"):
                return oauth_error(400, "invalid_request",
                                   "organization_id must be an organization id (org_...).")
            session, refresh_token = state.store.rotate_refresh_token(token, client_id, org)
        else:
            return oauth_error(400, "unsupported_grant_type",
                               f"Unsupported grant_type {grant_type!r}; this local server "
                               "supports authorization_code and refresh_token.")
    except GrantError as exc:
        return oauth_error(400, "invalid_grant", str(exc))

    user = state.store.get_user(session.user_id)
    response = jsonify({
        "user": user.to_json(),
        "organization_id": session.organization_id,
        "access_token": state.key.sign(access_token_claims(state, session)),
        "refresh_token": refresh_token,
        "authentication_method": "Password",
    })
    response.headers["Cache-Control"] = "no-store"
    return response
