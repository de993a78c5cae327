"""Settings of the local AuthKit-protocol server, read from ``LOCALAUTH_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_CLIENT_ID = "client_local"
DEFAULT_API_KEY = "sk_test_local"
DEFAULT_KEY_FILE = "instance/localauth-key.pem"
DEFAULT_ACCESS_TTL = 300
DEFAULT_REDIRECT_PREFIXES = ("http://127.0.0.1", "http://localhost")


class SettingsError(ValueError):
    """A ``LOCALAUTH_*`` variable holds a value the server cannot use."""


@dataclass(frozen=True)
class LocalAuthSettings:
    """Everything the local server needs; ``from_env`` fills it from the environment.

    ``issuer`` is the server's base URL (what an AuthKit client calls its base URL);
    access tokens carry ``<issuer>/user_management/<client_id>`` in ``iss``, as AuthKit's do.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    issuer: str = ""
    client_id: str = DEFAULT_CLIENT_ID
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    key_file: Path = Path(DEFAULT_KEY_FILE)
    access_ttl: int = DEFAULT_ACCESS_TTL
    allowed_redirect_prefixes: tuple[str, ...] = DEFAULT_REDIRECT_PREFIXES
    code_ttl: int = 600

    def __post_init__(self) -> None:
        # The issuer defaults to the bound port, so it can only be derived once the port is known.
        issuer = (self.issuer or f"http://127.0.0.1:{self.port}").rstrip("/")
        object.__setattr__(self, "issuer", issuer)
        object.__setattr__(self, "key_file", Path(self.key_file))
        if not self.client_id:
            raise SettingsError("LOCALAUTH_CLIENT_ID must not be empty")
        if not self.api_key:
            raise SettingsError("LOCALAUTH_API_KEY must not be empty")
        if self.access_ttl <= 0:
            raise SettingsError("LOCALAUTH_ACCESS_TTL must be a positive number of seconds")
        if not self.allowed_redirect_prefixes:
            raise SettingsError("LOCALAUTH_ALLOWED_REDIRECT_PREFIXES must name at least one URL")

    @property
    def token_issuer(self) -> str:
        """The ``iss`` claim of access tokens: AuthKit's ``<base>/user_management/<client>``."""
        return f"{self.issuer}/user_management/{self.client_id}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalAuthSettings:
        """Read ``LOCALAUTH_*`` variables (``os.environ`` by default), applying defaults."""
        env = os.environ if environ is None else environ
        prefixes = tuple(
            p.strip().rstrip("/")
            for p in env.get("LOCALAUTH_ALLOWED_REDIRECT_PREFIXES", "").split(",")
            if p.strip()
        )
        return cls(
            host=env.get("LOCALAUTH_HOST") or DEFAULT_HOST,
            port=_int(env, "LOCALAUTH_PORT", DEFAULT_PORT),
            issuer=env.get("LOCALAUTH_ISSUER", ""),
            client_id=env.get("LOCALAUTH_CLIENT_ID") or DEFAULT_CLIENT_ID,
            api_key=env.get("LOCALAUTH_API_KEY") or DEFAULT_API_KEY,
            key_file=Path(env.get("LOCALAUTH_KEY_FILE") or DEFAULT_KEY_FILE),
            access_ttl=_int(env, "LOCALAUTH_ACCESS_TTL", DEFAULT_ACCESS_TTL),
            allowed_redirect_prefixes=prefixes or DEFAULT_REDIRECT_PREFIXES,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
