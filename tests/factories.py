"""Small factories for test data. Each commits (inside the test's outer transaction,
which is still rolled back at the end), so a request that fails and rolls back its own
work does not take the test's setup with it."""

from __future__ import annotations

import itertools

from evershell.access import services as access
from evershell.access.models import Membership
from evershell.extensions import db
from evershell.orgs import services as orgs
from evershell.orgs.models import Org

_counter = itertools.count(1)


def make_org(name: str | None = None, slug: str | None = None) -> Org:
    n = next(_counter)
    org = orgs.create_org(name or f"Org {n}", slug or f"org-{n}")
    db.session.commit()
    return org


def make_member(org: Org | None = None, role: str = "member", email: str | None = None) \
        -> Membership:
    org = org or make_org()
    membership = access.add_member(org, email or f"user{next(_counter)}@example.test", role)
    db.session.commit()
    return membership


def principal_for(membership: Membership, shape: str = "cli"):
    """The principal of a member acting directly (as the CLI does)."""
    from evershell.access.authn import build_principal
    from evershell.access.principal import CredentialShape
    return build_principal(membership.user, membership.org, CredentialShape(shape))


def make_api_key(membership: Membership, template: str | None = "full",
                 scopes: list[str] | None = None, name: str = "test key") -> str:
    """A live API key of ``membership``'s user; returns the secret."""
    from evershell.apikeys import services as api_keys
    _key, secret = api_keys.create(principal_for(membership), name,
                                   template=None if scopes is not None else template,
                                   scopes=scopes)
    db.session.commit()
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
