"""Member services beyond the API: claiming invitations at sign-in, and the last-owner
rule under concurrent demotions (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from evershell.access import services as access
from evershell.access.models import Membership, User
from evershell.audit.models import AuditEntry
from evershell.core.db import utcnow
from evershell.core.errors import EvershellError
from evershell.extensions import db
from evershell.members import services
from evershell.orgs.models import Org
from tests.factories import make_member, make_org, principal_for


def _invite(org, email, role="member"):
    owner = make_member(org, role="owner")
    invitation = services.invite(principal_for(owner), email, role)
    db.session.commit()
    return invitation


def test_claim_turns_pending_invitations_into_memberships(session):
    org_a, org_b = make_org(), make_org()
    inv_a = _invite(org_a, "Joiner@Example.test", role="operator")
    inv_b = _invite(org_b, "joiner@example.test", role="member")
    user = access.find_or_create_user("joiner@example.test")

    created = services.claim_invitations(user)
    session.commit()

    assert {(m.org_id, m.role) for m in created} == {(org_a.id, "operator"),
                                                      (org_b.id, "member")}
    for invitation in (inv_a, inv_b):
        session.refresh(invitation)
        assert invitation.accepted_at is not None and invitation.accepted_user_id == user.id
        entry = session.scalar(sa.select(AuditEntry).where(
            AuditEntry.target_id == invitation.id, AuditEntry.action == "invitation.accept"))
        assert entry.actor_user_id == user.id and entry.org_id == invitation.org_id
    assert services.claim_invitations(user) == []  # claimed once


def test_claim_ignores_expired_revoked_and_other_emails(session):
    org = make_org()
    expired = _invite(org, "late@example.test")
    expired.expires_at = utcnow() - timedelta(minutes=1)
    revoked_org = make_org()
    revoked = _invite(revoked_org, "late@example.test")
    services.remove(principal_for(session.scalar(sa.select(Membership).where(
        Membership.org_id == revoked_org.id))), revoked.id)
    _invite(make_org(), "someone.else@example.test")
    session.commit()

    user = access.find_or_create_user("late@example.test")
    assert services.claim_invitations(user) == []
    assert session.scalars(sa.select(Membership).where(Membership.user_id == user.id)).all() \
        == []
    session.refresh(expired)
    assert expired.accepted_at is None


def test_claim_skips_orgs_the_user_already_belongs_to(session):
    org = make_org()
    invitation = _invite(org, "both@example.test", role="member")
    # added by the CLI after the invitation went out
    existing = make_member(org, role="owner", email="both@example.test")

    assert services.claim_invitations(existing.user) == []
    session.commit()
    session.refresh(existing)
    assert existing.role == "owner"
    session.refresh(invitation)
    assert invitation.accepted_at is not None  # no longer listed as pending


def test_list_members_rejects_unknown_status(session):
    owner = make_member(make_org(), role="owner")
    with pytest.raises(EvershellError) as raised:
        services.list_members(principal_for(owner), 10, None, status="gone")
    assert raised.value.status == 400


@pytest.fixture
def committed_db(app):
    """A session factory on real, committed transactions (one connection per thread),
    for concurrency tests; whatever the test commits is deleted afterwards."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises writers")
    isolated = db.session
    db.session = orm.scoped_session(orm.sessionmaker(bind=db.engine), scopefunc=_app_ctx_id)
    created: dict[str, list[str]] = {"orgs": [], "users": []}
    try:
        yield created
    finally:
        db.session.remove()
        with db.engine.begin() as connection:
            connection.execute(sa.delete(Org).where(Org.id.in_(created["orgs"])))
            connection.execute(sa.delete(User).where(User.id.in_(created["users"])))
        db.session = isolated


def test_two_owners_demoting_each_other_at_once_leave_one_owner(app, committed_db):
    with app.app_context():
        from evershell.orgs import services as orgs
        org = orgs.create_org("Race", "race-" + utcnow().strftime("%H%M%S%f"))
        a = access.add_member(org, f"a-{org.slug}@example.test", "owner")
        b = access.add_member(org, f"b-{org.slug}@example.test", "owner")
        db.session.commit()
        committed_db["orgs"].append(org.id)
        committed_db["users"] += [a.user_id, b.user_id]
        pa, pb = principal_for(a), principal_for(b)
        a_id, b_id, org_id = a.id, b.id, org.id

    first_done = threading.Event()
    release_first = threading.Event()
    outcomes: dict[str, str] = {}

    def demote(name, actor, target_id, hold=False):
        with app.app_context():
            try:
                services.change_role(actor, target_id, "member")
                if hold:
                    first_done.set()
                    release_first.wait(10)  # keep the transaction (and its locks) open
                db.session.commit()
                outcomes[name] = "ok"
            except EvershellError as exc:
                db.session.rollback()
                outcomes[name] = exc.code.value
            finally:
                first_done.set()

    first = threading.Thread(target=demote, args=("a demotes b", pa, b_id, True))
    first.start()
    assert first_done.wait(10)
    second = threading.Thread(target=demote, args=("b demotes a", pb, a_id))
    second.start()
    second.join(0.5)  # without the lock it would finish here, counting b as an owner
    release_first.set()
    first.join(10)
    second.join(10)

    assert outcomes == {"a demotes b": "ok", "b demotes a": "last_owner"}
    with app.app_context():
        owners = db.session.scalars(sa.select(Membership.id).where(
            Membership.org_id == org_id, Membership.role == "owner")).all()
        assert owners == [a_id]
