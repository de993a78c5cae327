"""/v1/providers after creation: list and filters, get, update, archive and unarchive,
delete; another org's ids, scopes, billing posture, audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.core.errors import EvershellError
from evershell.providers import services
from tests.factories import bearer, make_api_key, make_member, make_org, principal_for
from tests.providers.conftest import SCRIPT, make_provider, make_secret

URL = "/v1/providers"


@pytest.fixture
def org():
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email="owner@example.test")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner))


@pytest.fixture
def claude(owner):
    return make_provider(owner, name="Claude", kind="anthropic", models=["claude-sonnet-4-5"],
                         api_key_secret_id=make_secret(owner, "ANTHROPIC_API_KEY"))


def error(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def fields(response) -> dict:
    assert error(response) == (400, "validation_error"), response.get_json()
    return response.get_json()["error"]["details"]["fields"]


def actions(session, target_id: str) -> list[str]:
    return list(session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.target_id == target_id, AuditEntry.outcome == "success")
        .order_by(AuditEntry.id)))


def ids(response) -> list[str]:
    return [item["id"] for item in response.get_json()["data"]]


# -- list and get --------------------------------------------------------------------------

def test_list_shows_active_providers_newest_first_and_only_this_orgs(client, headers, owner):
    first, second = make_provider(owner), make_provider(owner)
    make_provider(make_member(make_org(), role="owner"))
    body = client.get(URL, headers=headers).get_json()
    assert [item["id"] for item in body["data"]] == [second.id, first.id]
    assert body["next_cursor"] is None


def test_archived_providers_are_listed_only_with_archived_true(client, headers, owner):
    kept, archived = make_provider(owner), make_provider(owner)
    client.post(f"{URL}/{archived.id}/archive", headers=headers)
    assert ids(client.get(URL, headers=headers)) == [kept.id]
    assert ids(client.get(URL, query_string={"archived": "false"}, headers=headers)) == [kept.id]
    assert ids(client.get(URL, query_string={"archived": "true"}, headers=headers)) == \
        [archived.id]
    assert "archived" in fields(client.get(URL, query_string={"archived": "maybe"},
                                           headers=headers))


def test_list_filters_by_kind(client, headers, owner, claude):
    scripted = make_provider(owner)
    assert ids(client.get(URL, query_string={"kind": "scripted"}, headers=headers)) == \
        [scripted.id]
    assert ids(client.get(URL, query_string={"kind": "anthropic"}, headers=headers)) == \
        [claude.id]
    assert "kind" in fields(client.get(URL, query_string={"kind": "gemini"}, headers=headers))


def test_list_pages_without_gaps(client, headers, owner):
    made = [make_provider(owner).id for _ in range(5)]
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, query_string=query, headers=headers).get_json()
        seen += [item["id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))


def test_get_one_and_ids_of_other_orgs_are_not_found(client, headers, claude):
    body = client.get(f"{URL}/{claude.id}", headers=headers).get_json()
    assert body["name"] == "Claude" and body["kind"] == "anthropic"
    theirs = make_provider(make_member(make_org(), role="owner"))
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open(f"{URL}/{theirs.id}", method=method, headers=headers,
                               **({"json": {"name": "mine"}} if method == "PATCH" else {}))
        assert error(response) == (404, "provider_not_found"), method
    for verb in ("archive", "unarchive"):
        assert error(client.post(f"{URL}/{theirs.id}/{verb}", headers=headers)) == \
            (404, "provider_not_found")
    assert error(client.get(f"{URL}/prov_nonsense", headers=headers)) == \
        (404, "provider_not_found")


# -- update --------------------------------------------------------------------------------

def test_patch_changes_only_what_it_names_and_audits_the_change(client, headers, claude,
                                                                session):
    response = client.patch(f"{URL}/{claude.id}", headers=headers,
                            json={"name": "Claude (prod)", "models": ["a", "b"]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == "Claude (prod)" and body["models"] == ["a", "b"]
    assert body["base_url"] == "https://api.anthropic.com"
    assert body["api_key_secret_id"] == claude.api_key_secret_id
    entry = session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "provider.update", AuditEntry.target_id == claude.id)).one()
    assert entry.details["changed"] == ["models", "name"]
    assert entry.details["name"] == ["Claude", "Claude (prod)"]


def test_a_patch_that_changes_nothing_is_not_audited(client, headers, claude, session):
    assert client.patch(f"{URL}/{claude.id}", headers=headers, json={}).status_code == 200
    assert client.patch(f"{URL}/{claude.id}", headers=headers,
                        json={"name": "Claude"}).status_code == 200
    assert actions(session, claude.id) == ["provider.create"]


def test_patch_checks_a_new_base_url_and_null_restores_the_default(client, headers, claude):
    assert list(fields(client.patch(f"{URL}/{claude.id}", headers=headers,
                                    json={"base_url": "http://10.0.0.8/"}))) == ["base_url"]
    moved = client.patch(f"{URL}/{claude.id}", headers=headers,
                         json={"base_url": "https://models.example.com/"}).get_json()
    assert moved["base_url"] == "https://models.example.com"
    reset = client.patch(f"{URL}/{claude.id}", headers=headers, json={"base_url": None})
    assert reset.get_json()["base_url"] == "https://api.anthropic.com"


def test_an_untouched_base_url_is_not_rechecked(client, headers, owner, monkeypatch):
    monkeypatch.setenv("EVERSHELL_ALLOW_PRIVATE_NETWORKS", "true")
    local = make_provider(owner, kind="openai_compatible", models=["m"],
                          base_url="http://127.0.0.1:8000/v1")
    monkeypatch.delenv("EVERSHELL_ALLOW_PRIVATE_NETWORKS")
    renamed = client.patch(f"{URL}/{local.id}", headers=headers, json={"name": "Local vLLM"})
    assert renamed.status_code == 200
    assert list(fields(client.patch(f"{URL}/{local.id}", headers=headers,
                                    json={"base_url": "http://127.0.0.1:9000/v1"}))) == \
        ["base_url"]


def test_the_result_of_a_patch_must_satisfy_the_kind(client, headers, owner, claude):
    assert "api_key_secret_id" in fields(client.patch(
        f"{URL}/{claude.id}", headers=headers, json={"api_key_secret_id": None}))
    assert "models" in fields(client.patch(f"{URL}/{claude.id}", headers=headers,
                                           json={"models": []}))
    assert "script" in fields(client.patch(f"{URL}/{claude.id}", headers=headers,
                                           json={"script": SCRIPT}))
    compatible = make_provider(owner, kind="openai_compatible", models=["m"],
                               base_url="https://models.example.com/v1",
                               api_key_secret_id=claude.api_key_secret_id)
    assert "base_url" in fields(client.patch(f"{URL}/{compatible.id}", headers=headers,
                                             json={"base_url": None}))
    keyless = client.patch(f"{URL}/{compatible.id}", headers=headers,
                           json={"api_key_secret_id": None})
    assert keyless.get_json()["api_key_secret_id"] is None


def test_patch_can_swap_the_secret_but_not_to_another_orgs(client, headers, owner, claude,
                                                           session):
    mine = make_secret(owner, "OTHER_KEY")
    theirs = make_secret(make_member(make_org(), role="owner"), "OTHER_KEY")
    assert "api_key_secret_id" in fields(client.patch(
        f"{URL}/{claude.id}", headers=headers, json={"api_key_secret_id": theirs}))
    old = claude.api_key_secret_id
    swapped = client.patch(f"{URL}/{claude.id}", headers=headers,
                           json={"api_key_secret_id": mine})
    assert swapped.get_json()["api_key_secret_id"] == mine
    entry = session.scalars(sa.select(AuditEntry).where(
        AuditEntry.action == "provider.update", AuditEntry.target_id == claude.id)).one()
    assert entry.details["key_reference"] == [old, mine]


def test_a_scripted_providers_script_can_be_replaced(client, headers, owner):
    demo = make_provider(owner)
    new_script = [{"text": "Hello again."}]
    body = client.patch(f"{URL}/{demo.id}", headers=headers,
                        json={"script": new_script}).get_json()
    assert body["script"] == new_script and body["models"] == ["scripted"]
    assert "script" in fields(client.patch(f"{URL}/{demo.id}", headers=headers,
                                           json={"script": [{"speak": "hi"}]}))


def test_kind_cannot_change(client, headers, claude):
    problems = fields(client.patch(f"{URL}/{claude.id}", headers=headers,
                                   json={"kind": "openai"}))
    assert "cannot change" in problems["kind"][0]
    assert client.patch(f"{URL}/{claude.id}", headers=headers,
                        json={"kind": "anthropic"}).status_code == 200


def test_renaming_onto_another_providers_name_is_name_taken(client, headers, owner, claude):
    other = make_provider(owner, name="Other")
    assert error(client.patch(f"{URL}/{other.id}", headers=headers,
                              json={"name": "Claude"})) == (409, "name_taken")


# -- archive and unarchive -----------------------------------------------------------------

def test_archive_then_unarchive(client, headers, claude, session):
    archived = client.post(f"{URL}/{claude.id}/archive", headers=headers)
    assert archived.status_code == 200
    assert archived.get_json()["status"] == "archived" and archived.get_json()["archived_at"]
    again = client.post(f"{URL}/{claude.id}/archive", headers=headers)
    assert again.get_json()["archived_at"] == archived.get_json()["archived_at"]
    assert error(client.patch(f"{URL}/{claude.id}", headers=headers,
                              json={"name": "x"})) == (409, "provider_archived")
    restored = client.post(f"{URL}/{claude.id}/unarchive", headers=headers).get_json()
    assert restored["status"] == "active" and restored["archived_at"] is None
    client.post(f"{URL}/{claude.id}/unarchive", headers=headers)
    assert actions(session, claude.id) == ["provider.create", "provider.archive",
                                           "provider.unarchive"]


def test_roles_and_tasks_cannot_use_an_archived_provider(session, claude, owner):
    assert services.ensure_usable(owner.org_id, claude.id).id == claude.id
    services.archive(principal_for(owner), claude.id)
    with pytest.raises(EvershellError) as refused:
        services.ensure_usable(owner.org_id, claude.id)
    assert (refused.value.status, refused.value.code) == (409, "provider_archived")
    with pytest.raises(EvershellError) as missing:
        services.ensure_usable(make_org().id, claude.id)
    assert (missing.value.status, missing.value.code) == (404, "provider_not_found")


# -- delete --------------------------------------------------------------------------------

def test_delete_answers_with_the_provider_as_it_was(client, headers, claude, session):
    response = client.delete(f"{URL}/{claude.id}", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "deleted"
    assert response.get_json()["name"] == "Claude"
    assert error(client.get(f"{URL}/{claude.id}", headers=headers)) == \
        (404, "provider_not_found")
    assert actions(session, claude.id)[-1] == "provider.delete"


def test_delete_is_refused_while_a_role_uses_the_provider(client, headers, owner, claude,
                                                          session):
    from evershell.roles import services as roles
    role = roles.create(principal_for(owner), {"name": "coder", "provider_id": claude.id,
                                               "model": "claude-sonnet-4-5"})
    role_id = role.role.id
    session.commit()
    response = client.delete(f"{URL}/{claude.id}", headers=headers)
    assert error(response) == (409, "provider_in_use")
    assert response.get_json()["error"]["details"]["used_by"] == [role_id]
    assert client.get(f"{URL}/{claude.id}", headers=headers).status_code == 200


def test_whatever_the_hook_names_blocks_the_delete(client, headers, claude, monkeypatch):
    monkeypatch.setattr(services, "provider_references",
                        lambda provider: ["role_01J0000000000000000000000A"])
    response = client.delete(f"{URL}/{claude.id}", headers=headers)
    assert error(response) == (409, "provider_in_use")
    assert response.get_json()["error"]["details"]["used_by"] == [
        "role_01J0000000000000000000000A"]
    assert client.get(f"{URL}/{claude.id}", headers=headers).status_code == 200


# -- scopes and billing --------------------------------------------------------------------

def test_members_read_providers_but_cannot_change_them(client, org, claude, session):
    member = bearer(make_api_key(make_member(org, role="member")))
    assert client.get(URL, headers=member).status_code == 200
    assert client.get(f"{URL}/{claude.id}", headers=member).status_code == 200
    response = client.post(URL, json={"name": "x", "kind": "scripted", "script": SCRIPT},
                           headers=member)
    assert error(response) == (403, "permission_denied")
    assert error(client.post(f"{URL}/{claude.id}/archive", headers=member)) == \
        (403, "permission_denied")
    denied = session.scalars(sa.select(AuditEntry).where(
        AuditEntry.outcome == "denied", AuditEntry.action == "provider.archive")).one()
    assert denied.target_id == claude.id


def test_operators_manage_providers(client, org):
    operator = bearer(make_api_key(make_member(org, role="operator")))
    assert client.post(URL, json={"name": "x", "kind": "scripted", "script": SCRIPT},
                       headers=operator).status_code == 201


def test_a_read_only_key_cannot_write(client, owner):
    read_only = bearer(make_api_key(owner, template="read_only"))
    assert client.get(URL, headers=read_only).status_code == 200
    assert error(client.post(URL, json={}, headers=read_only)) == (403, "permission_denied")


def test_past_due_orgs_can_wind_down_but_not_add(client, org, headers, claude, session):
    org.billing_posture = "past_due"
    session.commit()
    assert error(client.post(URL, json={"name": "x", "kind": "scripted", "script": SCRIPT},
                             headers=headers)) == (423, "billing_inactive")
    assert error(client.patch(f"{URL}/{claude.id}", json={"name": "y"},
                              headers=headers)) == (423, "billing_inactive")
    assert client.get(URL, headers=headers).status_code == 200
    assert client.post(f"{URL}/{claude.id}/archive", headers=headers).status_code == 200
    assert error(client.post(f"{URL}/{claude.id}/unarchive", headers=headers)) == \
        (423, "billing_inactive")
    assert client.delete(f"{URL}/{claude.id}", headers=headers).status_code == 200


def test_the_openapi_spec_documents_the_routes(client):
    spec = client.get("/v1/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths["/v1/providers/{provider_id}"]) >= {"get", "patch", "delete"}
    assert "409" in paths["/v1/providers/{provider_id}"]["delete"]["responses"]
    assert "post" in paths["/v1/providers/{provider_id}/archive"]
    assert "ScriptStep" in spec["components"]["schemas"]


def test_a_secret_a_provider_uses_cannot_be_deleted(client):
    from tests.factories import bearer, make_api_key, make_member
    from tests.providers.conftest import make_provider, make_secret
    owner = make_member(role="owner")
    secret_id = make_secret(owner, name="OPENAI_KEY")
    provider = make_provider(owner, kind="openai", api_key_secret_id=secret_id,
                             models=["gpt-x"])
    headers = bearer(make_api_key(owner))
    refused = client.delete(f"/v1/secrets/{secret_id}", headers=headers)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "secret_in_use"
    assert refused.get_json()["error"]["details"]["providers"] == [provider.id]
    assert client.delete(f"/v1/providers/{provider.id}", headers=headers).status_code == 200
    assert client.delete(f"/v1/secrets/{secret_id}", headers=headers).status_code == 200
