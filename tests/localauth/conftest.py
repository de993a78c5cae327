"""Fixtures for the local AuthKit-protocol server: an in-process app and flow helpers.

Helpers are fixtures rather than importable functions because ``tests/`` is not a package
(and may never be): fixtures work under every pytest import mode.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from evershell.localauth import LocalAuthSettings, create_localauth_app

CLIENT_ID = "client_local"
API_KEY = "sk_test_local"
REDIRECT_URI = "http://localhost:8000/auth/callback"


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
        "provider": "authkit", "state": "st-123"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


@pytest.fixture
def pkce_pair() -> Callable[[], tuple[str, str]]:
    """Make a fresh (verifier, S256 challenge) pair, computed independently of the server."""
    return _pkce_pair


@pytest.fixture
def authorize_params() -> Callable[..., dict[str, str]]:
    """Make the query of a valid authorize request (as the workos SDK builds it);
    keyword arguments override or, with None, drop a parameter."""
    return _authorize_params


@pytest.fixture
def verify_token() -> Callable[[FlaskClient, str], dict[str, Any]]:
    """Verify an access token against a server's JWKS endpoint; return its claims."""

    def _verify(auth_client: FlaskClient, token: str) -> dict[str, Any]:
        keys = auth_client.get(f"/sso/jwks/{CLIENT_ID}").get_json()
        return jwt.decode(token, KeySet.import_key_set(keys), algorithms=["RS256"]).claims

    return _verify


@pytest.fixture
def auth_settings(tmp_path) -> LocalAuthSettings:
    return LocalAuthSettings(port=8765, key_file=tmp_path / "localauth-key.pem")


@pytest.fixture
def auth_app(auth_settings: LocalAuthSettings) -> Flask:
    return create_localauth_app(auth_settings)


@pytest.fixture
def auth_client(auth_app: Flask) -> FlaskClient:
    return auth_app.test_client()


@pytest.fixture
def sign_in(auth_client: FlaskClient) -> Callable[..., tuple[str, dict[str, list[str]]]]:
    """Submit the sign-in form; return the code and the redirect's query parameters."""

    def _sign_in(email: str = "Ada@Example.com", **params: str):
        form = _authorize_params(**params) | {"email": email, "first_name": "Ada",
                                              "last_name": "Lovelace"}
        response = auth_client.post("/user_management/authorize", data=form)
        assert response.status_code == 302, response.get_data(as_text=True)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        return query["code"][0], query

    return _sign_in


@pytest.fixture
def authenticate(auth_client: FlaskClient) -> Callable[..., Any]:
    """POST to the authenticate endpoint with the client's credentials plus ``fields``."""

    def _authenticate(as_form: bool = False, **fields: str):
        body = {"client_id": CLIENT_ID, "client_secret": API_KEY} | fields
        if as_form:
            return auth_client.post("/user_management/authenticate", data=body)
        return auth_client.post("/user_management/authenticate", json=body)

    return _authenticate


@pytest.fixture
def tokens(sign_in, authenticate) -> dict[str, Any]:
    """A finished sign-in (no PKCE, organisation selected): the authenticate response."""
    code, _ = sign_in(organization_id="org_01LOCAL")
    response = authenticate(grant_type="authorization_code", code=code)
    assert response.status_code == 200, response.get_json()
    return response.get_json()
