"""/v1/secrets: create, list, get, rotate, delete; every rule and error code a caller
can hit; values never come back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.secrets import services
from evershell.secrets.models import Secret
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.secrets.factories import make_secret

URL = "/v1/secrets"


def error(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def fields(response) -> dict:
    return response.get_json()["error"]["details"]["fields"]


def create(client, headers, **body):
    body = {"name": "API_TOKEN", "value": "v4lue-of-the-token"} | body
    return client.post(URL, json=body, headers=headers)


def audit_entries(session, target_id):
    return session.scalars(sa.select(AuditEntry).where(
        AuditEntry.target_id == target_id).order_by(AuditEntry.id)).all()


def test_create_answers_metadata_only_and_stores_ciphertext(client, session, owner, headers):
    response = create(client, headers, name="STRIPE_KEY", value="sk_live_abc123xyz",
                      description="Payments")
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "STRIPE_KEY" and body["description"] == "Payments"
    assert body["value_set"] is True and body["last_rotated_at"] is None
    assert body["created_by_user_id"] == owner.user_id
    assert "value" not in body and "sk_live_abc123xyz" not in response.get_data(as_text=True)
    row = session.get(Secret, body["id"])
    assert b"sk_live_abc123xyz" not in row.ciphertext and row.key_id == "derived"
    assert services.secret_values(row.org_id, ["STRIPE_KEY"]) == {
        "STRIPE_KEY": "sk_live_abc123xyz"}
    [entry] = audit_entries(session, body["id"])
    assert entry.action == "secret.create" and entry.details["name"] == "STRIPE_KEY"


def test_list_and_get_never_show_the_value(client, owner, headers):
    secret = make_secret(owner, "DB_PASSWORD", "hunter2-but-longer")
    listed = client.get(URL, headers=headers)
    fetched = client.get(f"{URL}/{secret.id}", headers=headers)
    assert [s["name"] for s in listed.get_json()["data"]] == ["DB_PASSWORD"]
    assert fetched.get_json()["name"] == "DB_PASSWORD"
    for response in (listed, fetched):
        assert "hunter2-but-longer" not in response.get_data(as_text=True)


def test_list_pages_newest_first_and_filters_by_name(client, owner, headers):
    made = [make_secret(owner, f"S{n}").id for n in range(5)]
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(URL, query_string=query, headers=headers).get_json()
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    named = client.get(URL, query_string={"name": "S3"}, headers=headers).get_json()
    assert [s["id"] for s in named["data"]] == [made[3]]


def test_other_orgs_secrets_are_invisible_and_404(client, headers):
    elsewhere = make_secret(make_member(make_org(), role="owner"), "THEIRS")
    assert client.get(URL, headers=headers).get_json()["data"] == []
    for method, body in (("GET", None), ("PATCH", {"value": "x"}), ("DELETE", None)):
        response = client.open(f"{URL}/{elsewhere.id}", method=method, json=body,
                               headers=headers)
        assert error(response) == (404, "secret_not_found"), method
    assert error(client.get(f"{URL}/sec_nonsense", headers=headers)) == (404, "secret_not_found")


@pytest.mark.parametrize("body, field", [
    ({"name": "lower_case"}, "name"),
    ({"name": "9LIVES"}, "name"),
    ({"name": "WITH-DASH"}, "name"),
    ({"name": "A" * 65}, "name"),
    ({"name": ""}, "name"),
    ({"name": "PATH"}, "name"),
    ({"name": "EVERSHELL_TOKEN"}, "name"),
    ({"value": ""}, "value"),
    ({"value": "nul\x00byte"}, "value"),
    ({"value": "x" * (64 * 1024 + 1)}, "value"),
    ({"value": "é" * (32 * 1024 + 1)}, "value"),  # 64 KiB + 2 bytes in UTF-8
    ({"value": 12345}, "value"),
    ({"description": "d" * 501}, "description"),
    ({"unexpected": "field"}, "unexpected"),
])
def test_bad_create_bodies_are_400_naming_the_field(client, headers, body, field):
    response = create(client, headers, **body)
    assert error(response) == (400, "validation_error")
    assert field in fields(response)


def test_name_and_value_are_required(client, headers):
    response = client.post(URL, json={}, headers=headers)
    assert error(response) == (400, "validation_error")
    assert {"name", "value"} <= set(fields(response))


def test_largest_value_is_accepted(client, headers):
    assert create(client, headers, value="x" * 64 * 1024).status_code == 201


def test_names_are_unique_per_org(client, headers):
    assert create(client, headers, name="SHARED").status_code == 201
    assert error(create(client, headers, name="SHARED")) == (409, "name_taken")
    other_org_headers = bearer(make_api_key(make_member(make_org(), role="owner")))
    assert create(client, other_org_headers, name="SHARED").status_code == 201


def test_patch_rotates_the_value(client, session, owner, headers):
    secret = make_secret(owner, "ROTATE_ME", "old-value-123")
    before = session.get(Secret, secret.id).ciphertext
    response = client.patch(f"{URL}/{secret.id}", json={"value": "new-value-456"},
                            headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["last_rotated_at"] is not None and body["updated_at"] >= body["created_at"]
    assert "new-value-456" not in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Secret, secret.id).ciphertext != before
    assert services.secret_values(owner.org_id, ["ROTATE_ME"])["ROTATE_ME"] == "new-value-456"
    assert [e.action for e in audit_entries(session, secret.id)] == [
        "secret.create", "secret.rotate"]


def test_patch_description_alone_keeps_the_value(client, session, owner, headers):
    secret = make_secret(owner, "DESCRIBED", "keep-this-value")
    response = client.patch(f"{URL}/{secret.id}", json={"description": "Now documented"},
                            headers=headers)
    assert response.get_json()["description"] == "Now documented"
    assert response.get_json()["last_rotated_at"] is None
    assert services.secret_values(owner.org_id, ["DESCRIBED"])["DESCRIBED"] == "keep-this-value"
    [_, entry] = audit_entries(session, secret.id)
    assert entry.action == "secret.update"
    assert entry.details["description"] == ["", "Now documented"]


@pytest.mark.parametrize("body, field", [
    ({}, "value"),
    ({"value": ""}, "value"),
    ({"value": "x" * (64 * 1024 + 1)}, "value"),
    ({"name": "RENAMED"}, "name"),  # names never change
])
def test_bad_patches_are_400(client, owner, headers, body, field):
    secret = make_secret(owner)
    response = client.patch(f"{URL}/{secret.id}", json=body, headers=headers)
    assert error(response) == (400, "validation_error")
    assert field in fields(response)


def test_delete_removes_it_for_good(client, session, owner, headers):
    secret = make_secret(owner, "GONE")
    response = client.delete(f"{URL}/{secret.id}", headers=headers)
    assert response.status_code == 200 and response.get_json()["name"] == "GONE"
    assert session.get(Secret, secret.id) is None
    assert error(client.get(f"{URL}/{secret.id}", headers=headers)) == (404, "secret_not_found")
    assert [e.action for e in audit_entries(session, secret.id)][-1] == "secret.delete"
    assert create(client, headers, name="GONE").status_code == 201  # the name is free again


def test_members_cannot_read_or_write_secrets(client, org, owner, session):
    secret = make_secret(owner)
    member_headers = bearer(make_api_key(make_member(org, role="member")))
    assert error(client.get(URL, headers=member_headers)) == (403, "permission_denied")
    assert error(client.get(f"{URL}/{secret.id}", headers=member_headers)) == \
        (403, "permission_denied")
    denied = client.delete(f"{URL}/{secret.id}", headers=member_headers)
    assert error(denied) == (403, "permission_denied")
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert entry.action == "secret.delete" and entry.target_id == secret.id
    assert session.get(Secret, secret.id) is not None


def test_operators_write_and_read_only_keys_only_read(client, org, owner):
    operator = make_member(org, role="operator")
    assert create(client, bearer(make_api_key(operator)), name="BY_OPERATOR").status_code == 201
    read_only = bearer(make_api_key(owner, template="read_only"))
    assert client.get(URL, headers=read_only).status_code == 200
    assert error(create(client, read_only, name="NOPE")) == (403, "permission_denied")


def test_billing_blocks_create_and_rotate_but_not_delete(client, session, org, owner, headers):
    secret = make_secret(owner)
    org.billing_posture = "past_due"
    session.commit()
    assert error(create(client, headers, name="LATER")) == (423, "billing_inactive")
    assert error(client.patch(f"{URL}/{secret.id}", json={"value": "x"}, headers=headers)) \
        == (423, "billing_inactive")
    assert client.get(f"{URL}/{secret.id}", headers=headers).status_code == 200
    assert client.delete(f"{URL}/{secret.id}", headers=headers).status_code == 200


def test_secret_values_reports_missing_names(owner):
    make_secret(owner, "PRESENT", "here-it-is")
    from evershell.core.errors import EvershellError
    with pytest.raises(EvershellError) as raised:
        services.secret_values(owner.org_id, ["PRESENT", "ABSENT"])
    assert raised.value.code == "secret_not_found"
    assert raised.value.details == {"missing": ["ABSENT"]}
    assert "here-it-is" not in raised.value.message
    assert services.secret_values(owner.org_id, []) == {}


def test_secret_values_never_reaches_another_org(owner):
    make_secret(owner, "MINE", "only-mine")
    from evershell.core.errors import EvershellError
    with pytest.raises(EvershellError):
        services.secret_values(make_org().id, ["MINE"])


def test_plaintexts_repr_names_keys_only(owner):
    make_secret(owner, "SHY", "do-not-print-me")
    values = services.secret_values(owner.org_id, ["SHY"])
    assert "do-not-print-me" not in repr(values) and "do-not-print-me" not in str(values)
    assert "SHY" in repr(values)


def test_the_database_enforces_names_when_two_creates_race(client, monkeypatch, headers):
    """Both requests pass the friendly check before either commits: the unique
    constraint turns the loser into 409, not 500."""
    monkeypatch.setattr(services, "_name_free", lambda *args: None)
    assert create(client, headers, name="RACE").status_code == 201
    assert error(create(client, headers, name="RACE")) == (409, "name_taken")
