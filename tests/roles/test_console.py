"""Console: Settings → Roles, signed in with a real console session."""

from __future__ import annotations

import sqlalchemy as sa

from evershell.audit.models import AuditEntry
from evershell.roles import services
from evershell.roles.models import Role
from tests.factories import make_member, make_org, principal_for
from tests.roles.conftest import CAPS, make_provider, make_role

PAGE = "/settings/roles"
HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client, path, data=None, htmx=True):
    headers = {**(HX if htmx else {}), "X-CSRF-Token": client.csrf_token}
    return client.post(path, data=data or {}, headers=headers)


def form(provider, **values) -> dict:
    return {"name": "reviewer", "description": "", "provider_id": provider.id,
            "model": "scripted", "system_prompt": "", "capabilities": CAPS,
            "thinking_effort": "medium", "max_continuations": "20",
            "max_context_tokens": "100000", **values}


def test_owner_sees_the_list_with_every_control(console_client, owner):
    state = make_role(owner.membership, owner.provider, capabilities=CAPS,
                      description="Reviews code")
    html = text(console_client(owner.membership).get(PAGE))
    assert "<html" in html and state.role.name in html and "Reviews code" in html
    assert "read_file, shell" in html
    assert f'href="{PAGE}/new"' in html and f"{PAGE}/{state.role.id}/edit" in html
    assert f'hx-post="{PAGE}/{state.role.id}/archive"' in html
    assert 'name="csrf_token"' in html
    assert 'href="/settings/roles"' in html  # the nav entry


def test_a_member_reads_roles_without_write_controls(console_client, owner):
    state = make_role(owner.membership, owner.provider)
    client = console_client(make_member(owner.org, role="member"))
    html = text(client.get(PAGE))
    assert state.role.name in html
    assert "New role" not in html and "hx-post" not in html and "/edit" not in html
    detail = text(client.get(f"{PAGE}/{state.role.id}"))
    assert "Version history" in detail and ">Edit<" not in detail
    assert client.get(f"{PAGE}/new").status_code == 403
    assert post(client, PAGE, form(owner.provider)).status_code == 403


def test_the_new_role_form_starts_from_the_starter_caps_and_checks_it(console_client, owner):
    html = text(console_client(owner.membership).get(f"{PAGE}/new"))
    assert "tools: [shell, read_file, write_file, list_files]" in html
    assert 'hx-post="/settings/roles/validate"' in html
    assert 'hx-trigger="input changed delay:400ms, change"' in html
    assert 'hx-target="#caps-check"' in html
    assert "Compiles." in html  # the first answer of the live check
    assert f'<option value="{owner.provider.id}" selected>' in html
    assert '<option value="scripted" selected>' in html


def test_live_validation_shows_problems_with_line_and_column(console_client, owner):
    client = console_client(owner.membership)
    bad = post(client, f"{PAGE}/validate",
               {"capabilities": "tools: [shell]\r\nlimits:\r\n  memroy_mb: 512\r\n"})
    html = text(bad)
    assert bad.status_code == 200 and "<html" not in html
    assert "does not compile: 1 problem" in html
    assert "line 3, column 3" in html and "<code>limits.memroy_mb</code>" in html
    assert "did you mean &#39;memory_mb&#39;?" in html
    assert "   3 │   memroy_mb: 512\n     │   ^" in html  # the line, a caret at column 3
    good = text(post(client, f"{PAGE}/validate", {"capabilities": "tools: [shell]"}))
    assert "Compiles." in good and "<code>shell</code>" in good


def test_live_validation_of_an_edit_shows_what_would_change(console_client, owner):
    state = make_role(owner.membership, owner.provider, capabilities=CAPS)
    html = text(post(console_client(owner.membership),
                     f"{PAGE}/validate?role_id={state.role.id}",
                     {"capabilities": "tools: [shell]\nlimits:\n  memory_mb: 4096\n"}))
    assert "2 changes from the saved version" in html
    assert '<code>tools</code> "read_file"' in html
    assert "<code>limits.memory_mb</code> 2048 → 4096" in html


def test_create_through_the_console(console_client, owner, session):
    client = console_client(owner.membership)
    response = post(client, PAGE, form(owner.provider, system_prompt="Hi\r\nthere"))
    assert response.status_code == 204
    role = session.scalar(sa.select(Role).where(Role.org_id == owner.org.id))
    assert response.headers["HX-Redirect"] == f"{PAGE}/{role.id}"
    state = services.get(principal_for(owner.membership), role.id)
    assert state.version.system_prompt == "Hi\nthere"
    assert state.version.capabilities["limits"]["memory_mb"] == 2048
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == role.id))
    assert entry.action == "role.create" and entry.credential_shape == "cookie"
    detail = text(client.get(f"{PAGE}/{role.id}"))
    assert "Created role “reviewer” (version 1)." in detail
    assert "v1" in detail and "memory_mb 2,048" in detail


