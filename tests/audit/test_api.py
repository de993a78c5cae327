"""GET /v1/audit: every filter, pagination, org isolation, permissions, validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from evershell.audit import services as audit
from evershell.audit.models import AuditEntry
from tests.audit.conftest import add_entry
from tests.factories import bearer, make_api_key, make_member, make_org

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def org(session):
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email=f"owner-{org.slug}@example.test")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner, template="read_only"))


def listing(client, headers, **params):
    response = client.get("/v1/audit", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body) -> list[str]:
    return [e["id"] for e in body["data"]]


def test_list_is_newest_first_with_every_field(client, owner, headers):
    first = add_entry(owner, "secret.create", "secret", "sec_1", {"name": "db"})
    second = add_entry(owner, "secret.update", "secret", "sec_1", {"name": "db"})
    body = listing(client, headers, action="secret.*")
    assert ids(body) == [second.id, first.id] and body["next_cursor"] is None
    entry = body["data"][1]
    assert entry["action"] == "secret.create" and entry["outcome"] == "success"
    assert entry["actor_user_id"] == owner.user_id
    assert entry["actor_email"] == owner.user.email
    assert entry["credential_shape"] == "cli"
    assert (entry["target_type"], entry["target_id"]) == ("secret", "sec_1")
    assert entry["details"] == {"name": "db"}
    assert datetime.fromisoformat(entry["created_at"]).tzinfo is not None
    assert {"request_id", "ip", "user_agent", "api_key_id"} <= set(entry)


def test_actor_filter_takes_a_user_id_or_an_email(client, org, owner, headers):
    other = make_member(org, role="operator", email="Other.Person@example.test")
    mine = add_entry(owner, "thing.do")
    theirs = add_entry(other, "thing.do")
    assert ids(listing(client, headers, actor=other.user_id)) == [theirs.id]
    assert ids(listing(client, headers, actor="other.person@example.test")) == [theirs.id]
    assert ids(listing(client, headers, actor="OTHER.Person@Example.test")) == [theirs.id]
    by_owner = ids(listing(client, headers, actor=owner.user.email, action="thing.do"))
    assert by_owner == [mine.id]
    assert listing(client, headers, actor="nobody@example.test")["data"] == []


def test_action_filter_is_exact_or_a_dotted_prefix(client, owner, headers):
    create = add_entry(owner, "widget.create")
    revoke = add_entry(owner, "widget.revoke")
    add_entry(owner, "widgets.create")   # shares the text but not the dotted prefix
    add_entry(owner, "widgetXcreate")    # "_"/"." must not act as LIKE wildcards
    assert ids(listing(client, headers, action="widget.create")) == [create.id]
    assert ids(listing(client, headers, action="widget.*")) == [revoke.id, create.id]
    assert listing(client, headers, action="widget")["data"] == []


def test_action_prefix_escapes_like_wildcards(client, owner, headers):
    rotate = add_entry(owner, "web_hook.rotate")
    add_entry(owner, "webXhook.rotate")  # "_" would match X if it reached LIKE unescaped
    assert ids(listing(client, headers, action="web_hook.*", actor=owner.user_id)) == \
        [rotate.id]


def test_target_filter_takes_an_id_or_a_type(client, owner, headers):
    first = add_entry(owner, "role.update", "role", "role_A")
    second = add_entry(owner, "role.update", "role", "role_B")
    add_entry(owner, "pack.update", "pack", "pack_A")
    assert ids(listing(client, headers, target="role_A")) == [first.id]
    assert ids(listing(client, headers, target="type:role")) == [second.id, first.id]
    assert listing(client, headers, target="type:nothing")["data"] == []


def test_since_is_inclusive_and_until_exclusive(client, owner, headers):
    before = add_entry(owner, "clock.tick", at=T0 - timedelta(seconds=1))
    at = add_entry(owner, "clock.tick", at=T0)
    later = add_entry(owner, "clock.tick", at=T0 + timedelta(hours=1))
    window = dict(action="clock.tick")
    assert ids(listing(client, headers, since="2024-05-01T12:00:00Z", **window)) == \
        [later.id, at.id]
    assert ids(listing(client, headers, until="2024-05-01T12:00:00Z", **window)) == \
        [before.id]
    both = listing(client, headers, since="2024-05-01T12:00:00Z",
                   until="2024-05-01T13:00:00Z", **window)
    assert ids(both) == [at.id]
    # another timezone names the same instant; an unencoded "+" (a space) still works
    assert ids(listing(client, headers, since="2024-05-01T14:00:00+02:00",
                       until="2024-05-01T15:00:00 02:00", **window)) == [at.id]


def test_outcome_filter_finds_refused_changes(client, org, owner, headers):
    member = make_member(org, role="member")
    refused = client.post("/v1/api-keys", json={"name": "x", "scopes": ["audit:read"]},
                          headers=bearer(make_api_key(member)))
    assert refused.status_code == 403
    denied = listing(client, headers, outcome="denied")["data"]
    assert [(e["action"], e["actor_user_id"], e["credential_shape"]) for e in denied] == \
        [("api_key.create", member.user_id, "api_key")]
    assert all(e["outcome"] == "success" for e in listing(client, headers,
                                                         outcome="success")["data"])


def test_pages_walk_every_entry_exactly_once(client, session, org, owner, headers):
    for n in range(11):
        add_entry(owner, "page.walk", "thing", f"t{n}")
    expected = session.scalars(sa.select(AuditEntry.id).where(
        AuditEntry.org_id == org.id).order_by(AuditEntry.id.desc())).all()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        body = listing(client, headers, **params)
        seen += ids(body)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(set(seen)) == len(seen)
    assert pages == -(-len(expected) // 4)


def test_filtered_pages_keep_the_filter(client, owner, headers):
    wanted = [add_entry(owner, "keep.me").id for _ in range(5)]
    for _ in range(5):
        add_entry(owner, "skip.me")
    first = listing(client, headers, action="keep.me", limit=3)
    rest = listing(client, headers, action="keep.me", limit=3, cursor=first["next_cursor"])
    assert ids(first) + ids(rest) == wanted[::-1] and rest["next_cursor"] is None


def test_another_orgs_entries_never_appear(client, owner, headers):
    stranger = make_member(make_org(), role="owner")
    theirs = add_entry(stranger, "secret.create", "secret", "sec_theirs")
    everything = []
    body = listing(client, headers, limit=200)
    everything += body["data"]
    assert theirs.id not in [e["id"] for e in everything]
    assert all(e["actor_user_id"] != stranger.user_id for e in everything)
    assert listing(client, headers, target="sec_theirs")["data"] == []
    assert listing(client, headers, actor=stranger.user_id)["data"] == []


def test_a_member_without_audit_read_is_refused(client, org):
    member = make_member(org, role="member")
    for path in ("/v1/audit", "/v1/audit/export"):
        response = client.get(path, headers=bearer(make_api_key(member)))
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "permission_denied"


def test_operator_and_owner_read_only_key_can_read(client, org, headers):
    operator = make_member(org, role="operator")
    assert client.get("/v1/audit", headers=bearer(make_api_key(operator))).status_code == 200
    assert client.get("/v1/audit", headers=headers).status_code == 200  # owner's read_only


def test_a_tasks_only_key_is_refused(client, owner):
    key = bearer(make_api_key(owner, template="tasks_only"))
    response = client.get("/v1/audit", headers=key)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "permission_denied"


def test_unauthenticated_requests_get_401_before_any_validation(client):
    response = client.get("/v1/audit", query_string={"since": "garbage"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "yesterday"}, "since"),
    ({"until": "2024-13-01T00:00:00Z"}, "until"),
    ({"since": "2024-05-01T00:00:00"}, "since"),  # naive: refused, not guessed
    ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "until"),
    ({"outcome": "maybe"}, "outcome"),
    ({"target": "type:"}, "target"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"cursor": "!!!"}, "cursor"),
    ({"actr": "user_x"}, "actr"),  # a misspelt filter must not widen the result
])
def test_bad_filters_are_400_validation_errors(client, headers, params, field):
    response = client.get("/v1/audit", query_string=params, headers=headers)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]["fields"]
    assert error["request_id"] == response.headers["X-Request-Id"]


def test_empty_filters_mean_no_filter(client, owner, headers):
    entry = add_entry(owner, "empty.filters")
    body = listing(client, headers, actor="", action="", target="", since="", until="")
    assert entry.id in ids(body)


def test_secret_shaped_details_are_refused_by_the_writer(org):
    with pytest.raises(ValueError, match="secret material"):
        audit.record(org.id, "thing.do", details={"token": "x"})
    with pytest.raises(ValueError, match="secret material"):
        audit.record(org.id, "thing.do", details={"Password": "hunter2"})


def test_a_created_keys_secret_never_reaches_the_log(client, owner):
    full = bearer(make_api_key(owner))
    created = client.post("/v1/api-keys", json={"name": "ci", "template": "read_only"},
                          headers=full)
    assert created.status_code == 201
    secret = created.get_json()["key"]
    listed = client.get("/v1/audit", query_string={"target": created.get_json()["id"]},
                        headers=full)
    assert [e["action"] for e in listed.get_json()["data"]] == ["api_key.create"]
    assert listed.get_json()["data"][0]["api_key_id"] is not None
    exported = client.get("/v1/audit/export", query_string={"format": "csv"}, headers=full)
    for body in (listed.get_data(as_text=True), exported.get_data(as_text=True)):
        assert secret not in body and secret[3:] not in body


def test_the_openapi_spec_documents_filters_and_export_formats(client):
    spec = client.get("/v1/openapi.json").get_json()
    listed = spec["paths"]["/v1/audit"]["get"]
    names = {p["name"] for p in listed["parameters"]}
    assert {"actor", "action", "target", "since", "until", "outcome", "limit",
            "cursor"} <= names
    export = spec["paths"]["/v1/audit/export"]["get"]
    assert {"application/x-ndjson", "text/csv"} <= set(export["responses"]["200"]["content"])
    assert "format" in {p["name"] for p in export["parameters"]}


def test_the_page_read_as_rows_is_what_the_schema_would_dump(client, session):
    """GET /v1/audit builds its page from rows, not through AuditEntrySchema: the two
    must give the same JSON for every kind of entry."""
    from evershell.audit.models import AuditEntry
    from evershell.audit.schemas import AuditEntrySchema
    from tests.factories import bearer, make_api_key, make_member, make_org
    owner = make_member(make_org(), role="owner")
    headers = bearer(make_api_key(owner))
    client.post("/v1/secrets", headers=headers, json={"name": "A", "value": "x"})
    client.delete("/v1/api-keys/key_doesnotexist", headers=headers)
    client.post("/v1/secrets", headers={**headers, "User-Agent": "ünïcode/1"},
                json={"name": "B", "value": "y", "description": "nested"})
    from datetime import UTC, datetime
    for n, (at, details) in enumerate([
            (datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC), {}),  # no microseconds
            (datetime(2031, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
             {"quote": 'a "b" \\ c', "nested": {"list": [1, 2.5, None, True]},
              "text": "tab\tnew\nline \u2028 ünï 😀"}),
            (datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), {"n": 10**15})]):
        session.add(AuditEntry(id=f"aud_{n:026d}", org_id=owner.org_id, created_at=at,
                               action="crafted.entry", outcome="success", details=details,
                               actor_email='o"dd\x01@example.com', user_agent="ü\u007f?"))
    session.commit()
    page = client.get("/v1/audit?limit=50", headers=headers).get_json()
    rows = session.scalars(sa.select(AuditEntry).where(AuditEntry.org_id == owner.org_id)
                           .order_by(AuditEntry.id.desc())).all()
    assert len(page["data"]) == len(rows) >= 6
    expected = json.loads(json.dumps(AuditEntrySchema(many=True).dump(rows)))
    assert page["data"] == expected  # created_at strings included, character for character
    assert page["next_cursor"] is None
    walked, cursor = [], ""
    while True:  # two at a time: the cursor of each page is its last entry
        response = client.get(f"/v1/audit?limit=2{cursor}", headers=headers)
        assert response.status_code == 200 and response.mimetype == "application/json"
        walked += response.get_json()["data"]
        if response.get_json()["next_cursor"] is None:
            break
        cursor = "&cursor=" + response.get_json()["next_cursor"]
    assert walked == expected
