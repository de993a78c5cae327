"""``/v1/roles``: create, read, list, update (new versions), archive, delete — every rule
and error code a caller can hit, through real API keys."""

from __future__ import annotations

import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.roles.models import RoleVersion
from tests.factories import make_member, make_org
from tests.roles.conftest import CAPS, key_of, make_provider, make_role

ROLES = "/v1/roles"


def body(owner, **values) -> dict:
    return {"name": "reviewer", "provider_id": owner.provider.id, "model": "scripted",
            **values}


def error(response) -> dict:
    return response.get_json()["error"]


def audit_actions(session, target_id: str) -> list[str]:
    return list(session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.target_id == target_id).order_by(AuditEntry.id)))


# -- create ------------------------------------------------------------------------------

def test_create_writes_version_1_with_defaults_and_the_compiled_set(client, owner, session):
    response = client.post(ROLES, headers=owner.headers, json=body(
        owner, description=" Reviews PRs ", system_prompt="You review code.\r\nBe kind.",
        capabilities=CAPS))
    assert response.status_code == 201, response.get_json()
    role = response.get_json()
    assert role["id"].startswith("role_") and role["version"] == 1
    assert role["status"] == "active" and role["archived_at"] is None
    assert role["description"] == "Reviews PRs"
    assert role["system_prompt"] == "You review code.\nBe kind."
    assert role["capabilities"] == CAPS
    assert role["compiled_capabilities"]["tools"] == ["read_file", "shell"]
    assert role["compiled_capabilities"]["limits"]["memory_mb"] == 2048
    assert role["compiled_capabilities"]["network"] == {"allowlist": [], "mode": "none"}
    assert (role["thinking_effort"], role["max_continuations"],
            role["max_context_tokens"]) == ("medium", 20, 100_000)
    assert role["pack_ids"] == []
    assert role["version_created_by_user_id"] == owner.membership.user_id
    assert audit_actions(session, role["id"]) == ["role.create"]


def test_create_with_only_the_required_fields_gets_default_capabilities(client, owner):
    role = client.post(ROLES, headers=owner.headers, json=body(owner)).get_json()
    assert role["capabilities"] == "" and role["system_prompt"] == ""
    assert role["compiled_capabilities"]["tools"] == []


def test_create_needs_name_provider_and_model(client, owner):
    response = client.post(ROLES, headers=owner.headers, json={"description": "x"})
    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert set(error(response)["details"]["fields"]) == {"name", "provider_id", "model"}


def test_create_reports_every_rule_broken_at_once(client, owner):
    response = client.post(ROLES, headers=owner.headers, json=body(
        owner, name=" ", thinking_effort="max", max_continuations=0,
        max_context_tokens=10 ** 8, pack_ids=["pack_x", "pack_x"]))
    assert response.status_code == 400
    assert error(response)["details"]["fields"] == {
        "name": ["Required."],
        "thinking_effort": ["Must be one of: low, medium, high."],
        "max_continuations": ["Must be between 1 and 1000."],
        "max_context_tokens": ["Must be between 1000 and 2000000."],
        "pack_ids": ["A pack is listed twice."]}


def test_create_refuses_wrong_types_and_unknown_fields(client, owner):
    response = client.post(ROLES, headers=owner.headers, json=body(
        owner, max_continuations="5", capabilities=["tools"], colour="blue"))
    assert response.status_code == 400
    fields = error(response)["details"]["fields"]
    assert set(fields) == {"max_continuations", "capabilities", "colour"}


def test_limits_on_text_fields(client, owner):
    response = client.post(ROLES, headers=owner.headers, json=body(
        owner, name="n" * 201, description="d" * 2001, system_prompt="p" * 100_001))
    assert error(response)["details"]["fields"] == {
        "name": ["At most 200 characters."], "description": ["At most 2000 characters."],
        "system_prompt": ["At most 100000 characters."]}


def test_a_caps_yaml_that_fails_is_422_with_every_position(client, owner, session):
    response = client.post(ROLES, headers=owner.headers, json=body(
        owner, capabilities="tools: [shel]\nlimits:\n  memory: 1\n"))
    assert response.status_code == 422
    err = error(response)
    assert err["code"] == "invalid_capabilities"
    assert (err["details"]["line"], err["details"]["column"]) == (1, 9)
    assert err["details"]["reason"].startswith("unknown tool 'shel'; did you mean 'shell'?")
    assert [(p["line"], p["column"], p["path"]) for p in err["details"]["errors"]] == [
        (1, 9, "tools[0]"), (3, 3, "limits.memory")]
    assert "line 1, column 9" in err["message"]
    assert session.scalar(sa.select(sa.func.count(RoleVersion.id)).where(
        RoleVersion.org_id == owner.org.id)) == 0


