"""API keys: format, show-once secret, hashing, templates, intersection with the
creator's role, revocation, expiry, last_used_at, verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from evershell.apikeys import keys
from evershell.apikeys.models import ApiKey
from evershell.audit.models import AuditEntry
from tests.factories import bearer, make_api_key, make_member, make_org


@pytest.fixture
def owner():
    return make_member(role="owner")


@pytest.fixture
def owner_headers(owner):
    return bearer(make_api_key(owner))


def create(client, headers, **body):
    return client.post("/v1/api-keys", json=body, headers=headers)


def test_key_format_is_recognisable_and_checksummed():
    secret = keys.generate()
    assert secret.startswith("sk_") and len(secret) == keys.KEY_LENGTH
    assert keys.well_formed(secret)
    typo = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]
    assert not keys.well_formed(typo)


def test_create_returns_the_secret_once_and_stores_only_a_hash(client, session, owner_headers):
    response = create(client, owner_headers, name="ci", template="read_only")
    assert response.status_code == 201
    body = response.get_json()
    secret = body["key"]
    assert keys.well_formed(secret)
    assert body["prefix"].endswith(secret[-4:])
    row = session.get(ApiKey, body["id"])
    assert secret not in (row.key_hash, row.last_four) and len(row.key_hash) == 64
    listed = client.get("/v1/api-keys", headers=owner_headers).get_data(as_text=True)
    fetched = client.get(f"/v1/api-keys/{body['id']}", headers=owner_headers)
    assert secret not in listed and secret not in fetched.get_data(as_text=True)
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == body["id"]))
    assert entry.action == "api_key.create" and secret not in str(entry.details)


def test_templates_grant_what_spec_says(client, owner_headers):
    templates = {t["name"]: set(t["scopes"]) for t in
                 client.get("/v1/api-keys/templates", headers=owner_headers).get_json()["data"]}
    assert templates["tasks_only"] == {"roles:read", "workspace:read:own",
                                       "workspace:write:own", "tasks:read:own",
                                       "tasks:write:own"}
    assert all(s.split(":")[1] == "read" for s in templates["read_only"])
    assert "tasks:write" not in templates["full"]


def test_read_only_key_cannot_write(client, owner_headers):
    secret = create(client, owner_headers, name="ro", template="read_only").get_json()["key"]
    assert client.get("/v1/api-keys", headers=bearer(secret)).status_code == 200
    denied = create(client, bearer(secret), name="x", template="full")
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "permission_denied"


def test_explicit_scopes_must_be_a_subset_of_the_creators(client):
    member_headers = bearer(make_api_key(make_member(role="member")))
    response = create(client, member_headers, name="greedy", scopes=["members:write"])
    assert response.status_code == 403
    ok = create(client, member_headers, name="mine", scopes=["api_keys:read:own"])
    assert ok.status_code == 201 and ok.get_json()["scopes"] == ["api_keys:read:own"]


@pytest.mark.parametrize("body, field", [
    ({"template": "full"}, "name"),
    ({"name": "x"}, "template"),
    ({"name": "x", "template": "full", "scopes": ["org:read"]}, "template"),
    ({"name": "x", "template": "god"}, "template"),
    ({"name": "x", "scopes": ["nope:read"]}, "scopes"),
    ({"name": "x", "template": "full", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"name": "x", "template": "full", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
])
def test_bad_create_bodies_are_400_with_the_field(client, owner_headers, body, field):
    response = create(client, owner_headers, **body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in str(error["details"]["fields"])


def test_effective_scopes_follow_the_creators_current_role(client, session):
    org = make_org()
    make_member(org, role="owner")
    operator = make_member(org, role="operator")
    secret = make_api_key(operator, template="full")
    assert "members:read" in client.get("/v1/me", headers=bearer(secret)).get_json()["scopes"]
    operator.role = "member"
    session.commit()
    me = client.get("/v1/me", headers=bearer(secret)).get_json()
    assert "members:read" not in me["scopes"] and me["role"] == "member"
    session.delete(operator)
    session.commit()
    assert client.get("/v1/me", headers=bearer(secret)).status_code == 401


def test_revoked_and_expired_keys_fail_at_once(client, session, owner, owner_headers):
    body = create(client, owner_headers, name="temp", template="full").get_json()
    assert client.get("/v1/me", headers=bearer(body["key"])).status_code == 200
    revoked = client.delete(f"/v1/api-keys/{body['id']}", headers=owner_headers)
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    assert client.get("/v1/me", headers=bearer(body["key"])).status_code == 401
    soon = create(client, owner_headers, name="short", template="full",
                  expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()).get_json()
    session.get(ApiKey, soon["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    assert client.get("/v1/me", headers=bearer(soon["key"])).status_code == 401


def test_malformed_key_fails_before_any_lookup(client):
    response = client.get("/v1/me", headers=bearer("sk_" + "a" * 38))
    assert response.status_code == 401


def test_a_read_writes_nothing_and_uses_are_flushed_at_most_once_a_minute(client, session,
                                                                          owner):
    from evershell.apikeys.services import flush_last_used
    secret = make_api_key(owner, name="usage")
    row = session.scalar(sa.select(ApiKey).where(ApiKey.name == "usage"))
    assert row.last_used_at is None
    assert client.get("/v1/me", headers=bearer(secret)).status_code == 200
    session.expire_all()
    assert session.get(ApiKey, row.id).last_used_at is None  # the read committed no write
    shown = client.get(f"/v1/api-keys/{row.id}", headers=bearer(secret)).get_json()
    assert shown["last_used_at"] is not None  # recorded in Redis, shown at once
    assert session.get(ApiKey, row.id).last_used_at is None
    assert flush_last_used() == 1
    session.expire_all()
    first = session.get(ApiKey, row.id).last_used_at
    assert first is not None
    client.get("/v1/me", headers=bearer(secret))
    assert flush_last_used() == 0  # within the minute: nothing written
    session.expire_all()
    assert session.get(ApiKey, row.id).last_used_at == first
    session.get(ApiKey, row.id).last_used_at = first - timedelta(minutes=2)
    session.commit()
    client.get("/v1/me", headers=bearer(secret))
    assert flush_last_used() == 1
    session.expire_all()
    assert session.get(ApiKey, row.id).last_used_at > first - timedelta(minutes=2)


def test_members_see_and_revoke_only_their_own_keys(client, session):
    org = make_org()
    owner = make_member(org, role="owner")
    alice, bob = make_member(org, role="member"), make_member(org, role="member")
    alice_headers = bearer(make_api_key(alice, name="alice"))
    make_api_key(bob, name="bob")
    bob_key = session.scalar(sa.select(ApiKey).where(ApiKey.name == "bob"))
    names = {k["name"] for k in
             client.get("/v1/api-keys", headers=alice_headers).get_json()["data"]}
    assert names == {"alice"}
    assert client.get(f"/v1/api-keys/{bob_key.id}", headers=alice_headers).status_code == 403
    denied = client.delete(f"/v1/api-keys/{bob_key.id}", headers=alice_headers)
    assert denied.status_code == 403
    audit = session.scalar(sa.select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert audit.action == "api_key.revoke" and audit.target_id == bob_key.id
    owner_headers = bearer(make_api_key(owner, name="owner"))
    assert client.delete(f"/v1/api-keys/{bob_key.id}", headers=owner_headers).status_code == 200


def test_verify_reports_validity_owner_and_scopes(client, owner, owner_headers):
    secret = make_api_key(owner, template="read_only", name="probe")
    result = client.post("/v1/api-keys/verify", json={"key": secret},
                         headers=owner_headers).get_json()
    assert result["valid"] and result["status"] == "active"
    assert result["created_by_user_id"] == owner.user_id
    assert all(s.split(":")[1] == "read" for s in result["scopes"])
    unknown = client.post("/v1/api-keys/verify", json={"key": keys.generate()},
                          headers=owner_headers).get_json()
    assert unknown == {"valid": False, "status": "unknown"}


def test_list_pages_with_a_cursor(client, owner, owner_headers):
    for n in range(5):
        make_api_key(owner, name=f"k{n}")
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/api-keys", query_string=query, headers=owner_headers).get_json()
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen, reverse=True)
    bad = client.get("/v1/api-keys?cursor=!!", headers=owner_headers)
    assert bad.status_code == 400


def test_query_string_keys_are_refused_on_non_sse_routes(client, owner):
    secret = make_api_key(owner)
    response = client.get(f"/v1/me?api_key={secret}")
    assert response.status_code == 401
