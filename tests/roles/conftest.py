"""Role test helpers: providers, packs and roles made through their services, an
owner with an API key (``console_client`` comes from tests/conftest.py)."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass

import pytest

from evershell.access.models import Membership
from evershell.extensions import db
from tests.factories import bearer, make_api_key, make_member, make_org, principal_for

_names = itertools.count(1)
SCRIPT = [{"text": "Done."}]
CAPS = "tools: [shell, read_file]\nlimits:\n  memory_mb: 2048\n"


def make_provider(membership: Membership, models: list[str] | None = None, **values):
    """A scripted provider (no network, no secret) serving ``models``."""
    from evershell.providers import services as providers
    values.setdefault("name", f"provider {next(_names)}")
    provider = providers.create(principal_for(membership), {
        "kind": "scripted", "script": SCRIPT, "models": models or ["scripted", "other"],
        **values})
    db.session.commit()
    return provider


def make_pack(membership: Membership, name: str | None = None):
    """A pack of ``membership``'s org with one small file."""
    from evershell.packs import services as packs
    pack = packs.create(principal_for(membership), name or f"pack-{next(_names)}",
                        files=[("README.md", io.BytesIO(b"# notes\n"))])
    db.session.commit()
    return pack


def make_role(membership: Membership, provider=None, **values):
    """A role made through the service; ``provider`` defaults to a new scripted one."""
    from evershell.roles import services
    provider = provider or make_provider(membership)
    values.setdefault("name", f"role {next(_names)}")
    state = services.create(principal_for(membership), {
        "provider_id": provider.id, "model": provider.models[0], **values})
    db.session.commit()
    return state


@dataclass
class Owner:
    membership: Membership
    headers: dict[str, str]
    provider: object

    @property
    def org(self):
        return self.membership.org


@pytest.fixture
def owner() -> Owner:
    """An org's owner, a full API key of theirs, and a scripted provider."""
    membership = make_member(make_org(), role="owner")
    return Owner(membership, bearer(make_api_key(membership)), make_provider(membership))


def key_of(org, role: str = "member", **kwargs) -> dict[str, str]:
    """Bearer headers of a new member of ``org`` with ``role``."""
    return bearer(make_api_key(make_member(org, role=role), **kwargs))