def test_the_provider_must_be_in_the_org_not_archived_and_serve_the_model(client, owner):
    other_org_provider = make_provider(make_member(make_org(), role="owner"))
    for provider_id in (other_org_provider.id, "prov_01J9ZZZZZZZZZZZZZZZZZZZZZZ", "nope"):
        response = client.post(ROLES, headers=owner.headers,
                               json=body(owner, provider_id=provider_id))
        assert response.status_code == 404
        assert error(response)["code"] == "provider_not_found"
    response = client.post(ROLES, headers=owner.headers, json=body(owner, model="gpt-9"))
    assert response.status_code == 400
    assert error(response)["details"]["fields"]["model"] == [
        f"{owner.provider.name} does not serve 'gpt-9'; choose one of: scripted, other."]
    assert client.post(f"/v1/providers/{owner.provider.id}/archive",
                       headers=owner.headers).status_code == 200
    response = client.post(ROLES, headers=owner.headers, json=body(owner))
    assert response.status_code == 409 and error(response)["code"] == "provider_archived"


def test_names_are_unique_in_the_org_archived_roles_included(client, owner):
    first = client.post(ROLES, headers=owner.headers, json=body(owner)).get_json()
    client.post(f"{ROLES}/{first['id']}/archive", headers=owner.headers)
    response = client.post(ROLES, headers=owner.headers, json=body(owner, name=" reviewer"))
    assert response.status_code == 409
    assert error(response)["code"] == "name_taken"
    assert error(response)["details"] == {"name": "reviewer"}
    other = make_member(make_org(), role="owner")
    other_provider = make_provider(other)
    response = client.post(ROLES, headers=key_of(other.org, "owner"), json={
        "name": "reviewer", "provider_id": other_provider.id, "model": "scripted"})
    assert response.status_code == 201  # another org may use the same name


# -- read and list -----------------------------------------------------------------------

def test_get_returns_the_current_version_and_another_orgs_id_is_404(client, owner):
    state = make_role(owner.membership, owner.provider, capabilities=CAPS)
    response = client.get(f"{ROLES}/{state.role.id}", headers=owner.headers)
    assert response.status_code == 200
    assert response.get_json()["compiled_capabilities"]["tools"] == ["read_file", "shell"]
    stranger = key_of(make_org(), "owner")
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/archive"),
                         ("POST", "/unarchive"), ("GET", "/versions"),
                         ("GET", "/versions/1"), ("GET", "/versions/1/diff?against=1"),
                         ("POST", "/capabilities/explain")]:
        response = client.open(f"{ROLES}/{state.role.id}{path}", method=method,
                               headers=stranger, json={} if method != "GET" else None)
        assert response.status_code == 404, (method, path)
        assert error(response) | {"request_id": ""} == {
            "code": "role_not_found", "request_id": "",
            "message": f"Role {state.role.id!r} was not found in this organisation."}


def test_list_pages_newest_first_and_filters_archived(client, owner):
    roles = [make_role(owner.membership, owner.provider).role.id for _ in range(3)]
    client.post(f"{ROLES}/{roles[0]}/archive", headers=owner.headers)
    first = client.get(f"{ROLES}?limit=1", headers=owner.headers).get_json()
    assert [r["id"] for r in first["data"]] == [roles[2]]
    second = client.get(f"{ROLES}?limit=1&cursor={first['next_cursor']}",
                        headers=owner.headers).get_json()
    assert [r["id"] for r in second["data"]] == [roles[1]]
    assert second["next_cursor"] is None
    archived = client.get(f"{ROLES}?archived=true", headers=owner.headers).get_json()
    assert [r["id"] for r in archived["data"]] == [roles[0]]
    assert archived["data"][0]["status"] == "archived"
    bad = client.get(f"{ROLES}?archived=maybe", headers=owner.headers)
    assert bad.status_code == 400 and "archived" in error(bad)["details"]["fields"]


