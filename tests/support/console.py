"""Signing a member in to the console for tests: ``console_client(membership)``.

The tokens come from the real local AuthKit-protocol server (the session-wide
``localauth`` fixture the app is configured with): its sign-in form issues a code, our
AuthKit client exchanges it, and the access token verifies against the server's JWKS.
Only the browser round trip through /auth/callback is skipped; the console session and
the sealed ``wos_session`` cookie are made exactly as the callback makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient

from evershell.access import sessions
from evershell.access.authkit import identity_provider
from evershell.access.models import Membership
from evershell.access.tokens import verify_session_token
from evershell.extensions import db


def _idp_tokens(email: str) -> dict:
    """Sign ``email`` in at the identity provider; its authenticate answer."""
    idp = identity_provider()
    form = {"client_id": idp.client_id, "redirect_uri": "http://127.0.0.1/auth/callback",
            "response_type": "code", "provider": "authkit", "email": email}
    answer = requests.post(f"{idp.base_url}/user_management/authorize", data=form,
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    return idp.authenticate({"grant_type": "authorization_code", "code": code})


def console_client_factory(app: Flask) -> Callable[[Membership], FlaskClient]:
    """Make a client signed in as ``membership``; it carries ``csrf_token`` and
    ``console_session`` attributes for tests that post forms or end the session."""

    def _signed_in(membership: Membership) -> FlaskClient:
        tokens = _idp_tokens(membership.user.email)
        idp = identity_provider()
        claims = verify_session_token(tokens["access_token"], idp.jwks_url, idp.issuers)
        membership.user.idp_user_id = claims["sub"]
        session = sessions.start(membership.user_id, membership.org_id, claims.get("sid"))
        db.session.commit()
        client = app.test_client()
        client.set_cookie(sessions.COOKIE_NAME, sessions.seal_cookie(
            session.id, tokens["access_token"], tokens["refresh_token"]))
        client.csrf_token = sessions.csrf_token(session.id)
        client.console_session = session
        return client

    return _signed_in
