"""Invitations as people meet them: a re-invite says what it replaced and keeps the role
chosen now; one pending invitation per email, even when two invites race (PostgreSQL);
the sign-in page reached from a link names the inviter, org and role, and nothing for
a link that is not live; the last owner is not offered what would be refused."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from evershell.access.models import Invitation
from evershell.core.db import utcnow
from evershell.extensions import db
from evershell.members import services
from tests.factories import bearer, make_api_key, make_member, make_org, principal_for
from tests.members.test_services import committed_db  # noqa: F401  (fixture)

URL, PAGE = "/v1/memberships", "/settings/members"
HX = {"HX-Request": "true"}


def invite(client, headers, email, role):
    return client.post(URL, json={"email": email, "role": role}, headers=headers)


def post(client, path, data):
    return client.post(path, data=data, headers={**HX, "X-CSRF-Token": client.csrf_token})


def pending(session, org_id: str, email: str) -> list[Invitation]:
    return list(session.scalars(sa.select(Invitation).where(
        Invitation.org_id == org_id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))))


# -- re-inviting -------------------------------------------------------------------------

def test_a_reinvite_says_what_it_replaced_and_keeps_the_role_chosen_now(client, session):
    owner = make_member(make_org(), role="owner")
    headers = bearer(make_api_key(owner))
    first = invite(client, headers, "again@example.test", "operator").get_json()
    assert first["replaced"] == []
    second = invite(client, headers, "again@example.test", "member").get_json()
    assert second["role"] == "member"
    assert [(r["id"], r["role"]) for r in second["replaced"]] == [(first["id"], "operator")]
    assert [i.id for i in pending(session, owner.org_id, "again@example.test")] == \
        [second["id"]]


def test_listed_members_carry_no_replaced(client):
    owner = make_member(make_org(), role="owner")
    headers = bearer(make_api_key(owner))
    invite(client, headers, "listed@example.test", "member")
    listed = client.get(URL, headers=headers).get_json()["data"]
    assert {item["replaced"] for item in listed} == {None}


def test_the_console_says_the_earlier_link_stopped_working(console_client, session):
    owner = make_member(make_org(), role="owner")
    client = console_client(owner)
    first = post(client, PAGE, {"email": "twice@example.test", "role": "operator"})
    assert "Invited twice@example.test as operator." in first.get_data(as_text=True)
    assert "replaces" not in first.get_data(as_text=True)
    again = post(client, PAGE, {"email": "twice@example.test", "role": "operator"})
    html = again.get_data(as_text=True)
    assert "This replaces the earlier invitation (as operator, sent" in html
    assert "its link no longer works" in html
    # The invite form keeps the role just chosen rather than falling back to member.
    assert '<option value="operator" selected>' in html.split("Pending invitations")[0]
    (live,) = pending(session, owner.org_id, "twice@example.test")
    assert live.role == "operator"


def test_the_database_refuses_a_second_pending_invitation(session):
    owner = make_member(make_org(), role="owner")
    services.invite(principal_for(owner), "dup@example.test", "member")
    db.session.flush()
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.add(Invitation(org_id=owner.org_id, email="dup@example.test",
                                  role="member", expires_at=utcnow()))
        db.session.flush()


def test_two_simultaneous_invites_leave_one_pending_invitation(app, committed_db):  # noqa: F811
    """PostgreSQL, two connections: neither sees the other's row before inserting, so
    without the index both would stay pending; with it, the loser retries and replaces
    the winner's invitation."""
    with app.app_context():
        from evershell.orgs import services as orgs
        org = orgs.create_org("Invite race", "inv-race-" + utcnow().strftime("%H%M%S%f"))
        from evershell.access import services as access
        a = access.add_member(org, f"a-{org.slug}@example.test", "owner")
        b = access.add_member(org, f"b-{org.slug}@example.test", "owner")
        db.session.commit()
        committed_db["orgs"].append(org.id)
        committed_db["users"] += [a.user_id, b.user_id]
        pa, pb, org_id = principal_for(a), principal_for(b), org.id

    both_read = threading.Barrier(2, timeout=10)
    outcomes: dict[str, str] = {}
    original = services._unsettled
    waited: set[int] = set()

    def read_then_wait(org_id, email):
        rows = original(org_id, email)
        if threading.get_ident() not in waited:  # only each thread's first read
            waited.add(threading.get_ident())
            both_read.wait()  # both saw no pending row; both go on to insert
        return rows

    def run(name, actor, role):
        with app.app_context():
            try:
                services.invite(actor, "racer@example.test", role)
                db.session.commit()
                outcomes[name] = "ok"
            except Exception as exc:  # the test reports whatever escaped
                db.session.rollback()
                outcomes[name] = repr(exc)

    services._unsettled = read_then_wait
    try:
        threads = [threading.Thread(target=run, args=("a", pa, "operator")),
                   threading.Thread(target=run, args=("b", pb, "member"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        services._unsettled = original

    assert outcomes == {"a": "ok", "b": "ok"}
    with app.app_context():
        rows = db.session.scalars(sa.select(Invitation).where(
            Invitation.org_id == org_id)).all()
        live = [row for row in rows if row.revoked_at is None]
        assert len(rows) == 2 and len(live) == 1



# -- the sign-in page an invitation link lands on ------------------------------------------

def test_the_sign_in_page_names_inviter_org_and_role(client):
    org = make_org("Acme Robotics")
    owner = make_member(org, role="owner", email="ada@example.test")
    owner.user.name = "Ada Lovelace"
    db.session.commit()
    invitation = services.invite(principal_for(owner), "new@example.test", "operator")
    db.session.commit()
    page = client.get(f"/sign-in?invitation={invitation.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<strong>Ada Lovelace</strong> invited you to join <strong>Acme Robotics</strong>" \
        " as <strong>operator</strong>" in html
    assert "Sign in as <strong>new@example.test</strong>" in html
    assert "login_hint=new@example.test" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("state", ["revoked", "expired", "accepted", "unknown", "garbage"])
def test_a_link_that_is_not_live_tells_nothing_about_the_invitation(client, state):
    from datetime import timedelta
    org = make_org("Secret Org Name")
    owner = make_member(org, role="owner", email="hidden-inviter@example.test")
    invitation = services.invite(principal_for(owner), "x@example.test", "owner")
    db.session.commit()
    link_id = invitation.id
    if state == "revoked":
        invitation.revoked_at = utcnow()
    elif state == "expired":
        invitation.expires_at = utcnow() - timedelta(seconds=1)
    elif state == "accepted":
        invitation.accepted_at = utcnow()
    elif state == "unknown":
        link_id = "inv_" + "0" * 26
    else:
        link_id = "'; drop table invitations; --"
    db.session.commit()
    html = client.get("/sign-in", query_string={"invitation": link_id}).get_data(as_text=True)
    assert "This invitation link is not valid any more" in html
    for leak in ("Secret Org Name", "hidden-inviter", "x@example.test", "login_hint"):
        assert leak not in html


def test_the_plain_sign_in_page_says_nothing_of_invitations(client):
    html = client.get("/sign-in").get_data(as_text=True)
    assert "invit" not in html.lower()


# -- the last owner ----------------------------------------------------------------------

def test_the_sole_owner_is_not_offered_remove_or_a_role_change(console_client):
    org = make_org()
    owner = make_member(org, role="owner", email="only@example.test")
    member = make_member(org, role="member", email="someone@example.test")
    html = console_client(owner).get(PAGE).get_data(as_text=True)
    own_row = _row(html, owner.id)
    assert "/remove" not in own_row and "<select" not in own_row
    assert "the only owner" in own_row
    other_row = _row(html, member.id)
    assert f"/settings/members/{member.id}/remove" in other_row and "<select" in other_row


def test_with_two_owners_each_can_be_changed(console_client):
    org = make_org()
    owner = make_member(org, role="owner")
    second = make_member(org, role="owner")
    html = console_client(owner).get(PAGE).get_data(as_text=True)
    for membership in (owner, second):
        row = _row(html, membership.id)
        assert f"/settings/members/{membership.id}/remove" in row and "<select" in row
    assert "the only owner" not in html


def _row(html: str, item_id: str) -> str:
    start = html.index(f'id="row-{item_id}"')
    return html[start:html.index("</tr>", start)]
