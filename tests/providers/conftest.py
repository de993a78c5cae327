"""Provider test helpers: factories, a fake DNS (no test depends on external DNS), the
operator's private-networks switch (console_client comes from tests/conftest.py)."""

from __future__ import annotations

import itertools

import pytest

from evershell.access.models import Membership
from evershell.extensions import db
from evershell.providers import services, ssrf
from evershell.providers.ssrf import ALLOW_PRIVATE_SETTING
from tests.factories import principal_for

REAL_RESOLVE = ssrf.resolve
_names = itertools.count(1)
SCRIPT = [
    {"text": "Let me look at the uploads."},
    {"tool_calls": [{"name": "bash", "arguments": {"command": "ls /data/uploads"}}]},
    {"text": "Two files.", "tool_calls": [{"name": "finish", "arguments": {}}]},
]


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> dict[str, list[str]]:
    """Names the resolver knows in these tests (add to it); any other name does not
    resolve, which the save-time check accepts (the connect-time check is the guard)."""
    table = {"api.anthropic.com": ["160.79.104.10"], "api.openai.com": ["162.159.140.245"],
             "models.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: list(table.get(host, [])))
    return table


@pytest.fixture(autouse=True)
def _private_networks_refused_by_default(monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_SETTING, raising=False)


@pytest.fixture
def private_networks_allowed(monkeypatch) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_SETTING, "true")


def make_secret(membership: Membership, name: str = "MODEL_API_KEY",
                value: str = "sk-test-value") -> str:
    """A secret of ``membership``'s org, made by that member; returns its id."""
    from evershell.secrets import services as secrets
    secret = secrets.create(principal_for(membership), name, value)
    db.session.commit()
    return secret.id


def make_provider(membership: Membership, **values):
    """A provider made through the service (scripted unless ``kind`` says otherwise)."""
    values.setdefault("kind", "scripted")
    values.setdefault("name", f"provider {next(_names)}")
    if values["kind"] == "scripted":
        values.setdefault("script", SCRIPT)
    provider = services.create(principal_for(membership), values)
    db.session.commit()
    return provider
