"""/v1/memberships: list, invite, change role, remove; every documented error code."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evershell.access.models import ConsoleSession, Invitation, Membership
from evershell.audit.models import AuditEntry
from tests.factories import bearer, make_api_key, make_member, make_org

URL = "/v1/memberships"


@pytest.fixture
def org():
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email="owner@example.test")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner))


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def audit_actions(session, target_id: str) -> list[str]:
    return list(session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.target_id == target_id).order_by(AuditEntry.id)))


def invite(client, headers, email="new@example.test", role="member"):
    return client.post(URL, json={"email": email, "role": role}, headers=headers)


# -- list --------------------------------------------------------------------------------

def test_list_shows_members_with_their_user_and_role(client, org, owner, headers):
    operator = make_member(org, role="operator", email="op@example.test")
    make_member(make_org(), role="owner", email="elsewhere@example.test")
    body = client.get(URL, headers=headers).get_json()
    assert body["next_cursor"] is None
    by_id = {item["id"]: item for item in body["data"]}
    assert set(by_id) == {owner.id, operator.id}
    assert by_id[operator.id]["email"] == "op@example.test"
    assert by_id[operator.id]["role"] == "operator"
    assert by_id[operator.id]["user_id"] == operator.user_id
    assert by_id[operator.id]["status"] == "active"
    assert by_id[operator.id]["created_at"]


def test_list_merges_members_and_invitations_and_pages_without_gaps(client, org, headers):
    made = []
    for n in range(3):
        made.append(make_member(org, role="member").id)
        made.append(invite(client, headers, email=f"inv{n}@example.test").get_json()["id"])
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, query_string=query, headers=headers).get_json()
        assert len(body["data"]) <= 2
        seen += [item["id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7  # six made + the owner
    assert seen[:6] == list(reversed(made))  # newest first, across both kinds


def test_list_filters_by_status(client, org, owner, headers):
    inv_id = invite(client, headers).get_json()["id"]
    active = client.get(URL, query_string={"status": "active"}, headers=headers).get_json()
    invited = client.get(URL, query_string={"status": "invited"}, headers=headers).get_json()
    assert [i["id"] for i in active["data"]] == [owner.id]
    assert [i["id"] for i in invited["data"]] == [inv_id]
    assert invited["data"][0]["status"] == "invited"


@pytest.mark.parametrize("query, field", [
    ({"status": "gone"}, "status"), ({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
    ({"cursor": "bm9wZQ"}, "cursor"), ({"cursor": "a2V5XzAxSjlaWlpa"}, "cursor"),
])
def test_list_rejects_bad_query_arguments(client, headers, query, field):
    response = client.get(URL, query_string=query, headers=headers)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert field in response.get_json()["error"]["details"]["fields"]


def test_member_role_cannot_list_members(client, org):
    member_headers = bearer(make_api_key(make_member(org, role="member")))
    response = client.get(URL, headers=member_headers)
    assert response.status_code == 403 and error_code(response) == "permission_denied"


def test_operator_can_list_but_not_write(client, org, owner):
    operator_headers = bearer(make_api_key(make_member(org, role="operator")))
    assert client.get(URL, headers=operator_headers).status_code == 200
    for response in (
        invite(client, operator_headers),
        client.patch(f"{URL}/{owner.id}", json={"role": "member"}, headers=operator_headers),
        client.delete(f"{URL}/{owner.id}", headers=operator_headers),
    ):
        assert response.status_code == 403 and error_code(response) == "permission_denied"


def test_unauthenticated_is_401(client):
    response = client.get(URL)
    assert response.status_code == 401 and error_code(response) == "unauthenticated"


# -- invite ------------------------------------------------------------------------------

def test_invite_returns_the_invitation_with_its_link(app, client, session, org, owner,
                                                     headers):
    response = invite(client, headers, email="  New.Person@Example.TEST ", role="operator")
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("inv_")
    assert body["email"] == "new.person@example.test"
    assert body["role"] == "operator" and body["status"] == "invited"
    assert body["user_id"] is None and body["invited_by_user_id"] == owner.user_id
    assert body["invite_url"] == f"{app.config['PUBLIC_URL']}/sign-in?invitation={body['id']}"
    invitation = session.get(Invitation, body["id"])
    lifetime = invitation.expires_at - invitation.created_at
    assert 6.9 < lifetime.total_seconds() / 86400 <= 7
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == body["id"]))
    assert entry.action == "member.invite" and entry.actor_user_id == owner.user_id
    assert entry.details == {"email": "new.person@example.test", "role": "operator"}


@pytest.mark.parametrize("body, field", [
    ({"role": "member"}, "email"),
    ({"email": "", "role": "member"}, "email"),
    ({"email": "not-an-email", "role": "member"}, "email"),
    ({"email": "a@b.test"}, "role"),
    ({"email": "a@b.test", "role": "admin"}, "role"),
    ({"email": 7, "role": "member"}, "email"),
])
def test_invite_validates_each_field(client, headers, body, field):
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert list(response.get_json()["error"]["details"]["fields"]) == [field]


def test_invite_with_a_body_that_is_not_json_is_400(client, headers):
    response = client.post(URL, data="{", headers={**headers,
                                                   "Content-Type": "application/json"})
    assert response.status_code == 400 and error_code(response) == "validation_error"


def test_inviting_a_member_is_409_already_member(client, org, headers):
    make_member(org, role="member", email="taken@example.test")
    response = invite(client, headers, email="TAKEN@example.test")
    assert response.status_code == 409 and error_code(response) == "already_member"


def test_a_member_of_another_org_can_be_invited(client, headers):
    make_member(make_org(), email="roams@example.test")
    assert invite(client, headers, email="roams@example.test").status_code == 201


def test_reinviting_replaces_the_pending_invitation(client, session, headers):
    first = invite(client, headers, email="twice@example.test", role="member").get_json()
    second = invite(client, headers, email="twice@example.test", role="operator").get_json()
    assert second["id"] != first["id"]
    assert session.get(Invitation, first["id"]).revoked_at is not None
    invited = client.get(URL, query_string={"status": "invited"}, headers=headers).get_json()
    assert [(i["id"], i["role"]) for i in invited["data"]] == [(second["id"], "operator")]
    assert audit_actions(session, first["id"]) == ["member.invite", "invitation.revoke"]


# -- change role -------------------------------------------------------------------------

def test_change_role_of_a_member_narrows_their_keys_at_once(client, session, org, headers):
    operator = make_member(org, role="operator")
    operator_key = bearer(make_api_key(operator))
    assert client.get(URL, headers=operator_key).status_code == 200
    response = client.patch(f"{URL}/{operator.id}", json={"role": "member"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["role"] == "member"
    assert client.get(URL, headers=operator_key).status_code == 403
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == operator.id,
                                                       AuditEntry.action == "member.role_change"))
    assert entry.details["role"] == ["operator", "member"]


def test_change_role_of_an_invitation(client, session, headers):
    inv = invite(client, headers, role="member").get_json()
    response = client.patch(f"{URL}/{inv['id']}", json={"role": "owner"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["role"] == "owner"
    assert session.get(Invitation, inv["id"]).role == "owner"
    assert audit_actions(session, inv["id"]) == ["member.invite", "invitation.update"]


@pytest.mark.parametrize("body", [{}, {"role": "root"}, {"role": None}])
def test_change_role_validates_role(client, owner, headers, body):
    response = client.patch(f"{URL}/{owner.id}", json=body, headers=headers)
    assert response.status_code == 400 and error_code(response) == "validation_error"
    assert "role" in response.get_json()["error"]["details"]["fields"]


def test_the_last_owner_cannot_be_demoted(client, session, owner, headers):
    response = client.patch(f"{URL}/{owner.id}", json={"role": "operator"}, headers=headers)
    assert response.status_code == 409 and error_code(response) == "last_owner"
    session.expire_all()
    assert session.get(Membership, owner.id).role == "owner"


def test_an_owner_can_be_demoted_while_another_owner_remains(client, session, org, owner,
                                                             headers):
    second = make_member(org, role="owner")
    response = client.patch(f"{URL}/{owner.id}", json={"role": "member"}, headers=headers)
    assert response.status_code == 200
    # the caller demoted themselves: their key is narrowed at once...
    assert client.get(URL, headers=headers).status_code == 403
    # ...and now the other owner is the last one
    second_headers = bearer(make_api_key(second))
    response = client.patch(f"{URL}/{second.id}", json={"role": "member"},
                            headers=second_headers)
    assert response.status_code == 409 and error_code(response) == "last_owner"


# -- remove ------------------------------------------------------------------------------

def test_removing_a_member_ends_their_sessions_and_keys_at_once(client, session, org,
                                                                headers):
    member = make_member(org, role="operator", email="leaving@example.test")
    their_key = bearer(make_api_key(member))
    console = ConsoleSession(user_id=member.user_id, org_id=org.id)
    session.add(console)
    session.commit()
    assert client.get("/v1/me", headers=their_key).status_code == 200

    response = client.delete(f"{URL}/{member.id}", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == member.id and body["status"] == "removed"
    assert body["email"] == "leaving@example.test"

    denied = client.get("/v1/me", headers=their_key)
    assert denied.status_code == 401 and error_code(denied) == "unauthenticated"
    session.expire_all()
    assert session.get(Membership, member.id) is None
    assert session.get(ConsoleSession, console.id).revoked_at is not None
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "member.remove"))
    assert entry.target_id == member.id
    assert entry.details["email"] == "leaving@example.test" and entry.details["role"] == \
        "operator"
    again = client.delete(f"{URL}/{member.id}", headers=headers)
    assert again.status_code == 404 and error_code(again) == "membership_not_found"


def test_removing_an_invitation_revokes_it(client, session, headers):
    inv = invite(client, headers).get_json()
    response = client.delete(f"{URL}/{inv['id']}", headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert session.get(Invitation, inv["id"]).revoked_at is not None
    assert audit_actions(session, inv["id"]) == ["member.invite", "invitation.revoke"]
    invited = client.get(URL, query_string={"status": "invited"}, headers=headers).get_json()
    assert invited["data"] == []
    again = client.patch(f"{URL}/{inv['id']}", json={"role": "owner"}, headers=headers)
    assert again.status_code == 404 and error_code(again) == "invitation_not_found"


def test_the_last_owner_cannot_be_removed_or_leave(client, session, owner, headers):
    response = client.delete(f"{URL}/{owner.id}", headers=headers)
    assert response.status_code == 409 and error_code(response) == "last_owner"
    assert session.get(Membership, owner.id) is not None
    assert client.get(URL, headers=headers).status_code == 200


def test_an_owner_can_leave_while_another_owner_remains(client, session, org, owner,
                                                        headers):
    make_member(org, role="owner")
    response = client.delete(f"{URL}/{owner.id}", headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "removed"
    assert client.get(URL, headers=headers).status_code == 401


# -- other orgs, unknown ids -------------------------------------------------------------

def test_another_orgs_ids_are_404(client, headers):
    other = make_org()
    other_owner = make_member(other, role="owner")
    other_member = make_member(other, role="member")
    other_inv = invite(client, bearer(make_api_key(other_owner))).get_json()["id"]
    for target, code in ((other_member.id, "membership_not_found"),
                         (other_inv, "invitation_not_found"),
                         ("mem_01J9ZZZZZZZZZZZZZZZZZZZZZZ", "membership_not_found"),
                         ("mem_nonsense", "membership_not_found")):
        patched = client.patch(f"{URL}/{target}", json={"role": "owner"}, headers=headers)
        deleted = client.delete(f"{URL}/{target}", headers=headers)
        for response in (patched, deleted):
            assert response.status_code == 404, (target, response.get_json())
            assert error_code(response) == code


# -- billing -----------------------------------------------------------------------------

def test_past_due_blocks_invites_and_role_changes_but_not_removal(client, session, org,
                                                                  headers):
    member = make_member(org, role="member")
    inv = invite(client, headers).get_json()
    org.billing_posture = "past_due"
    # commit, not flush: requests share the test's session, and the first refused one
    # rolls back whatever was only flushed
    session.commit()
    for response in (invite(client, headers, email="late@example.test"),
                     client.patch(f"{URL}/{member.id}", json={"role": "operator"},
                                  headers=headers)):
        assert response.status_code == 423 and error_code(response) == "billing_inactive"
    assert client.get(URL, headers=headers).status_code == 200
    assert client.delete(f"{URL}/{member.id}", headers=headers).status_code == 200
    assert client.delete(f"{URL}/{inv['id']}", headers=headers).status_code == 200


def test_denied_writes_are_audited(client, session, org, owner):
    operator_headers = bearer(make_api_key(make_member(org, role="operator")))
    client.delete(f"{URL}/{owner.id}", headers=operator_headers)
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert entry.action == "member.remove" and entry.target_id == owner.id


def test_routes_are_documented_with_their_errors(client):
    spec = client.get("/v1/openapi.json").get_json()
    item = spec["paths"]["/v1/memberships/{membership_id}"]
    assert {"200", "404", "409"} <= set(item["patch"]["responses"])
    assert {"200", "404", "409"} <= set(item["delete"]["responses"])
    assert "409" in spec["paths"]["/v1/memberships"]["post"]["responses"]


def test_removed_members_keys_are_revoked_not_revived_by_reinvite(client, session):
    from evershell.access import services as access
    from evershell.apikeys.models import ApiKey
    from tests.factories import bearer, make_api_key, make_member, make_org
    org = make_org()
    owner = make_member(org, role="owner")
    leaver = make_member(org, role="member", email="leaver@example.test")
    secret = make_api_key(leaver)
    owner_headers = bearer(make_api_key(owner))
    assert client.delete(f"/v1/memberships/{leaver.id}", headers=owner_headers).status_code == 200
    assert session.scalar(sa.select(ApiKey.revoked_at).where(
        ApiKey.created_by_user_id == leaver.user_id)) is not None
    access.add_member(org, "leaver@example.test", "member")
    session.commit()
    assert client.get("/v1/me", headers=bearer(secret)).status_code == 401