def test_members_read_roles_but_cannot_change_them(client, owner):
    state = make_role(owner.membership, owner.provider)
    member = key_of(owner.org, "member")
    assert client.get(f"{ROLES}/{state.role.id}", headers=member).status_code == 200
    assert client.get("/v1/capabilities", headers=member).status_code == 200
    for method, path in [("POST", ""), ("PATCH", f"/{state.role.id}"),
                         ("DELETE", f"/{state.role.id}"),
                         ("POST", f"/{state.role.id}/archive")]:
        response = client.open(f"{ROLES}{path}", method=method, headers=member,
                               json=body(owner))
        assert response.status_code == 403, (method, path)
        assert error(response)["code"] == "permission_denied"
    operator = key_of(owner.org, "operator")
    assert client.post(ROLES, headers=operator, json=body(owner)).status_code == 201
    read_only = key_of(owner.org, "owner", template="read_only")
    assert client.post(ROLES, headers=read_only,
                       json=body(owner, name="x")).status_code == 403


# -- update: new versions ----------------------------------------------------------------

def test_every_update_writes_the_next_immutable_version(client, owner, session):
    state = make_role(owner.membership, owner.provider, system_prompt="v1 prompt",
                      capabilities=CAPS)
    url = f"{ROLES}/{state.role.id}"
    second = client.patch(url, headers=owner.headers, json={"description": "Now v2"})
    assert second.status_code == 200 and second.get_json()["version"] == 2
    assert second.get_json()["system_prompt"] == "v1 prompt"  # unchanged fields carry over
    third = client.patch(url, headers=owner.headers, json={
        "capabilities": "tools: [shell]\n", "thinking_effort": "high", "model": "other"})
    role = third.get_json()
    assert (role["version"], role["model"], role["thinking_effort"]) == (3, "other", "high")
    assert role["compiled_capabilities"]["tools"] == ["shell"]
    first = client.get(f"{url}/versions/1", headers=owner.headers).get_json()
    assert (first["description"], first["model"], first["capabilities"]) == (
        "", "scripted", CAPS)
    assert first["current"] is False and first["compiled_capabilities"]["limits"][
        "memory_mb"] == 2048
    assert audit_actions(session, state.role.id) == ["role.create", "role.update",
                                                     "role.update"]
    entry = session.scalar(sa.select(AuditEntry).where(
        AuditEntry.target_id == state.role.id).order_by(AuditEntry.id.desc()))
    assert entry.details == {
        "name": state.role.name, "version": 3,
        "changed": ["model", "capabilities", "thinking_effort"],
        "capabilities_diff": {"added": 0, "removed": 1, "changed": 1}}


def test_an_update_that_changes_nothing_writes_no_version(client, owner, session):
    state = make_role(owner.membership, owner.provider, system_prompt="a\nb",
                      capabilities=CAPS)
    url = f"{ROLES}/{state.role.id}"
    same = client.patch(url, headers=owner.headers, json={
        "name": state.role.name, "system_prompt": "a\r\nb", "capabilities": CAPS})
    assert same.status_code == 200 and same.get_json()["version"] == 1
    assert client.patch(url, headers=owner.headers, json={}).get_json()["version"] == 1
    assert audit_actions(session, state.role.id) == ["role.create"]


def test_renaming_is_a_new_version_and_must_stay_unique(client, owner):
    taken = make_role(owner.membership, owner.provider, name="taken")
    state = make_role(owner.membership, owner.provider, name="mine")
    url = f"{ROLES}/{state.role.id}"
    clash = client.patch(url, headers=owner.headers, json={"name": "taken"})
    assert clash.status_code == 409 and error(clash)["code"] == "name_taken"
    renamed = client.patch(url, headers=owner.headers, json={"name": "ours"}).get_json()
    assert (renamed["name"], renamed["version"]) == ("ours", 2)
    assert client.get(f"{url}/versions/1", headers=owner.headers).get_json()["name"] == "mine"
    assert taken.role.name == "taken"


def test_update_errors_leave_the_role_as_it_was(client, owner):
    state = make_role(owner.membership, owner.provider, capabilities=CAPS)
    url = f"{ROLES}/{state.role.id}"
    bad_caps = client.patch(url, headers=owner.headers, json={"capabilities": "tools: 1"})
    assert bad_caps.status_code == 422
    assert error(bad_caps)["details"]["path"] == "tools"
    bad_model = client.patch(url, headers=owner.headers, json={"model": "gpt-9"})
    assert bad_model.status_code == 400 and "model" in error(bad_model)["details"]["fields"]
    other = make_provider(owner.membership, models=["big"])
    # Switching provider re-checks the current model against the new provider.
    switch = client.patch(url, headers=owner.headers, json={"provider_id": other.id})
    assert switch.status_code == 400 and "model" in error(switch)["details"]["fields"]
    moved = client.patch(url, headers=owner.headers,
                         json={"provider_id": other.id, "model": "big"}).get_json()
    assert (moved["version"], moved["provider_id"]) == (2, other.id)
    assert client.get(url, headers=owner.headers).get_json()["capabilities"] == CAPS


