"""Epochs move with every change to what a cached principal says, whichever way it is
written: a user's email moves the epoch of each org they belong to, and a bulk statement
that would go around the flush (and so around the epoch) is refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evershell.access import epochs
from evershell.access.models import Membership
from evershell.apikeys.models import ApiKey
from evershell.core.db import utcnow
from evershell.extensions import db, get_redis
from tests.factories import make_api_key, make_member, make_org


def epoch(org_id: str) -> int:
    return int(get_redis().get(epochs.key(org_id)) or 0)


def test_a_changed_email_moves_the_epoch_of_every_org_of_the_user(app, session):
    first = make_member(make_org(), email="moves@example.test")
    second = make_member(make_org(), email="moves@example.test")
    bystander = make_member(make_org())
    assert first.user_id == second.user_id
    before = {m.org_id: epoch(m.org_id) for m in (first, second, bystander)}
    first.user.email = "moved@example.test"
    session.commit()
    assert epoch(first.org_id) > before[first.org_id]
    assert epoch(second.org_id) > before[second.org_id]
    assert epoch(bystander.org_id) == before[bystander.org_id]


@pytest.mark.parametrize("statement", [
    lambda: sa.update(ApiKey).values(revoked_at=utcnow()),
    lambda: sa.update(ApiKey).where(ApiKey.name == "x").values({ApiKey.scopes: []}),
    lambda: sa.update(Membership).values(role="owner"),
    lambda: sa.delete(Membership),
    lambda: sa.delete(ApiKey).where(ApiKey.name == "x"),
], ids=["revoke", "scopes", "role", "delete-members", "delete-keys"])
def test_a_bulk_change_of_what_a_principal_may_do_is_refused(app, session, statement):
    make_api_key(make_member(make_org()))
    with pytest.raises(RuntimeError, match="epoch"):
        session.execute(statement())
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiKey)
                          .where(ApiKey.revoked_at.is_not(None))) == 0


def test_a_bulk_change_of_what_no_principal_holds_runs(app, session):
    owner = make_member(make_org())
    make_api_key(owner)
    session.execute(sa.update(ApiKey).where(ApiKey.org_id == owner.org_id)
                    .values(last_used_at=utcnow()))
    key = session.scalar(sa.select(ApiKey).where(ApiKey.org_id == owner.org_id))
    session.execute(sa.update(ApiKey), [{"id": key.id, "name": "renamed"}])
    with pytest.raises(RuntimeError, match="epoch"):
        session.execute(sa.update(ApiKey), [{"id": key.id, "revoked_at": utcnow()}])
    session.rollback()
    assert db.session.get(ApiKey, key.id).revoked_at is None
