"""Signing in through the local AuthKit server in Chromium, as an Owner and as a Member:
each sees exactly what they may use, and a key made in the console works with the API."""

from __future__ import annotations

import itertools

import pytest
import requests

from tests.e2e.pages import ApiKeysPage, Console

_n = itertools.count()


@pytest.fixture
def org(live_server):
    n = next(_n)
    slug = f"acme-{n}"
    live_server.cli("org", "create", "--name", f"Acme {n}", "--slug", slug)
    owner, member = f"owner{n}@acme.test", f"member{n}@acme.test"
    live_server.cli("user", "add", "--org", slug, "--email", owner, "--role", "owner")
    live_server.cli("user", "add", "--org", slug, "--email", member, "--role", "member")
    return {"slug": slug, "owner": owner, "member": member}


def test_owner_sees_every_settings_page(page, live_server, org):
    console = Console(page, live_server.url).sign_in(org["owner"])
    assert console.nav_labels == ["Workspaces", "Roles", "Providers", "Packs", "Secrets",
                                  "Credentials", "Members", "API keys", "Audit log",
                                  "Organisation"]
    assert page.get_by_role("heading", name=f"Welcome, {org['owner']}").is_visible()


def test_member_sees_only_what_a_member_may_use(page, live_server, org):
    console = Console(page, live_server.url).sign_in(org["member"])
    assert console.nav_labels == ["Workspaces", "Roles", "Providers", "Packs",
                                  "Credentials", "API keys", "Organisation"]
    response = page.goto(live_server.url + "/audit")
    assert response.status == 403
    page.goto(live_server.url + "/settings/org")
    assert page.get_by_role("button", name="Save").count() == 0  # no org:write


def test_owner_creates_a_key_in_the_console_and_uses_it(page, live_server, org):
    Console(page, live_server.url).sign_in(org["owner"], "/settings/api-keys")
    keys = ApiKeysPage(page, live_server.url)
    secret = keys.create("ci", "read_only")
    assert secret.startswith("sk_")
    me = requests.get(f"{live_server.url}/v1/me",
                      headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert me.status_code == 200 and me.json()["email"] == org["owner"]
    page.get_by_role("button", name="I've stored it").click()
    page.reload()
    assert secret not in page.content()  # shown once only
    keys.revoke("ci")
    again = requests.get(f"{live_server.url}/v1/me",
                         headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert again.status_code == 401


def test_sign_out_returns_to_sign_in(page, live_server, org):
    console = Console(page, live_server.url).sign_in(org["member"])
    console.sign_out()
    page.wait_for_url(f"{live_server.url}/sign-in*")
    page.goto(live_server.url + "/")
    assert "/sign-in" in page.url
