"""/v1/providers: create per kind, list, get, update, archive, unarchive, delete; names,
secret references, the SSRF rule through the API, scopes, billing, audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.providers import services
from evershell.providers.models import Provider
from tests.factories import bearer, make_api_key, make_member, make_org
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
def secret_id(owner):
    return make_secret(owner, "ANTHROPIC_API_KEY")


def error(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def fields(response) -> dict:
    assert error(response) == (400, "validation_error"), response.get_json()
    return response.get_json()["error"]["details"]["fields"]


def audit_entries(session, target_id: str) -> list[AuditEntry]:
    return list(session.scalars(sa.select(AuditEntry).where(
        AuditEntry.target_id == target_id).order_by(AuditEntry.id)))


def create(client, headers, **body):
    return client.post(URL, json=body, headers=headers)


# -- create, per kind ----------------------------------------------------------------------

def test_anthropic_gets_the_default_base_url_and_names_its_secret(client, headers, secret_id,
                                                                   session):
    response = create(client, headers, name="Claude", kind="anthropic",
                      api_key_secret_id=secret_id, models=["claude-sonnet-4-5"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"].startswith("prov_")
    assert body["base_url"] == "https://api.anthropic.com"
    assert body["api_key_secret_id"] == secret_id
    assert body["models"] == ["claude-sonnet-4-5"]
    assert body["script"] is None and body["status"] == "active" and body["archived_at"] is None
    assert "sk-test-value" not in response.get_data(as_text=True)
    (entry,) = audit_entries(session, body["id"])
    assert entry.action == "provider.create" and entry.outcome == "success"
    assert entry.details["kind"] == "anthropic" and entry.details["name"] == "Claude"
    assert entry.details["key_reference"] == secret_id


def test_openai_defaults_to_the_openai_api(client, headers, secret_id):
    body = create(client, headers, name="GPT", kind="openai", api_key_secret_id=secret_id,
                  models=["gpt-4.1"]).get_json()
    assert body["base_url"] == "https://api.openai.com/v1"


def test_an_explicit_base_url_is_stored_normalised(client, headers, secret_id):
    body = create(client, headers, name="Proxy", kind="anthropic", api_key_secret_id=secret_id,
                  models=["m"], base_url="HTTPS://Models.Example.com/anthropic/").get_json()
    assert body["base_url"] == "https://models.example.com/anthropic"


def test_openai_compatible_needs_a_base_url_and_the_key_is_optional(client, headers):
    assert "base_url" in fields(create(client, headers, name="vLLM",
                                       kind="openai_compatible", models=["llama"]))
    response = create(client, headers, name="vLLM", kind="openai_compatible",
                      base_url="https://models.example.com/v1", models=["llama-3.1-8b"])
    assert response.status_code == 201
    assert response.get_json()["api_key_secret_id"] is None


def test_scripted_plays_a_stored_script_and_defaults_its_model(client, headers):
    response = create(client, headers, name="Demo", kind="scripted", script=SCRIPT)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["models"] == ["scripted"]
    assert body["base_url"] is None and body["api_key_secret_id"] is None
    assert body["script"][1] == SCRIPT[1]
    assert body["script"][0] == {"text": "Let me look at the uploads."}


def test_scripted_tool_calls_default_to_empty_arguments(client, headers):
    body = create(client, headers, name="Demo", kind="scripted",
                  script=[{"tool_calls": [{"name": "finish"}]}]).get_json()
    assert body["script"] == [{"tool_calls": [{"name": "finish", "arguments": {}}]}]


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"kind": "anthropic", "models": ["m"]}, "api_key_secret_id", "Required"),
    ({"kind": "openai", "models": ["m"]}, "api_key_secret_id", "Required"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET"}, "models", "at least one"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": []}, "models",
     "at least one"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": ["a", " a "]}, "models",
     "twice"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": ["  "]}, "models",
     "non-empty"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": ["x" * 201]}, "models",
     "at most 200"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": [f"m{i}" for i in
                                                                     range(101)]}, "models",
     "At most 100"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": ["m"], "script": SCRIPT},
     "script", "Only scripted"),
    ({"kind": "scripted", "script": SCRIPT, "base_url": "https://models.example.com"},
     "base_url", "no base URL"),
    ({"kind": "scripted", "script": SCRIPT, "api_key_secret_id": "SECRET"},
     "api_key_secret_id", "no API key"),
    ({"kind": "scripted"}, "script", "need a script"),
    ({"kind": "gemini", "models": ["m"]}, "kind", "Must be one of"),
    ({"kind": "anthropic", "name": "   ", "api_key_secret_id": "SECRET", "models": ["m"]},
     "name", "required"),
    ({"kind": "anthropic", "api_key_secret_id": "SECRET", "models": ["m"], "colour": "red"},
     "colour", "Unknown field"),
])
def test_each_kinds_rules(client, headers, secret_id, body, field, message):
    body = {"name": "P", **body}
    for key, value in body.items():
        if value == "SECRET":
            body[key] = secret_id
    problems = fields(client.post(URL, json=body, headers=headers))
    assert list(problems) == [field]
    assert message in str(problems[field])


def test_every_problem_is_reported_at_once(client, headers):
    problems = fields(create(client, headers, name="P", kind="anthropic", models=[],
                             script=SCRIPT, base_url="http://169.254.169.254/"))
    assert set(problems) == {"api_key_secret_id", "models", "script", "base_url"}


def test_a_missing_name_or_kind_is_a_validation_error(client, headers):
    problems = fields(client.post(URL, json={}, headers=headers))
    assert set(problems) == {"name", "kind"}


# -- secret references ---------------------------------------------------------------------

def test_another_orgs_secret_reads_as_no_secret(client, headers):
    elsewhere = make_secret(make_member(make_org(), role="owner"), "THEIR_KEY")
    response = create(client, headers, name="P", kind="anthropic", models=["m"],
                      api_key_secret_id=elsewhere)
    assert fields(response) == {"api_key_secret_id": [
        f"No secret {elsewhere!r} in this organisation."]}
    missing = create(client, headers, name="P", kind="anthropic", models=["m"],
                     api_key_secret_id="sec_00000000000000000000000000")
    assert "No secret" in fields(missing)["api_key_secret_id"][0]


def test_a_secret_in_use_cannot_be_deleted_from_under_its_provider(owner, secret_id, session):
    from evershell.core.errors import EvershellError
    from evershell.secrets import services as secrets
    from tests.factories import principal_for
    provider = make_provider(owner, kind="anthropic", api_key_secret_id=secret_id,
                             models=["m"])
    assert services.providers_using_secret(owner.org_id, secret_id) == [provider.id]
    assert services.providers_using_secret(owner.org_id, "sec_other") == []
    with pytest.raises((EvershellError, sa.exc.IntegrityError)):
        secrets.delete(principal_for(owner), secret_id)
        session.flush()
    session.rollback()
    assert session.get(Provider, provider.id).api_key_secret_id == secret_id


# -- the SSRF rule through the API -----------------------------------------------------------

@pytest.mark.parametrize("url", ["http://169.254.169.254/v1", "http://[::ffff:169.254.169.254]/",
                                 "http://metadata.google.internal/", "http://2852039166/"])
def test_metadata_addresses_are_refused_even_with_private_networks_allowed(
        client, headers, url, private_networks_allowed):
    response = create(client, headers, name="P", kind="openai_compatible", models=["m"],
                      base_url=url)
    assert list(fields(response)) == ["base_url"]


def test_local_model_servers_need_the_operators_permission(client, headers, monkeypatch):
    body = {"name": "Ollama", "kind": "openai_compatible", "models": ["llama3"],
            "base_url": "http://127.0.0.1:11434/v1"}
    refused = fields(client.post(URL, json=body, headers=headers))
    assert "EVERSHELL_ALLOW_PRIVATE_NETWORKS" in refused["base_url"][0]
    monkeypatch.setenv("EVERSHELL_ALLOW_PRIVATE_NETWORKS", "true")
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 201
    assert response.get_json()["base_url"] == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize("url", ["ftp://models.example.com/", "http://u:p@models.example.com/",
                                 "models.example.com"])
def test_base_urls_must_be_plain_http_or_https(client, headers, url):
    response = create(client, headers, name="P", kind="openai_compatible", models=["m"],
                      base_url=url)
    assert list(fields(response)) == ["base_url"]


# -- scripts -------------------------------------------------------------------------------

@pytest.mark.parametrize(("script", "where"), [
    ([{}], ["0", "_schema"]),
    ([{"text": "hi", "role": "user"}], ["0", "role"]),
    ([{"text": ""}], ["0", "text"]),
    ([{"tool_calls": []}], ["0", "tool_calls"]),
    ([{"tool_calls": [{"name": "bash", "arguments": "ls"}]}], ["0", "tool_calls", "0",
                                                               "arguments"]),
    ([{"tool_calls": [{"name": "rm -rf", "arguments": {}}]}], ["0", "tool_calls", "0",
                                                              "name"]),
    ([{"tool_calls": [{"arguments": {}}]}], ["0", "tool_calls", "0", "name"]),
    ([{"text": "ok"}, {"tool_calls": [{"name": "a", "arguments": {}, "id": "x"}]}],
     ["1", "tool_calls", "0", "id"]),
    ("just text", []),
])
def test_scripts_accept_only_assistant_turns(client, headers, script, where):
    problems = fields(create(client, headers, name="Demo", kind="scripted", script=script))
    assert list(problems) == ["script"]
    node = problems["script"]
    for key in where:
        node = node[key]
    assert node


def test_scripts_have_size_limits(client, headers):
    too_long = [{"text": "x"}] * 201
    assert "200 steps" in str(fields(create(client, headers, name="A", kind="scripted",
                                            script=too_long)))
    too_big = [{"text": "x" * 40_000}, {"text": "y" * 40_000}]
    assert "64 KiB" in str(fields(create(client, headers, name="B", kind="scripted",
                                         script=too_big)))
    assert "at least one step" in str(fields(create(client, headers, name="C",
                                                    kind="scripted", script=[])))


# -- names ---------------------------------------------------------------------------------

def test_names_are_unique_in_the_org_archived_providers_included(client, headers, owner,
                                                                  session):
    first = make_provider(owner, name="Shared")
    response = create(client, headers, name="Shared", kind="scripted", script=SCRIPT)
    assert error(response) == (409, "name_taken")
    assert response.get_json()["error"]["details"] == {"name": "Shared"}
    client.post(f"{URL}/{first.id}/archive", headers=headers)
    assert error(create(client, headers, name="Shared", kind="scripted",
                        script=SCRIPT)) == (409, "name_taken")
    other_org = bearer(make_api_key(make_member(make_org(), role="owner")))
    assert create(client, other_org, name="Shared", kind="scripted",
                  script=SCRIPT).status_code == 201


def test_a_name_taken_between_check_and_insert_is_still_name_taken(client, headers, owner,
                                                                   monkeypatch):
    make_provider(owner, name="Racy")
    answers = iter([False, True])  # the pre-check misses it; the constraint catches it
    monkeypatch.setattr(services, "_name_in_use", lambda *args, **kwargs: next(answers))
    response = create(client, headers, name="Racy", kind="scripted", script=SCRIPT)
    assert error(response) == (409, "name_taken")
