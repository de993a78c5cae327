"""POST /v1/providers/{id}/check: reachability, the key, each configured model, latency;
read-class (never 423); the SSRF rules at connect time; and the console's Test
connection button."""

from __future__ import annotations

import pytest

from evershell.extensions import db
from evershell.orgs.models import Org
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.providers.conftest import make_provider, make_secret
from tests.support.model_servers import ModelServer

KEY = "sk-check-key-abcdef123456"


@pytest.fixture
def owner():
    return make_member(make_org(), role="owner")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner))


@pytest.fixture(params=["anthropic", "openai", "openai_compatible"])
def served(request, owner, private_networks_allowed):
    """A provider of each kind pointing at a local server that speaks its protocol."""
    kind = request.param
    server = ModelServer("anthropic" if kind == "anthropic" else "openai", api_key=KEY).start()
    model = server.models[0]
    provider = make_provider(owner, kind=kind, base_url=server.base_url,
                             api_key_secret_id=make_secret(owner, "KEY", KEY),
                             models=[model, "not-served-model"])
    yield provider, server
    server.stop()


def check(client, headers, provider_id):
    return client.post(f"/v1/providers/{provider_id}/check", headers=headers)


def test_a_check_reports_the_key_and_each_model(client, headers, served):
    provider, server = served
    response = check(client, headers, provider.id)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert (report["reachable"], report["authenticated"], report["ok"]) == (True, True, False)
    assert report["models"] == [{"name": server.models[0], "available": True},
                                {"name": "not-served-model", "available": False}]
    assert report["listed_models"] == len(server.models) and report["code"] is None
    assert "not-served-model" in report["message"] and report["latency_ms"] >= 0
    # the listing, then a retrieve of the one name it did not show: nothing is posted
    assert [r["method"] for r in server.requests] == ["GET", "GET"]
    assert server.requests[1]["path"].endswith("/models/not-served-model")
    assert KEY not in response.get_data(as_text=True)


def test_an_alias_the_provider_resolves_counts_as_served(client, headers, owner,
                                                        private_networks_allowed):
    server = ModelServer("anthropic", api_key=KEY).start()
    try:
        provider = make_provider(owner, kind="anthropic", base_url=server.base_url,
                                 api_key_secret_id=make_secret(owner, "KEY", KEY + "\n"),
                                 models=["claude-sonnet-4-5"])  # listed with its date
        report = check(client, headers, provider.id).get_json()
        assert report["ok"] is True, report  # the pasted line break is not sent either
    finally:
        server.stop()


def test_a_check_with_every_model_listed_is_ok(client, headers, owner, served):
    provider, server = served
    provider.models = [server.models[0]]
    db.session.commit()
    report = check(client, headers, provider.id).get_json()
    assert report["ok"] is True and "including every configured one" in report["message"]


def test_a_refused_key_is_reported_not_raised(client, headers, served):
    provider, server = served
    server.api_key = "sk-a-different-key-999999"
    report = check(client, headers, provider.id).get_json()
    assert (report["ok"], report["reachable"], report["authenticated"]) == (False, True, False)
    assert report["code"] == "provider_auth_failed"
    assert [m["available"] for m in report["models"]] == [None, None]
    assert KEY[-6:] not in report["message"]


def test_an_unreachable_provider_is_reported(client, headers, served):
    provider, server = served
    server.stop()
    report = check(client, headers, provider.id).get_json()
    assert (report["ok"], report["reachable"], report["code"]) == (
        False, False, "provider_unreachable")


def test_the_check_honours_the_address_rules_at_connect_time(client, headers, served,
                                                            monkeypatch):
    provider, server = served
    monkeypatch.setenv("EVERSHELL_ALLOW_PRIVATE_NETWORKS", "false")  # changed since saved
    report = check(client, headers, provider.id).get_json()
    assert (report["reachable"], report["code"]) == (False, "provider_address_refused")
    assert "loopback" in report["message"] and server.requests == []


def test_a_server_without_a_model_listing_says_so(client, headers, served):
    provider, server = served
    server.models_status = 404
    report = check(client, headers, provider.id).get_json()
    assert (report["reachable"], report["code"]) == (True, "provider_model_not_found")
    assert "no model listing" in report["message"]


def test_a_provider_whose_key_is_empty_says_so_without_calling(client, headers, owner,
                                                               private_networks_allowed):
    server = ModelServer("openai", api_key=KEY).start()
    try:
        provider = make_provider(owner, kind="openai", base_url=server.base_url,
                                 api_key_secret_id=make_secret(owner, "KEY", "  \n"),
                                 models=["gpt-4o"])
        report = check(client, headers, provider.id).get_json()
        assert (report["ok"], report["code"]) == (False, "provider_auth_failed")
        assert "no API key" in report["message"] and server.requests == []
    finally:
        server.stop()


def test_scripted_providers_need_no_connection(client, headers, owner):
    provider = make_provider(owner)
    report = check(client, headers, provider.id).get_json()
    assert report["ok"] is True and report["reachable"] is None
    assert "nothing to connect to" in report["message"]


def test_a_check_is_read_class_and_scoped(client, owner, served):
    provider, _ = served
    org = db.session.get(Org, owner.org_id)
    org.billing_posture = "past_due"
    db.session.commit()
    viewer = make_member(org, role="member")  # providers:read only
    assert check(client, bearer(make_api_key(viewer)), provider.id).status_code == 200
    stranger = make_member(make_org(), role="owner")
    response = check(client, bearer(make_api_key(stranger)), provider.id)
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        404, "provider_not_found")


def test_the_console_has_a_test_connection_button(console_client, owner, served):
    provider, server = served
    client = console_client(owner)
    page = client.get("/settings/providers").get_data(as_text=True)
    assert f"/settings/providers/{provider.id}/check" in page and "Test connection" in page
    fragment = client.post(f"/settings/providers/{provider.id}/check",
                           headers={"HX-Request": "true",
                                    "X-CSRF-Token": client.csrf_token}).get_data(as_text=True)
    assert "not-served-model" in fragment and "Connected in" in fragment
