"""A small local server speaking WorkOS AuthKit's User Management endpoints.

It stands in for AuthKit offline and in tests (SPEC §2): authorize (a "Sign in as" page),
authenticate (code and refresh-token grants), the JWKS, and logout, with real RS256 keys.
It runs as its own process: ``python -m evershell.localauth``.
"""

from evershell.localauth.app import create_localauth_app, main
from evershell.localauth.settings import LocalAuthSettings, SettingsError

__all__ = ["LocalAuthSettings", "SettingsError", "create_localauth_app", "main"]
