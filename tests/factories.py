"""Small factories for test data; each returns a flushed model."""

from __future__ import annotations

import itertools

from evershell.access import services as access
from evershell.access.models import Membership
from evershell.orgs import services as orgs
from evershell.orgs.models import Org

_counter = itertools.count(1)


def make_org(name: str | None = None, slug: str | None = None) -> Org:
    n = next(_counter)
    return orgs.create_org(name or f"Org {n}", slug or f"org-{n}")


def make_member(org: Org | None = None, role: str = "member", email: str | None = None) \
        -> Membership:
    org = org or make_org()
    return access.add_member(org, email or f"user{next(_counter)}@example.test", role)
