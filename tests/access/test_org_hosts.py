"""With EVERSHELL_BASE_DOMAIN set, ``<slug>.<base>`` names an org explicitly: a credential
of another org is 403 permission_denied ("cross-org access attempted")."""

import pytest

from tests.factories import bearer, make_api_key, make_member, make_org


@pytest.fixture
def base_domain(app):
    app.config["BASE_DOMAIN"] = "evershell.test"
    yield "evershell.test"
    app.config["BASE_DOMAIN"] = None


def test_credential_of_the_named_org_works(client, base_domain):
    org = make_org(slug="acme")
    headers = bearer(make_api_key(make_member(org, role="member")))
    response = client.get("/v1/me", headers=headers, base_url="http://acme.evershell.test")
    assert response.status_code == 200


def test_credential_of_another_org_is_403(client, base_domain):
    make_org(slug="acme")
    other = bearer(make_api_key(make_member(make_org(slug="beta"), role="owner")))
    response = client.get("/v1/me", headers=other, base_url="http://acme.evershell.test")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "permission_denied"
    assert "cross-org" in response.get_json()["error"]["message"]


def test_without_a_slug_host_the_org_is_the_credentials(client, base_domain):
    org = make_org(slug="gamma")
    headers = bearer(make_api_key(make_member(org, role="member")))
    me = client.get("/v1/me", headers=headers, base_url="http://localhost").get_json()
    assert me["org"]["slug"] == "gamma"
