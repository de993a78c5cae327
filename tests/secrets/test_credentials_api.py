"""/v1/credentials: kinds and their material, personal (``:own``) versus org-wide,
name rules, rotation, deletion; every error code a caller can hit."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from evershell.audit.models import AuditEntry
from evershell.secrets import crypto
from evershell.secrets.models import Credential
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.secrets.factories import make_credential

URL = "/v1/credentials"


def error(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def fields(response) -> dict:
    return response.get_json()["error"]["details"]["fields"]


def create(client, headers, **body):
    body = {"name": "GITHUB", "kind": "token", "material": {"token": "ghp_t0ken"}} | body
    return client.post(URL, json=body, headers=headers)


def private_key(passphrase: bytes | None = None, fmt=serialization.PrivateFormat.OpenSSH) -> str:
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else \
        serialization.NoEncryption()
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, fmt, encryption).decode()


def stored_material(session, credential_id: str) -> dict:
    row = session.get(Credential, credential_id)
    return json.loads(crypto.decrypt_text(row.sealed, row.org_id, row.id))


@pytest.fixture
def member(org):
    return make_member(org, role="member", email="member@example.test")


@pytest.fixture
def member_headers(member):
    return bearer(make_api_key(member))


# -- kinds and material ------------------------------------------------------------------

@pytest.mark.parametrize("kind, material", [
    ("token", {"token": "ghp_abcdef123456"}),
    ("username_password", {"username": "deploy", "password": "correct horse battery"}),
    ("ssh_key", {"private_key": private_key()}),
    ("ssh_key", {"private_key": private_key(fmt=serialization.PrivateFormat.PKCS8)}),
    ("ssh_key", {"private_key": private_key(b"open sesame",
                                            fmt=serialization.PrivateFormat.PKCS8),
                 "passphrase": "open sesame"}),
])
def test_each_kind_stores_its_material_encrypted_and_answers_metadata(
        client, session, member, member_headers, kind, material):
    response = create(client, member_headers, kind=kind, material=material)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == kind and body["scope"] == "user"
    assert body["owner_user_id"] == member.user_id == body["created_by_user_id"]
    assert body["fields"] == sorted(material)
    text = response.get_data(as_text=True)
    row = session.get(Credential, body["id"])
    for value in material.values():
        assert value not in text
        assert value.encode() not in row.ciphertext
    assert stored_material(session, body["id"]) == material


@pytest.mark.parametrize("kind, material, field", [
    ("token", {}, "token"),
    ("token", {"token": ""}, "token"),
    ("token", {"token": "ok", "password": "extra"}, "password"),
    ("username_password", {"username": "only"}, "password"),
    ("username_password", {"password": "only"}, "username"),
    ("username_password", {"username": "u", "password": "p\x00"}, "password"),
    ("ssh_key", {"private_key": "ssh-ed25519 AAAAC3Nza a public key"}, "private_key"),
    ("ssh_key", {"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n"
                                "-----END OPENSSH PRIVATE KEY-----"}, "private_key"),
    ("ssh_key", {"private_key": private_key(b"pw", serialization.PrivateFormat.PKCS8)},
     "private_key"),  # protected, no passphrase given
    ("ssh_key", {"private_key": private_key(b"pw", serialization.PrivateFormat.PKCS8),
                 "passphrase": "wrong"}, "private_key"),
    ("ssh_key", {"private_key": private_key(), "passphrase": "not needed"}, "private_key"),
    ("token", {"token": "x" * (64 * 1024 + 1)}, "token"),
])
def test_material_must_fit_the_kind(client, member_headers, kind, material, field):
    response = create(client, member_headers, kind=kind, material=material)
    assert error(response) == (400, "validation_error")
    assert field in fields(response)["material"]
    for value in material.values():
        if len(value) > 3:
            assert value not in response.get_data(as_text=True)


@pytest.mark.parametrize("body, field", [
    ({"kind": "carrier_pigeon"}, "kind"),
    ({"scope": "galaxy"}, "scope"),
    ({"name": "github"}, "name"),
    ({"name": "HOME"}, "name"),
    ({"material": "just a string"}, "material"),
    ({"material": {"token": 42}}, "material"),
])
def test_bad_create_bodies_are_400(client, member_headers, body, field):
    response = create(client, member_headers, **body)
    assert error(response) == (400, "validation_error")
    assert field in fields(response)


# -- personal versus org-wide -------------------------------------------------------------

def test_only_unscoped_writers_create_org_wide_credentials(client, session, headers,
                                                           member_headers):
    denied = create(client, member_headers, scope="org")
    assert error(denied) == (403, "permission_denied")
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert entry.action == "credential.create"
    made = create(client, headers, scope="org")
    assert made.status_code == 201
    assert made.get_json()["scope"] == "org" and made.get_json()["owner_user_id"] is None


def test_own_scopes_see_only_their_own_credentials(client, org, owner, member, member_headers):
    mine = make_credential(member, "MINE")
    other = make_credential(make_member(org, role="member"), "THEIRS")
    org_wide = make_credential(owner, "SHARED", scope="org")
    listed = client.get(URL, headers=member_headers).get_json()["data"]
    assert [c["id"] for c in listed] == [mine.id]
    assert client.get(f"{URL}/{mine.id}", headers=member_headers).status_code == 200
    for credential in (other, org_wide):
        for method, body in (("GET", None), ("PATCH", {"description": "x"}),
                             ("DELETE", None)):
            response = client.open(f"{URL}/{credential.id}", method=method, json=body,
                                   headers=member_headers)
            assert error(response) == (403, "permission_denied"), (method, credential.name)


def test_org_wide_readers_see_every_credential(client, org, owner, headers, member):
    ids = {make_credential(member, "MINE").id, make_credential(owner, "OWNERS").id,
           make_credential(owner, "SHARED", scope="org").id}
    listed = client.get(URL, headers=headers).get_json()["data"]
    assert {c["id"] for c in listed} == ids
    org_only = client.get(URL, query_string={"scope": "org"}, headers=headers).get_json()
    assert [c["name"] for c in org_only["data"]] == ["SHARED"]
    by_name = client.get(URL, query_string={"name": "MINE"}, headers=headers).get_json()
    assert [c["owner_user_id"] for c in by_name["data"]] == [member.user_id]
    by_kind = client.get(URL, query_string={"kind": "ssh_key"}, headers=headers).get_json()
    assert by_kind["data"] == []
    bad = client.get(URL, query_string={"scope": "nope"}, headers=headers)
    assert error(bad) == (400, "validation_error")


def test_owners_may_delete_a_members_credential(client, session, member, headers):
    credential = make_credential(member, "LEFTOVER")
    assert client.delete(f"{URL}/{credential.id}", headers=headers).status_code == 200
    assert session.get(Credential, credential.id) is None
    entry = session.scalar(sa.select(AuditEntry).where(
        AuditEntry.target_id == credential.id, AuditEntry.action == "credential.delete"))
    assert entry.details["owner_user_id"] == member.user_id


def test_operators_manage_only_their_own(client, org, owner):
    operator_headers = bearer(make_api_key(make_member(org, role="operator")))
    shared = make_credential(owner, "SHARED", scope="org")
    assert create(client, operator_headers, name="OPS").status_code == 201
    assert error(create(client, operator_headers, name="OPS2", scope="org")) == \
        (403, "permission_denied")
    assert error(client.get(f"{URL}/{shared.id}", headers=operator_headers)) == \
        (403, "permission_denied")


def test_another_orgs_credential_is_404(client, headers):
    elsewhere = make_credential(make_member(make_org(), role="owner"), "ELSEWHERE",
                                scope="org")
    assert client.get(URL, headers=headers).get_json()["data"] == []
    for method, body in (("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)):
        response = client.open(f"{URL}/{elsewhere.id}", method=method, json=body,
                               headers=headers)
        assert error(response) == (404, "credential_not_found"), method


def test_callers_without_credential_scopes_are_403(client, owner):
    tasks_only = bearer(make_api_key(owner, template="tasks_only"))
    assert error(client.get(URL, headers=tasks_only)) == (403, "permission_denied")
    read_only = bearer(make_api_key(owner, template="read_only"))
    assert client.get(URL, headers=read_only).status_code == 200
    assert error(create(client, read_only)) == (403, "permission_denied")


# -- names -------------------------------------------------------------------------------

def test_names_are_unique_per_owner_and_among_org_wide_ones(client, org, headers,
                                                            member_headers):
    assert create(client, member_headers, name="GIT").status_code == 201
    assert error(create(client, member_headers, name="GIT")) == (409, "name_taken")
    assert create(client, headers, name="GIT").status_code == 201  # the owner's own
    assert create(client, headers, name="GIT", scope="org").status_code == 201
    assert error(create(client, headers, name="GIT", scope="org")) == (409, "name_taken")
    other = bearer(make_api_key(make_member(org, role="member")))
    assert create(client, other, name="GIT").status_code == 201


def test_rename_checks_the_owners_names(client, member, member_headers):
    first = make_credential(member, "FIRST")
    make_credential(member, "SECOND")
    taken = client.patch(f"{URL}/{first.id}", json={"name": "SECOND"}, headers=member_headers)
    assert error(taken) == (409, "name_taken")
    renamed = client.patch(f"{URL}/{first.id}", json={"name": "THIRD"}, headers=member_headers)
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "THIRD"
    bad = client.patch(f"{URL}/{first.id}", json={"name": "third"}, headers=member_headers)
    assert error(bad) == (400, "validation_error")


# -- rotation ----------------------------------------------------------------------------

def test_patch_material_rotates(client, session, member, member_headers):
    credential = make_credential(member, "DEPLOY", kind="username_password",
                                 material={"username": "bot", "password": "old-password"})
    response = client.patch(f"{URL}/{credential.id}", headers=member_headers, json={
        "material": {"username": "bot", "password": "new-password"},
        "description": "Deploy bot"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["last_rotated_at"] is not None and body["description"] == "Deploy bot"
    assert "new-password" not in response.get_data(as_text=True)
    assert stored_material(session, credential.id)["password"] == "new-password"
    entry = session.scalar(sa.select(AuditEntry).where(
        AuditEntry.target_id == credential.id).order_by(AuditEntry.id.desc()))
    assert entry.action == "credential.rotate" and "new-password" not in str(entry.details)


def test_rotation_needs_the_whole_material_of_the_kind(client, member, member_headers):
    credential = make_credential(member, "PAIR", kind="username_password",
                                 material={"username": "u", "password": "p"})
    partial = client.patch(f"{URL}/{credential.id}", json={"material": {"password": "p2"}},
                           headers=member_headers)
    assert error(partial) == (400, "validation_error")
    assert "username" in fields(partial)["material"]
    other_kind = client.patch(f"{URL}/{credential.id}", json={"material": {"token": "t"}},
                              headers=member_headers)
    assert error(other_kind) == (400, "validation_error")
    kind = client.patch(f"{URL}/{credential.id}", json={"kind": "token"},
                        headers=member_headers)
    assert error(kind) == (400, "validation_error")
    empty = client.patch(f"{URL}/{credential.id}", json={}, headers=member_headers)
    assert error(empty) == (400, "validation_error")


def test_billing_blocks_create_and_rotate_but_not_delete(client, session, org, member,
                                                         member_headers):
    credential = make_credential(member)
    org.billing_posture = "decommissioning"
    session.commit()
    assert error(create(client, member_headers, name="LATER")) == (423, "billing_inactive")
    rotate = client.patch(f"{URL}/{credential.id}", json={"material": {"token": "t2"}},
                          headers=member_headers)
    assert error(rotate) == (423, "billing_inactive")
    assert client.delete(f"{URL}/{credential.id}", headers=member_headers).status_code == 200


def test_the_database_enforces_names_when_two_creates_race(client, monkeypatch, headers,
                                                           member_headers):
    """Both requests pass the friendly check before either commits; the unique
    constraint and the org-wide partial index turn the loser into 409, not 500."""
    from evershell.secrets import credentials
    monkeypatch.setattr(credentials, "_name_free", lambda *args, **kwargs: None)
    assert create(client, member_headers, name="RACE").status_code == 201
    assert error(create(client, member_headers, name="RACE")) == (409, "name_taken")
    assert create(client, headers, name="RACE", scope="org").status_code == 201
    assert error(create(client, headers, name="RACE", scope="org")) == (409, "name_taken")
    assert create(client, headers, name="RACE").status_code == 201  # the owner's own