def test_saving_a_caps_yaml_that_fails_shows_the_problems_inline(console_client, owner,
                                                                  session):
    client = console_client(owner.membership)
    response = post(client, PAGE, form(owner.provider, capabilities="tools: [bash]\n"))
    html = text(response)
    assert response.status_code == 200 and "<html" not in html
    assert "line 1, column 9" in html and "unknown tool &#39;bash&#39;" in html
    assert 'aria-invalid="true"' in html and "tools: [bash]" in html  # kept as typed
    assert session.scalar(sa.select(Role).where(Role.org_id == owner.org.id)) is None
    without_js = post(client, PAGE, form(owner.provider, capabilities="tools: [bash]\n"),
                      htmx=False)
    assert without_js.status_code == 422 and "<html" in text(without_js)


def test_field_refusals_show_on_their_field(console_client, owner):
    make_role(owner.membership, owner.provider, name="taken")
    client = console_client(owner.membership)
    taken = text(post(client, PAGE, form(owner.provider, name="taken")))
    assert "A role named &#39;taken&#39; already exists." in taken
    assert 'id="field-name-error"' in taken
    numbers = text(post(client, PAGE, form(owner.provider, max_continuations="lots")))
    assert "Must be a whole number." in numbers
    model = text(post(client, PAGE, form(owner.provider, model="gpt-9")))
    assert "does not serve &#39;gpt-9&#39;" in model


def test_edit_writes_a_new_version_and_history_shows_the_diff(console_client, owner):
    state = make_role(owner.membership, owner.provider, capabilities=CAPS,
                      system_prompt="Be kind.")
    client = console_client(owner.membership)
    url = f"{PAGE}/{state.role.id}"
    edit = text(client.get(f"{url}/edit"))
    assert "Save as version 2" in edit and 'hx-post="/settings/roles/validate?role_id=' in edit
    same = post(client, url, form(owner.provider, name=state.role.name,
                                  system_prompt="Be kind."))
    assert same.status_code == 204
    assert "Nothing changed" in text(client.get(url))
    changed = post(client, url, form(owner.provider, name=state.role.name,
                                     system_prompt="Be exact.",
                                     capabilities="tools: [shell]\n"))
    assert changed.status_code == 204
    detail = text(client.get(url))
    assert "Saved “" in detail and "as version 2." in detail
    assert "system prompt, capabilities" in detail and "Diff with v1" in detail
    diff = client.get(f"{url}/diff?to=2")
    html = text(diff)
    assert diff.status_code == 200 and "v1 → v2" in html
    assert '<span class="diff-line diff-del">-Be kind.</span>' in html
    assert '<span class="diff-line diff-add">+Be exact.</span>' in html
    assert '<code>tools</code> "read_file"' in html  # removed from the compiled set
    assert "<code>limits.memory_mb</code> 2048 → 1024" in html
    missing = client.get(f"{url}/diff?to=9")
    assert missing.status_code == 404 and "has no version 9" in text(missing)


def test_archive_unarchive_and_delete_from_the_list(console_client, owner, session):
    state = make_role(owner.membership, owner.provider)
    client = console_client(owner.membership)
    archived = text(post(client, f"{PAGE}/{state.role.id}/archive"))
    assert "Archived “" in archived and state.role.name not in archived.split("</div>", 1)[1]
    listed = text(client.get(f"{PAGE}?archived=true", headers=HX))
    assert state.role.name in listed and "Unarchive" in listed
    back = text(post(client, f"{PAGE}/{state.role.id}/unarchive?archived=true"))
    assert "Unarchived" in back
    gone = text(post(client, f"{PAGE}/{state.role.id}/delete"))
    assert "and all its versions" in gone
    assert session.get(Role, state.role.id) is None
    missing = text(post(client, f"{PAGE}/{state.role.id}/delete"))
    assert "was not found" in missing


def test_another_orgs_role_is_a_404_page(console_client, owner):
    foreign = make_role(make_member(make_org(), role="owner"))
    client = console_client(owner.membership)
    for path in ("", "/edit", "/diff"):
        response = client.get(f"{PAGE}/{foreign.role.id}{path}")
        assert response.status_code == 404 and "<html" in text(response)


def test_choosing_a_provider_offers_its_models(console_client, owner):
    other = make_provider(owner.membership, models=["big", "small"])
    client = console_client(owner.membership)
    html = text(client.get(f"{PAGE}/models?provider_id={other.id}", headers=HX))
    assert '<option value="big">big</option>' in html and "scripted" not in html


def test_live_validation_needs_the_csrf_token_and_an_own_role(console_client, owner):
    client = console_client(owner.membership)
    forged = client.post(f"{PAGE}/validate", data={"capabilities": "tools: []"}, headers=HX)
    assert forged.status_code == 403
    foreign = make_role(make_member(make_org(), role="owner"))
    response = post(client, f"{PAGE}/validate?role_id={foreign.role.id}",
                    {"capabilities": "tools: []"})
    assert response.status_code == 404
