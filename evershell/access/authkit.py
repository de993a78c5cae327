"""A thin client of WorkOS AuthKit's User Management endpoints.

The same client talks to real AuthKit (``WORKOS_CLIENT_ID`` set) or to Evershell's local
AuthKit-protocol server (``evershell.localauth``), which speaks the same wire protocol.
AuthKit is not plain OIDC: there is no id_token, the code exchange returns the user
object and tokens, and the JWKS lives at ``/sso/jwks/<client_id>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from flask import current_app

from evershell.core.errors import ErrorCode, EvershellError

log = logging.getLogger("evershell.authkit")

LOCAL_CLIENT_ID = "client_local"
LOCAL_API_KEY = "sk_test_local"
TIMEOUT = 10


@dataclass(frozen=True)
class IdentityProvider:
    base_url: str
    client_id: str
    api_key: str
    issuers: tuple[str, ...]
    is_local: bool

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/sso/jwks/{self.client_id}"

    def authorize_url(self, redirect_uri: str, state: str, code_challenge: str,
                      organization_id: str | None = None, login_hint: str | None = None) -> str:
        params = {
            "client_id": self.client_id, "redirect_uri": redirect_uri,
            "response_type": "code", "provider": "authkit", "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256",
        }
        if organization_id:
            params["organization_id"] = organization_id
        if login_hint:
            params["login_hint"] = login_hint
        return f"{self.base_url}/user_management/authorize?{urlencode(params)}"

    def logout_url(self, session_id: str, return_to: str) -> str:
        query = urlencode({"session_id": session_id, "return_to": return_to})
        return f"{self.base_url}/user_management/sessions/logout?{query}"

    def authenticate(self, grant: dict[str, Any]) -> dict[str, Any]:
        """``POST /user_management/authenticate``; raises ``AuthKitError`` on refusal."""
        body = {"client_id": self.client_id, "client_secret": self.api_key, **grant}
        try:
            response = requests.post(f"{self.base_url}/user_management/authenticate",
                                     json=body, timeout=TIMEOUT)
        except requests.RequestException as exc:
            log.error("identity provider unreachable: %s", type(exc).__name__)
            raise EvershellError(ErrorCode.SERVICE_UNAVAILABLE,
                                 "The identity provider did not answer.", 503) from exc
        if response.status_code != 200:
            raise AuthKitError(response.status_code, _error_text(response))
        return response.json()

    def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        return self.authenticate({"grant_type": "authorization_code", "code": code,
                                  "code_verifier": code_verifier})

    def refresh(self, refresh_token: str, organization_id: str | None = None) -> dict[str, Any]:
        grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if organization_id:
            grant["organization_id"] = organization_id
        return self.authenticate(grant)


class AuthKitError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(body.get("error_description") or body.get("message") or body.get("error")
               or f"HTTP {response.status_code}")


def identity_provider() -> IdentityProvider:
    """The configured AuthKit, or the local AuthKit-protocol server."""
    config = current_app.config
    if config.get("WORKOS_CLIENT_ID"):
        base = config["WORKOS_API_BASE"]
        client_id = config["WORKOS_CLIENT_ID"]
        issuers = tuple(config["AUTHKIT_ISSUERS"]) or (
            base, f"{base}/user_management/{client_id}")
        return IdentityProvider(base, client_id, config.get("WORKOS_API_KEY") or "", issuers,
                                is_local=False)
    base = config["LOCALAUTH_URL"]
    issuers = tuple(config["AUTHKIT_ISSUERS"]) or (
        base, f"{base}/user_management/{LOCAL_CLIENT_ID}")
    return IdentityProvider(base, LOCAL_CLIENT_ID, LOCAL_API_KEY, issuers, is_local=True)
