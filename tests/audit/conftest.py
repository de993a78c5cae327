"""Audit test helpers: entries made through the real writer. (``console_client`` is the
shared fixture in tests/conftest.py.)"""

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
