"""The per-app state of the local server, shared by its routes."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from evershell.localauth.keys import SigningKey
from evershell.localauth.redirects import is_allowed_redirect
from evershell.localauth.settings import LocalAuthSettings
from evershell.localauth.store import Store

EXTENSION = "localauth"


@dataclass
class LocalAuthState:
    """Settings, signing key and in-memory store of one server (``app.extensions``)."""

    settings: LocalAuthSettings
    key: SigningKey
    store: Store

    def redirect_allowed(self, url: str) -> bool:
        """Whether a browser may be sent to ``url``."""
        return is_allowed_redirect(url, self.settings.allowed_redirect_prefixes)


def current() -> LocalAuthState:
    """The state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