def test_a_role_on_an_archived_provider_can_still_be_edited_but_not_repointed(client, owner):
    state = make_role(owner.membership, owner.provider)
    url = f"{ROLES}/{state.role.id}"
    client.post(f"/v1/providers/{owner.provider.id}/archive", headers=owner.headers)
    edited = client.patch(url, headers=owner.headers, json={"description": "still fine"})
    assert edited.status_code == 200 and edited.get_json()["version"] == 2
    repointed = client.patch(url, headers=owner.headers, json={"model": "other"})
    assert repointed.status_code == 409 and error(repointed)["code"] == "provider_archived"


# -- archive, unarchive, delete ----------------------------------------------------------

def test_archive_makes_a_role_read_only_until_unarchived(client, owner, session):
    state = make_role(owner.membership, owner.provider)
    url = f"{ROLES}/{state.role.id}"
    archived = client.post(f"{url}/archive", headers=owner.headers)
    assert archived.status_code == 200 and archived.get_json()["status"] == "archived"
    assert client.post(f"{url}/archive", headers=owner.headers).status_code == 200
    refused = client.patch(url, headers=owner.headers, json={"description": "x"})
    assert refused.status_code == 409 and error(refused)["code"] == "role_archived"
    assert client.get(f"{url}/versions", headers=owner.headers).status_code == 200
    back = client.post(f"{url}/unarchive", headers=owner.headers).get_json()
    assert back["status"] == "active" and back["archived_at"] is None
    assert client.patch(url, headers=owner.headers,
                        json={"description": "x"}).get_json()["version"] == 2
    assert audit_actions(session, state.role.id) == [
        "role.create", "role.archive", "role.unarchive", "role.update"]


def test_archive_works_in_every_billing_posture_unarchive_needs_an_active_one(
        client, owner, session):
    state = make_role(owner.membership, owner.provider)
    url = f"{ROLES}/{state.role.id}"
    owner.org.billing_posture = "past_due"
    session.commit()
    assert client.post(f"{url}/archive", headers=owner.headers).status_code == 200
    blocked = client.post(f"{url}/unarchive", headers=owner.headers)
    assert blocked.status_code == 423 and error(blocked)["code"] == "billing_inactive"
    explained = client.post(f"{url}/capabilities/explain", headers=owner.headers, json={})
    assert explained.status_code == 200  # read-class
    assert client.delete(url, headers=owner.headers).status_code == 200


def test_delete_removes_the_role_and_its_versions(client, owner, session):
    state = make_role(owner.membership, owner.provider)
    url = f"{ROLES}/{state.role.id}"
    client.patch(url, headers=owner.headers, json={"description": "v2"})
    deleted = client.delete(url, headers=owner.headers)
    assert deleted.status_code == 200
    assert (deleted.get_json()["status"], deleted.get_json()["version"]) == ("deleted", 2)
    assert client.get(url, headers=owner.headers).status_code == 404
    assert session.scalar(sa.select(sa.func.count(RoleVersion.id)).where(
        RoleVersion.role_id == state.role.id)) == 0
    assert audit_actions(session, state.role.id)[-1] == "role.delete"
    again = client.delete(url, headers=owner.headers)
    assert again.status_code == 404 and error(again)["code"] == "role_not_found"


# -- packs -------------------------------------------------------------------------------

