"""Console: Settings → Providers, signed in with a real console session."""

from __future__ import annotations

import json
import re

import sqlalchemy as sa

from evershell.providers.models import Provider
from tests.factories import make_member, make_org
from tests.providers.conftest import SCRIPT, make_provider, make_secret

PAGE = "/settings/providers"
HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, path, data=None, htmx=True):
    headers = {**(HX if htmx else {}), "X-CSRF-Token": client.csrf_token}
    return client.post(path, data=data or {}, headers=headers)


def test_owner_sees_providers_and_every_control(console_client):
    org = make_org()
    owner = make_member(org, role="owner")
    secret = make_secret(owner, "ANTHROPIC_API_KEY")
    claude = make_provider(owner, name="Claude", kind="anthropic", models=["claude-sonnet-4-5"],
                           api_key_secret_id=secret)
    make_provider(make_member(make_org(), role="owner"), name="Elsewhere")
    page = console_client(owner).get(PAGE)
    html = text(page)
    assert page.status_code == 200 and "<html" in html
    assert "Claude" in html and "https://api.anthropic.com" in html
    assert "ANTHROPIC_API_KEY" in html  # the secret by name, never its value
    assert "sk-test-value" not in html and "Elsewhere" not in html
    assert f'href="{PAGE}/new"' in html
    assert f"{PAGE}/{claude.id}/edit" in html and f"{PAGE}/{claude.id}/archive" in html
    assert f"{PAGE}/{claude.id}/delete" in html and 'name="csrf_token"' in html


def test_members_read_the_list_without_write_controls(console_client):
    org = make_org()
    make_provider(make_member(org, role="owner"), name="Demo")
    client = console_client(make_member(org, role="member"))
    home = text(client.get("/"))
    assert f'href="{PAGE}"' in home
    html = text(client.get(PAGE))
    assert "Demo" in html
    assert "New provider" not in html and "Archive" not in html and "Delete" not in html
    # the only thing a reader may post is a connection test (read-class)
    posts = re.findall(r'hx-post="([^"]+)"', html)
    assert posts and all(url.endswith("/check") for url in posts)
    assert client.get(f"{PAGE}/new").status_code == 403


def test_signed_out_people_go_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_the_create_form_adapts_to_the_kind(console_client):
    owner = make_member(role="owner")
    make_secret(owner, "OPENAI_API_KEY")
    client = console_client(owner)
    page = text(client.get(f"{PAGE}/new"))
    assert "<html" in page and 'name="base_url"' in page and 'name="script"' not in page
    assert 'placeholder="https://api.anthropic.com"' in page
    assert "OPENAI_API_KEY" in page  # the secret picker
    assert 'hx-get="/settings/providers/new"' in page and 'hx-params="not csrf_token"' in page

    scripted = client.get(f"{PAGE}/new", query_string={"kind": "scripted", "name": "Demo"},
                          headers=HX)
    fragment = text(scripted)
    assert "<html" not in fragment
    assert 'name="script"' in fragment and 'name="base_url"' not in fragment
    assert 'name="api_key_secret_id"' not in fragment
    assert 'value="Demo"' in fragment  # what was typed survives the switch

    compatible = text(client.get(f"{PAGE}/new", query_string={"kind": "openai_compatible"},
                                 headers=HX))
    assert 'name="base_url"' in compatible and "Ollama" in compatible
    assert '<option value="">None</option>' in compatible  # the key is optional here


