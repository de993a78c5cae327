"""Console: Settings → Secrets and Settings → Credentials, signed in for real."""

from __future__ import annotations

import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.secrets import services
from evershell.secrets.models import Credential, Secret
from tests.factories import make_member
from tests.secrets.factories import make_credential, make_secret

SECRETS, CREDENTIALS = "/settings/secrets", "/settings/credentials"
HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, path, data=None, htmx=True):
    headers = {**(HX if htmx else {}), "X-CSRF-Token": client.csrf_token}
    return client.post(path, data=data or {}, headers=headers)


# -- secrets -----------------------------------------------------------------------------

def test_owner_sees_secrets_as_set_with_every_control(console_client, owner):
    secret = make_secret(owner, "DEPLOY_TOKEN", "console-hidden-value")
    page = console_client(owner).get(SECRETS)
    html = text(page)
    assert page.status_code == 200 and "<html" in html
    assert "DEPLOY_TOKEN" in html and "never rotated" in html
    assert "console-hidden-value" not in html
    assert 'hx-post="/settings/secrets"' in html and 'type="password"' in html
    assert 'autocomplete="off"' in html and 'name="csrf_token"' in html
    assert f"/settings/secrets/{secret.id}/rotate" in html and "hx-confirm=" in html


def test_create_through_the_console_never_echoes_the_value(console_client, session, owner):
    client = console_client(owner)
    response = post(client, SECRETS, {"name": "NEW_ONE", "value": "typed-in-value",
                                      "description": "From the console"})
    html = text(response)
    assert response.status_code == 200 and "<html" not in html
    assert "Saved secret NEW_ONE" in html and "typed-in-value" not in html
    secret = session.scalar(sa.select(Secret).where(Secret.name == "NEW_ONE"))
    assert services.secret_values(owner.org_id, ["NEW_ONE"]) == {"NEW_ONE": "typed-in-value"}
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == secret.id))
    assert entry.action == "secret.create" and entry.credential_shape == "cookie"


def test_a_refused_create_keeps_the_name_but_not_the_value(console_client, owner):
    make_secret(owner, "TAKEN")
    client = console_client(owner)
    bad = post(client, SECRETS, {"name": "lower", "value": "typed-once-value"})
    assert bad.status_code == 200 and "upper-case letters" in text(bad)
    assert 'value="lower"' in text(bad) and "typed-once-value" not in text(bad)
    assert 'aria-invalid="true"' in text(bad)
    taken = post(client, SECRETS, {"name": "TAKEN", "value": "typed-once-value"})
    assert "already exists" in text(taken) and "typed-once-value" not in text(taken)
    without_js = post(client, SECRETS, {"name": "TAKEN", "value": "x"}, htmx=False)
    assert without_js.status_code == 409 and "<html" in text(without_js)


def test_rotate_through_a_dialog(console_client, session, owner):
    secret = make_secret(owner, "ROTATED", "before-rotation")
    client = console_client(owner)
    dialog = client.get(f"{SECRETS}/{secret.id}/rotate", headers=HX)
    assert "<dialog" in text(dialog) and "data-show-modal" in text(dialog)
    assert 'type="password"' in text(dialog) and "before-rotation" not in text(dialog)
    no_js = client.get(f"{SECRETS}/{secret.id}/rotate")
    assert "<html" in text(no_js) and "Rotate ROTATED" in text(no_js)
    empty = post(client, f"{SECRETS}/{secret.id}/rotate", {"value": ""})
    assert "<dialog" in text(empty) and "Must not be empty." in text(empty)
    done = post(client, f"{SECRETS}/{secret.id}/rotate", {"value": "after-rotation"})
    assert "Rotated ROTATED" in text(done) and "after-rotation" not in text(done)
    assert "last rotated" in text(done) and "<dialog" not in text(done)
    assert services.secret_values(owner.org_id, ["ROTATED"]) == {"ROTATED": "after-rotation"}


def test_delete_through_the_console(console_client, session, owner):
    secret = make_secret(owner, "DOOMED")
    response = post(console_client(owner), f"{SECRETS}/{secret.id}/delete")
    assert "Deleted secret DOOMED" in text(response)
    assert session.get(Secret, secret.id) is None
    missing = post(console_client(owner), f"{SECRETS}/{secret.id}/delete")
    assert "was not found" in text(missing)


def test_members_get_no_secrets_link_and_a_403_page(console_client, org, owner):
    member = make_member(org, role="member")
    client = console_client(member)
    assert 'href="/settings/secrets"' not in text(client.get(CREDENTIALS))
    response = client.get(SECRETS)
    assert response.status_code == 403 and "<html" in text(response)