def test_packs_must_be_in_the_org_and_not_archived(client, owner):
    from tests.roles.conftest import make_pack
    docs, tools = make_pack(owner.membership, "docs"), make_pack(owner.membership, "tools")
    foreign = make_pack(make_member(make_org(), role="owner"), "docs")
    created = client.post(ROLES, headers=owner.headers,
                          json=body(owner, pack_ids=[tools.id, docs.id]))
    assert created.status_code == 201
    assert created.get_json()["pack_ids"] == [tools.id, docs.id]  # in the order given
    url = f"{ROLES}/{created.get_json()['id']}"
    for pack_id in (foreign.id, "pack_01J9ZZZZZZZZZZZZZZZZZZZZZZ"):
        response = client.patch(url, headers=owner.headers, json={"pack_ids": [pack_id]})
        assert response.status_code == 404 and error(response)["code"] == "pack_not_found"
    extra = make_pack(owner.membership, "extra")
    client.post(f"/v1/packs/{extra.id}/archive", headers=owner.headers)
    client.post(f"/v1/packs/{docs.id}/archive", headers=owner.headers)
    refused = client.patch(url, headers=owner.headers,
                           json={"pack_ids": [tools.id, docs.id, extra.id]})
    assert refused.status_code == 409 and error(refused)["code"] == "pack_archived"
    assert error(refused)["details"] == {"pack_id": extra.id}
    # docs was archived after it was added: it does not block other edits.
    edited = client.patch(url, headers=owner.headers,
                          json={"description": "x", "pack_ids": [tools.id, docs.id]})
    assert edited.status_code == 200 and edited.get_json()["version"] == 2
    dropped = client.patch(url, headers=owner.headers, json={"pack_ids": [docs.id]})
    assert dropped.get_json()["pack_ids"] == [docs.id]
    first = client.get(f"{url}/versions/1", headers=owner.headers).get_json()
    assert first["pack_ids"] == [tools.id, docs.id]


def test_a_pack_any_version_mounts_cannot_be_deleted(client, owner):
    from evershell.roles import services
    from tests.roles.conftest import make_pack
    pack = make_pack(owner.membership)
    state = make_role(owner.membership, owner.provider, pack_ids=[pack.id])
    client.patch(f"{ROLES}/{state.role.id}", headers=owner.headers, json={"pack_ids": []})
    assert services.roles_using_pack(owner.org.id, pack.id) == [state.role.id]
    assert services.roles_using_pack(make_org().id, pack.id) == []
    refused = client.delete(f"/v1/packs/{pack.id}", headers=owner.headers)
    assert refused.status_code == 409 and error(refused)["code"] == "pack_in_use"
    client.delete(f"{ROLES}/{state.role.id}", headers=owner.headers)
    assert client.delete(f"/v1/packs/{pack.id}", headers=owner.headers).status_code == 200


def test_roles_using_a_provider_include_past_versions(client, owner):
    from evershell.roles import services
    state = make_role(owner.membership, owner.provider)
    other = make_provider(owner.membership, models=["big"])
    client.patch(f"{ROLES}/{state.role.id}", headers=owner.headers,
                 json={"provider_id": other.id, "model": "big"})
    assert services.roles_using_provider(owner.org.id, owner.provider.id) == [state.role.id]
    assert services.roles_using_provider(owner.org.id, other.id) == [state.role.id]
    assert services.roles_using_provider(make_org().id, other.id) == []
    refused = client.delete(f"/v1/providers/{owner.provider.id}", headers=owner.headers)
    assert refused.status_code == 409 and error(refused)["code"] == "provider_in_use"
    client.delete(f"{ROLES}/{state.role.id}", headers=owner.headers)
    assert client.delete(f"/v1/providers/{owner.provider.id}",
                         headers=owner.headers).status_code == 200


def test_versions_are_immutable_rows(session, owner):
    import pytest
    state = make_role(owner.membership, owner.provider)
    state.version.description = "rewritten history"
    with pytest.raises(RuntimeError, match="immutable"):
        session.flush()
    session.rollback()


def test_ensure_usable_finds_a_role_by_id_or_name_for_tasks(client, owner):
    import pytest

    from evershell.core.errors import EvershellError
    from evershell.roles import services
    state = make_role(owner.membership, owner.provider, name="runner")
    assert services.ensure_usable(owner.org.id, role_id=state.role.id).role.id == \
        state.role.id
    assert services.ensure_usable(owner.org.id, name="runner").version.number == 1
    with pytest.raises(EvershellError) as elsewhere:
        services.ensure_usable(make_org().id, name="runner")
    assert elsewhere.value.code.value == "role_not_found"
    client.post(f"{ROLES}/{state.role.id}/archive", headers=owner.headers)
    with pytest.raises(EvershellError) as archived:
        services.ensure_usable(owner.org.id, role_id=state.role.id)
    assert (archived.value.status, archived.value.code.value) == (409, "role_archived")