def test_creating_through_the_form_lands_on_the_list(console_client, session):
    owner = make_member(role="owner")
    secret = make_secret(owner, "ANTHROPIC_API_KEY")
    client = console_client(owner)
    response = post(client, PAGE, {"kind": "anthropic", "name": "Claude", "base_url": "",
                                   "api_key_secret_id": secret,
                                   "models": "claude-sonnet-4-5\nclaude-opus-4-1, claude-haiku"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == PAGE
    provider = session.scalars(sa.select(Provider).where(Provider.org_id == owner.org_id)).one()
    assert provider.base_url == "https://api.anthropic.com"
    assert provider.models == ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku"]
    assert "Created provider “Claude”." in text(client.get(PAGE))


def test_a_scripted_provider_from_the_form_without_htmx(console_client, session):
    owner = make_member(role="owner")
    client = console_client(owner)
    response = post(client, PAGE, {"kind": "scripted", "name": "Demo", "models": "",
                                   "script": json.dumps(SCRIPT)}, htmx=False)
    assert response.status_code == 303 and response.headers["Location"].endswith(PAGE)
    provider = session.scalars(sa.select(Provider).where(Provider.org_id == owner.org_id)).one()
    assert provider.kind == "scripted" and provider.models == ["scripted"]
    assert provider.script[1] == SCRIPT[1]


def test_form_errors_show_next_to_their_fields(console_client):
    owner = make_member(role="owner")
    client = console_client(owner)
    response = post(client, PAGE, {"kind": "openai_compatible", "name": "Local",
                                   "base_url": "http://169.254.169.254/", "models": ""})
    html = text(response)
    assert response.status_code == 200 and "<html" not in html
    assert "cloud metadata address" in html and "List at least one model name." in html
    assert 'value="Local"' in html and 'aria-invalid="true"' in html

    bad_json = post(client, PAGE, {"kind": "scripted", "name": "Demo", "script": "[{"},
                    htmx=False)
    assert bad_json.status_code == 400 and "Not valid JSON" in text(bad_json)
    nested = post(client, PAGE, {"kind": "scripted", "name": "Demo", "script": json.dumps(
        [{"text": "hi"}, {"tool_calls": [{"name": "no spaces", "arguments": {}}]}])})
    assert "Step 2 › tool call 1 › name: A tool name is" in text(nested)


def test_editing_keeps_the_kind_and_saves_changes(console_client, session):
    owner = make_member(role="owner")
    demo = make_provider(owner, name="Demo")
    client = console_client(owner)
    page = text(client.get(f"{PAGE}/{demo.id}/edit"))
    assert 'value="Demo"' in page and "the kind cannot change" in page
    assert "Let me look at the uploads." in page and 'name="kind"' not in page
    response = post(client, f"{PAGE}/{demo.id}",
                    {"name": "Demo 2", "models": "scripted", "script": json.dumps(SCRIPT[:1])})
    assert response.status_code == 204
    session.expire_all()
    saved = session.get(Provider, demo.id)
    assert saved.name == "Demo 2" and saved.script == SCRIPT[:1]
    other = make_member(make_org(), role="owner")
    assert console_client(other).get(f"{PAGE}/{demo.id}/edit").status_code == 404


def test_archive_unarchive_and_delete_from_the_list(console_client, session):
    owner = make_member(role="owner")
    demo = make_provider(owner, name="Demo")
    client = console_client(owner)
    archived = text(post(client, f"{PAGE}/{demo.id}/archive"))
    assert "Archived “Demo”" in archived and "No providers yet" in archived
    listing = text(client.get(PAGE, query_string={"archived": "true"}))
    assert "Demo" in listing and "Unarchive" in listing and "badge-archived" in listing
    restored = text(post(client, f"{PAGE}/{demo.id}/unarchive?archived=true"))
    assert "Unarchived “Demo”" in restored and "No archived providers" in restored
    deleted = text(post(client, f"{PAGE}/{demo.id}/delete"))
    assert "Deleted “Demo”" in deleted
    assert session.get(Provider, demo.id) is None


def test_a_past_due_org_can_only_wind_down(console_client, session):
    org = make_org()
    owner = make_member(org, role="owner")
    demo = make_provider(owner, name="Demo")
    org.billing_posture = "past_due"
    session.commit()
    client = console_client(owner)
    html = text(client.get(PAGE))
    assert "paused until billing is active again" in html
    assert "New provider" not in html and f"{demo.id}/edit" not in html
    assert post(client, PAGE, {"kind": "scripted", "name": "x"}).status_code == 423
    assert "Archived “Demo”" in text(post(client, f"{PAGE}/{demo.id}/archive"))


def test_a_refused_delete_shows_why_in_the_list(console_client, monkeypatch):
    from evershell.providers import services
    owner = make_member(role="owner")
    demo = make_provider(owner, name="Demo")
    monkeypatch.setattr(services, "provider_references", lambda provider: ["role_x"])
    client = console_client(owner)
    html = text(post(client, f"{PAGE}/{demo.id}/delete"))
    assert "is used by 1 role(s)" in html and 'role="alert"' in html and "Demo" in html
    page = post(client, f"{PAGE}/{demo.id}/delete", htmx=False)
    assert page.status_code == 409 and "<html" in text(page)
