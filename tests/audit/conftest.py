"""Audit test helpers: entries made through the real writer, and ``console_client``.

``console_client(membership)`` is a test client signed in to the console as that member:
the real local AuthKit-protocol server (the session-wide ``localauth`` fixture) signs the
email in and issues tokens, the access token is verified against its JWKS, and the
console session and sealed ``wos_session`` cookie are made as ``/auth/callback`` makes
them. (tests/members/conftest.py has the same fixture; it belongs in tests/support.)
"""

from __future__ import annotations

from datetime import datetime

from evershell.access.models import Membership
from evershell.audit import services as audit
from evershell.extensions import db
from tests.factories import principal_for


def add_entry(membership: Membership, action: str = "thing.do", target_type: str | None = None,
              target_id: str | None = None, details: dict | None = None,
              at: datetime | None = None, shape: str = "cli"):
    """An entry written by ``membership`` through ``audit.record``, flushed."""
    entry = audit.record(membership.org_id, action, target_type, target_id, details,
                         principal=principal_for(membership, shape))
    if at is not None:
        entry.created_at = at
    db.session.flush()
    return entry
