"""Console: Settings → Members, signed in with a real console session."""

from __future__ import annotations

import sqlalchemy as sa

from evershell.access.models import ConsoleSession, Invitation, Membership
from evershell.audit.models import AuditEntry
from tests.factories import make_member, make_org

PAGE = "/settings/members"
HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, path, data=None, htmx=True):
    headers = {**(HX if htmx else {}), "X-CSRF-Token": client.csrf_token}
    return client.post(path, data=data or {}, headers=headers)


def test_owner_sees_members_invitations_and_every_control(console_client, session):
    org = make_org()
    owner = make_member(org, role="owner", email="boss@example.test")
    make_member(org, role="operator", email="op@example.test")
    client = console_client(owner)
    post(client, PAGE, {"email": "guest@example.test", "role": "member"})
    invitation = session.scalar(sa.select(Invitation).where(Invitation.org_id == org.id))

    page = client.get(PAGE)
    html = text(page)
    assert page.status_code == 200 and "<html" in html
    assert "boss@example.test" in html and "op@example.test" in html
    assert "guest@example.test" in html and f"sign-in?invitation={invitation.id}" in html
    assert 'data-copy="#invite-link-' in html
    assert 'hx-post="/settings/members"' in html  # invite form
    assert f"/settings/members/{invitation.id}/role" in html
    assert "hx-confirm=" in html and "Remove" in html
    assert 'name="csrf_token"' in html


def test_operator_reads_the_list_without_write_controls(console_client):
    org = make_org()
    make_member(org, role="owner", email="boss@example.test")
    operator = make_member(org, role="operator", email="op@example.test")
    html = text(console_client(operator).get(PAGE))
    assert "boss@example.test" in html
    assert "Invite someone" not in html and "hx-post" not in html
    assert "<select" not in html and "hx-confirm" not in html


def test_member_role_gets_no_link_and_a_403_page(console_client):
    org = make_org()
    make_member(org, role="owner")
    client = console_client(make_member(org, role="member"))
    assert 'href="/settings/members"' not in text(client.get("/settings/api-keys"))
    response = client.get(PAGE)
    assert response.status_code == 403 and "<html" in text(response)


def test_signed_out_people_go_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    htmx = client.get(PAGE, headers=HX)
    assert htmx.status_code == 204 and "/sign-in" in htmx.headers["HX-Redirect"]


def test_htmx_requests_get_the_fragment_only(console_client):
    client = console_client(make_member(role="owner"))
    response = client.get(PAGE, headers=HX)
    assert response.status_code == 200
    assert "<html" not in text(response) and "Pending invitations" in text(response)


def test_invite_through_the_console_shows_the_link(app, console_client, session):
    owner = make_member(role="owner")
    response = post(console_client(owner), PAGE, {"email": "New@Example.test",
                                                  "role": "operator"})
    assert response.status_code == 200 and "<html" not in text(response)
    invitation = session.scalar(sa.select(Invitation).where(
        Invitation.email == "new@example.test"))
    assert invitation.role == "operator"
    assert f"{app.config['PUBLIC_URL']}/sign-in?invitation={invitation.id}" in text(response)
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == invitation.id))
    assert entry.action == "member.invite" and entry.credential_shape == "cookie"


def test_invite_without_htmx_renders_the_whole_page(console_client, session):
    client = console_client(make_member(role="owner"))
    response = post(client, PAGE, {"email": "plain@example.test", "role": "member"},
                    htmx=False)
    assert response.status_code == 200 and "<html" in text(response)
    assert "plain@example.test" in text(response)


def test_service_errors_show_inline_in_the_fragment(console_client):
    org = make_org()
    owner = make_member(org, role="owner", email="boss@example.test")
    client = console_client(owner)
    bad = post(client, PAGE, {"email": "not-an-email", "role": "member"})
    assert bad.status_code == 200 and "Enter a valid email address." in text(bad)
    assert 'aria-invalid="true"' in text(bad)
    taken = post(client, PAGE, {"email": "boss@example.test", "role": "member"})
    assert taken.status_code == 200 and "already a member" in text(taken)
    demote = post(client, f"{PAGE}/{owner.id}/role", {"role": "member"})
    assert demote.status_code == 200 and "last owner" in text(demote)
    leave = post(client, f"{PAGE}/{owner.id}/remove")
    assert leave.status_code == 200 and "last owner" in text(leave)
    missing = post(client, f"{PAGE}/mem_01J9ZZZZZZZZZZZZZZZZZZZZZZ/remove")
    assert missing.status_code == 200 and "was not found" in text(missing)
    without_js = post(client, f"{PAGE}/{owner.id}/role", {"role": "member"}, htmx=False)
    assert without_js.status_code == 409 and "last owner" in text(without_js)


