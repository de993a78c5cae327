"""What a new user meets in Chromium: a secret's delete dialog names the role using it,
the role form's capabilities reference opens in place (the unsaved form stays), the
last owner is offered no Remove, and an invitation link's sign-in page names the
inviter, org and role. Set EVERSHELL_SCREENSHOTS=<dir> to keep screenshots."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import requests

from tests.e2e.pages import Console

_n = itertools.count()


def shot(page, name: str) -> None:
    folder = os.environ.get("EVERSHELL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


@pytest.fixture
def owner(page, live_server):
    n = next(_n)
    slug = f"hints-{n}"
    live_server.cli("org", "create", "--name", f"Hints {n}", "--slug", slug)
    email = f"owner{n}@hints.test"
    live_server.cli("user", "add", "--org", slug, "--email", email, "--role", "owner")
    key = live_server.cli("apikey", "create", "--org", slug, "--user", email,
                          "--name", "seed").strip().splitlines()[-1]
    Console(page, live_server.url).sign_in(email, "/settings/api-keys")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    return {"email": email, "api": api, "url": live_server.url}


def seed_role_using_a_secret(owner) -> None:
    url, api = owner["url"], owner["api"]
    assert api.post(f"{url}/v1/secrets", json={"name": "GITHUB_BOT_TOKEN", "value": "v"},
                    timeout=10).status_code == 201
    provider = api.post(f"{url}/v1/providers", json={
        "name": "Offline", "kind": "scripted", "script": [{"text": "Done."}]}, timeout=10)
    assert provider.status_code == 201, provider.text
    role = api.post(f"{url}/v1/roles", json={
        "name": "triage", "provider_id": provider.json()["id"], "model": "scripted",
        "capabilities": "tools: [shell]\nenv:\n  GITHUB_TOKEN: {secret: GITHUB_BOT_TOKEN}\n"},
        timeout=10)
    assert role.status_code == 201, role.text


def test_deleting_a_used_secret_names_its_role(page, owner):
    seed_role_using_a_secret(owner)
    page.goto(owner["url"] + "/settings/secrets")
    shot(page, "secrets")
    messages = []

    def answer(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.get_by_role("row").filter(has_text="GITHUB_BOT_TOKEN") \
        .get_by_role("button", name="Delete").click()
    page.get_by_role("alert").wait_for()
    assert "is used by role “triage”" in messages[0]
    assert "is used by role “triage”" in page.get_by_role("alert").inner_text()
    shot(page, "secrets-refused")


def test_the_capabilities_reference_opens_in_the_form(page, owner):
    seed_role_using_a_secret(owner)
    page.goto(owner["url"] + "/settings/roles/new")
    page.locator("#field-name").fill("unsaved draft")
    page.get_by_text("Capabilities reference").click()
    reference = page.locator("#caps-reference")
    assert reference.get_by_text("GITHUB_TOKEN: {secret: GITHUB_BOT_TOKEN}").first.is_visible()
    assert page.locator("#field-name").input_value() == "unsaved draft"
    shot(page, "role-form-reference")


def test_invitation_link_and_last_owner(page, browser, owner):
    invited = owner["api"].post(owner["url"] + "/v1/memberships", json={
        "email": "newbie@hints.test", "role": "operator"}, timeout=10).json()
    page.goto(owner["url"] + "/settings/members")
    own_row = page.get_by_role("row").filter(has_text=owner["email"])
    assert own_row.get_by_role("button", name="Remove").count() == 0
    assert own_row.locator("select").count() == 0
    shot(page, "members")
    page.goto(owner["url"] + "/settings/api-keys")
    shot(page, "api-keys")

    stranger = browser.new_context().new_page()  # the invited person, signed out
    stranger.goto(invited["invite_url"])
    note = stranger.locator("#invitation-note")
    assert "invited you to join" in note.inner_text() and "operator" in note.inner_text()
    shot(stranger, "sign-in-invitation")
    stranger.goto(owner["url"] + "/sign-in?invitation=inv_00000000000000000000000000")
    assert "not valid any more" in stranger.locator("#invitation-note").inner_text()
    stranger.context.close()