def test_billing_pause_hides_create_and_rotate_but_keeps_delete(console_client, session, org,
                                                                 owner):
    secret = make_secret(owner)
    org.billing_posture = "past_due"
    session.commit()
    html = text(console_client(owner).get(SECRETS))
    assert "paused until billing is active" in html
    assert f"{secret.id}/rotate" not in html and f"{secret.id}/delete" in html


def test_signed_out_people_go_to_sign_in(client):
    for path in (SECRETS, CREDENTIALS):
        response = client.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


# -- credentials -------------------------------------------------------------------------

def test_a_member_sees_only_their_own_and_cannot_choose_org_wide(console_client, org, owner):
    member = make_member(org, role="member", email="mem@example.test")
    make_credential(member, "MINE")
    make_credential(owner, "OWNERS_OWN")
    make_credential(owner, "ORG_WIDE", scope="org")
    html = text(console_client(member).get(CREDENTIALS))
    assert "MINE" in html and "OWNERS_OWN" not in html and "ORG_WIDE" not in html
    assert 'name="scope" value="user"' in html and "Org-wide</option>" not in html
    assert "Your credentials" in html


def test_the_owner_sees_everyone_and_whose_it_is(console_client, org, owner):
    member = make_member(org, role="member", email="mem@example.test")
    theirs = make_credential(member, "THEIRS")
    make_credential(owner, "ORG_WIDE", scope="org")
    html = text(console_client(owner).get(CREDENTIALS))
    assert "THEIRS" in html and "mem@example.test" in html and "org-wide" in html
    assert "Org-wide</option>" in html
    assert f"/settings/credentials/{theirs.id}/delete" in html


def test_create_each_kind_and_never_echo_material(console_client, session, org):
    member = make_member(org, role="member")
    client = console_client(member)
    fields = client.get(f"{CREDENTIALS}/fields", query_string={"kind": "username_password"},
                        headers=HX)
    assert 'name="username"' in text(fields) and 'name="password"' in text(fields)
    assert 'name="token"' not in text(fields)
    response = post(client, CREDENTIALS, {"name": "DB", "kind": "username_password",
                                          "username": "app", "password": "console-pass-1",
                                          "token": "ignored-other-kind"})
    assert "Saved credential DB" in text(response)
    assert "console-pass-1" not in text(response)
    row = session.scalar(sa.select(Credential).where(Credential.name == "DB"))
    assert row.owner_user_id == member.user_id and row.fields == ["password", "username"]


def test_refused_material_comes_back_empty_with_the_reason(console_client, org):
    client = console_client(make_member(org, role="member"))
    response = post(client, CREDENTIALS, {"name": "SSH", "kind": "ssh_key",
                                          "private_key": "not-a-key-at-all-secretish"})
    html = text(response)
    assert "Paste the whole private key" in html and "not-a-key-at-all-secretish" not in html
    assert 'value="SSH"' in html and "<textarea" in html
    org_wide = post(client, CREDENTIALS, {"name": "X", "kind": "token", "token": "t",
                                          "scope": "org"})
    assert "credentials:write" in text(org_wide)


def test_rotate_and_delete_a_credential(console_client, session, org):
    member = make_member(org, role="member")
    credential = make_credential(member, "ROTATE", material={"token": "first-token"})
    client = console_client(member)
    dialog = client.get(f"{CREDENTIALS}/{credential.id}/rotate", headers=HX)
    assert "<dialog" in text(dialog) and 'name="token"' in text(dialog)
    done = post(client, f"{CREDENTIALS}/{credential.id}/rotate", {"token": "second-token"})
    assert "Rotated ROTATE" in text(done) and "second-token" not in text(done)
    session.expire_all()
    assert session.get(Credential, credential.id).last_rotated_at is not None
    gone = post(client, f"{CREDENTIALS}/{credential.id}/delete")
    assert "Deleted credential ROTATE" in text(gone)


def test_a_member_cannot_touch_anothers_credential_from_the_console(console_client, session,
                                                                    org, owner):
    theirs = make_credential(owner, "OWNERS")
    client = console_client(make_member(org, role="member"))
    assert client.get(f"{CREDENTIALS}/{theirs.id}/rotate").status_code == 403
    refused = post(client, f"{CREDENTIALS}/{theirs.id}/delete")
    assert "belongs to another member" in text(refused)
    assert session.get(Credential, theirs.id) is not None
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert entry.action == "credential.delete" and entry.target_id == theirs.id