def test_change_role_and_remove_a_member(console_client, session):
    org = make_org()
    owner = make_member(org, role="owner")
    other = make_member(org, role="member", email="other@example.test")
    their_session = ConsoleSession(user_id=other.user_id, org_id=org.id)
    session.add(their_session)
    session.commit()
    client = console_client(owner)

    changed = post(client, f"{PAGE}/{other.id}/role", {"role": "operator"})
    assert changed.status_code == 200 and "other@example.test is now operator" in text(changed)
    session.expire_all()
    assert session.get(Membership, other.id).role == "operator"

    removed = post(client, f"{PAGE}/{other.id}/remove")
    assert removed.status_code == 200 and "Removed other@example.test" in text(removed)
    session.expire_all()
    assert session.get(Membership, other.id) is None
    assert session.get(ConsoleSession, their_session.id).revoked_at is not None


def test_a_removed_member_is_signed_out_of_the_console(console_client):
    org = make_org()
    owner = make_member(org, role="owner")
    operator = make_member(org, role="operator")
    owner_client, operator_client = console_client(owner), console_client(operator)
    assert operator_client.get(PAGE).status_code == 200
    post(owner_client, f"{PAGE}/{operator.id}/remove")
    response = operator_client.get(PAGE)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_revoke_an_invitation_from_the_console(console_client, session):
    client = console_client(make_member(role="owner"))
    post(client, PAGE, {"email": "gone@example.test", "role": "member"})
    invitation = session.scalar(sa.select(Invitation).where(
        Invitation.email == "gone@example.test"))
    response = post(client, f"{PAGE}/{invitation.id}/remove")
    assert "Revoked the invitation for gone@example.test" in text(response)
    assert f"invitation={invitation.id}" not in text(response)


def test_changing_your_own_membership_reloads_the_page(console_client):
    org = make_org()
    owner = make_member(org, role="owner")
    make_member(org, role="owner")
    client = console_client(owner)
    response = post(client, f"{PAGE}/{owner.id}/role", {"role": "operator"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == PAGE
    assert "Invite someone" not in text(client.get(PAGE))  # now an operator


def test_posts_need_the_csrf_token(console_client, session):
    client = console_client(make_member(role="owner"))
    response = client.post(PAGE, data={"email": "x@example.test", "role": "member"},
                           headers=HX)
    assert response.status_code == 403
    assert session.scalar(sa.select(Invitation).where(
        Invitation.email == "x@example.test")) is None


def test_past_due_hides_invites_but_removal_still_works(console_client, session):
    org = make_org()
    owner = make_member(org, role="owner")
    member = make_member(org, role="member")
    client = console_client(owner)
    org.billing_posture = "past_due"
    session.commit()
    html = text(client.get(PAGE))
    assert 'hx-post="/settings/members"' not in html and "<select" not in html
    assert "paused until billing is active" in html
    refused = post(client, PAGE, {"email": "late@example.test", "role": "member"})
    assert refused.status_code == 423
    assert post(client, f"{PAGE}/{member.id}/remove").status_code == 200


def test_an_invited_person_joins_by_signing_in(client, console_client, session):
    """The whole loop: invite in the console, then the real sign-in flow claims it."""
    from tests.support.signin import sign_in
    org = make_org()
    post(console_client(make_member(org, role="owner")), PAGE,
         {"email": "joiner@example.test", "role": "operator"})
    done = sign_in(client, "Joiner@Example.test", next_path=PAGE)
    assert done.status_code == 302 and done.headers["Location"] == PAGE
    membership = session.scalar(sa.select(Membership).where(Membership.org_id == org.id,
                                                            Membership.role == "operator"))
    assert membership.user.email == "joiner@example.test"
    assert "joiner@example.test" in text(client.get(PAGE))  # operators hold members:read
    invitation = session.scalar(sa.select(Invitation).where(Invitation.org_id == org.id))
    assert invitation.accepted_user_id == membership.user_id
