"""The Workspaces console: what each role sees, which buttons show in which status (each
behind a confirmation, none leading to a 403), the live SSE fragments, and a list
whose query count does not grow with its rows."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from evershell.core.db import utcnow
from evershell.extensions import db
from evershell.workspaces import services
from evershell.workspaces.models import Snapshot, Workspace
from tests.factories import make_member, make_org, principal_for
from tests.roles.conftest import make_provider, make_role
from tests.workspaces.conftest import queued

LIST = "/workspaces"
BUTTONS = ("Stop", "Start", "Fork", "Archive", "Unarchive", "Delete")


@pytest.fixture
def org():
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner")


@pytest.fixture
def role(owner):
    return make_role(owner, provider=make_provider(owner), name="code-reviewer")


def _workspace(membership, role, status: str | None = None, snapshot: bool = False,
               archived: bool = False) -> str:
    """A workspace of ``membership``'s, moved straight to ``status`` (no job runs)."""
    workspace = services.create(principal_for(membership), role.role.id)
    workspace_id = workspace.id
    values = {}
    if status:
        values["status"] = status
    if archived:
        values["archived_at"] = utcnow()
    if values:
        db.session.execute(sa.update(Workspace).where(Workspace.id == workspace_id)
                           .values(**values))
    if snapshot:
        db.session.add(Snapshot(org_id=membership.org_id, workspace_id=workspace_id,
                                ref="ab" * 32, task_count=3, size_bytes=2048, cause="stop"))
    db.session.commit()
    return workspace_id


def _text(response) -> str:
    return response.get_data(as_text=True)


def _buttons(html: str) -> list[str]:
    """The lifecycle buttons in the page's action bar (and each one's confirmation)."""
    bar = html.split('id="ws-actions"', 1)[1].split('id="ws-facts"', 1)[0]
    forms = re.findall(r"<form [^>]*>.*?</form>", bar, re.S)
    found = []
    for form in forms:
        assert 'hx-confirm="' in form, form  # every button asks first
        found.append(re.search(r"<button[^>]*>([^<]+)</button>", form).group(1))
    return found


# -- the list ----------------------------------------------------------------------------

def test_nav_and_home_show_workspaces_not_a_copy_of_the_nav(console_client, owner, role):
    _workspace(owner, role)
    html = _text(console_client(owner).get("/"))
    nav = html.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/workspaces"' in nav
    assert "Your recent workspaces" in html and "Where to go" not in html
    assert "code-reviewer" in html and "badge-provisioning" in html
    assert "New workspace" in html


def test_a_member_sees_only_their_own_and_no_switch(console_client, org, owner, role):
    member, other = make_member(org), make_member(org)
    mine = _workspace(member, role)
    theirs = _workspace(other, role)
    html = _text(console_client(member).get(LIST))
    assert mine in html and theirs not in html
    assert 'name="scope"' not in html  # no "mine / everyone" without org-wide read
    assert "New workspace" in html and 'name="environment"' in html and "code-reviewer" in html


def test_an_owner_sees_everyone_and_can_narrow_to_mine(console_client, org, owner, role):
    member = make_member(org)
    mine = _workspace(owner, role)
    theirs = _workspace(member, role)
    client = console_client(owner)
    html = _text(client.get(LIST))
    assert mine in html and theirs in html and 'name="scope"' in html
    assert member.user.email.split("@")[0] in html  # the owner column
    narrowed = _text(client.get(LIST, query_string={"scope": "mine"},
                                headers={"HX-Request": "true"}))
    assert mine in narrowed and theirs not in narrowed


def test_filters_and_the_empty_states(console_client, owner, role):
    client = console_client(owner)
    empty = _text(client.get(LIST))
    assert "No workspaces yet" in empty and "Create workspace" in empty
    idle = _workspace(owner, role, status="idle")
    stopped = _workspace(owner, role, status="stopped", archived=True)
    html = _text(client.get(LIST, query_string={"status": "idle"}))
    assert idle in html and stopped not in html
    archived = _text(client.get(LIST, query_string={"archived": "true"}))
    assert stopped in archived and idle not in archived
    none = _text(client.get(LIST, query_string={"status": "failed"}))
    assert "No matching workspaces" in none


def test_cursor_paging_loads_more_and_widens_the_live_range(console_client, owner, role,
                                                           monkeypatch):
    from evershell.workspaces import views
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    ids = [_workspace(owner, role) for _ in range(3)]
    client = console_client(owner)
    first = _text(client.get(LIST))
    assert ids[2] in first and ids[1] in first and ids[0] not in first
    more = re.search(r'hx-get="(/workspaces\?cursor=[^"]+)"', first).group(1)
    rows = _text(client.get(more.replace("&amp;", "&"), headers={"HX-Request": "true"}))
    assert ids[0] in rows and ids[2] not in rows.split('id="ws-live"', 1)[0]
    live = re.search(r'<tr id="ws-live"[^>]*hx-swap-oob="true"[^>]*sse-connect="([^"]+)"',
                     rows, re.S)
    assert live and f"oldest={ids[0]}" in live.group(1) and f"newest={ids[2]}" in live.group(1)


def test_creating_from_the_form_provisions_and_opens_the_page(console_client, owner, role):
    client = console_client(owner)
    response = client.post(LIST, data={"csrf_token": client.csrf_token,
                                       "role_id": role.role.id, "environment": "default"})
    assert response.status_code == 303
    assert re.fullmatch(r"/workspaces/ws_\w+", response.headers["Location"])
    assert queued() == ["provision"]
    page = _text(client.get(response.headers["Location"]))
    assert "badge-provisioning" in page and "Provisioning your workspace" in page


def test_the_list_costs_the_same_queries_for_3_or_12_rows(console_client, owner, role):
    client = console_client(owner)
    others = [make_member(owner.org) for _ in range(3)]

    def statements(count: int) -> int:
        for n in range(count):
            _workspace(others[n % 3], role, status="idle" if n % 2 else None)
        seen = []

        def listener(_conn, _cursor, statement, *_args):
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", listener)
        try:
            response = client.get(LIST)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listener)
        assert response.status_code == 200 and _text(response).count('id="ws-row-') == count
        db.session.execute(sa.delete(Workspace))
        db.session.commit()
        return len(seen)

    assert statements(3) == statements(12)


# -- one workspace -----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "snapshot", "archived", "expected"), [
    ("provisioning", False, False, ["Delete"]),
    ("idle", False, False, ["Stop", "Delete"]),
    ("busy", True, False, ["Stop", "Fork", "Delete"]),
    ("stopping", True, False, ["Fork", "Delete"]),
    ("stopped", True, False, ["Start", "Fork", "Archive", "Delete"]),
    ("failed", False, False, ["Archive", "Delete"]),
    ("failed", True, False, ["Start", "Fork", "Archive", "Delete"]),
    ("stopped", True, True, ["Fork", "Unarchive", "Delete"]),
])
def test_buttons_follow_the_status(console_client, owner, role, status, snapshot, archived,
                                   expected):
    workspace_id = _workspace(owner, role, status, snapshot=snapshot, archived=archived)
    html = _text(console_client(owner).get(f"/workspaces/{workspace_id}"))
    assert _buttons(html) == expected
    assert ("Fork from here" in html) == ("Fork" in expected)


def test_the_page_says_every_seed_field_in_words(console_client, owner, role):
    workspace_id = _workspace(owner, role, "failed", snapshot=True)
    db.session.execute(sa.update(Workspace).where(Workspace.id == workspace_id).values(
        failure_reason="The provision job timed out.", snapshot_ref=None,
        last_snapshot_error="The live directory was gone."))
    db.session.commit()
    html = _text(console_client(owner).get(f"/workspaces/{workspace_id}"))
    for words in ("Status", "failed", "code-reviewer", "pinned to version 1", "Environment",
                  "default", owner.user.email, "(you)", "None: the last stop could not save",
                  "The live directory was gone.", "The provision job timed out.",
                  "Not a fork", "Unknown: the workspace is not running", "Created", "Updated",
                  "Archived", 'id="event-1"', "create · by", "2.0 KiB"):
        assert words in html, words
    assert "A failed workspace has no live files." in html


def test_a_fork_names_its_parent_and_fork_point(console_client, owner, role):
    parent = _workspace(owner, role, "stopped", snapshot=True)
    client = console_client(owner)
    response = client.post(f"/workspaces/{parent}/fork", data={
        "csrf_token": client.csrf_token, "snapshot_ref": "ab" * 32})
    assert response.status_code == 303
    html = _text(client.get(response.headers["Location"]))
    assert f'href="/workspaces/{parent}"' in html and "after 3 tasks" in html
    assert "abababababab…" in html


def test_another_members_workspace(console_client, org, owner, role):
    member, other = make_member(org), make_member(org)
    operator = make_member(org, role="operator")
    theirs = _workspace(other, role, "stopped", snapshot=True)
    # A member (:own scopes) may not see it at all.
    assert console_client(member).get(f"/workspaces/{theirs}").status_code == 403
    # An operator reads every workspace but changes only their own: no stop, start,
    # archive or delete on it, and posting one anyway is refused; forking is theirs.
    client = console_client(operator)
    html = _text(client.get(f"/workspaces/{theirs}"))
    assert _buttons(html) == ["Fork"]
    assert "only its owner" in html
    refused = client.post(f"/workspaces/{theirs}/archive",
                          data={"csrf_token": client.csrf_token})
    assert refused.status_code == 403
    # The owner of the org may change it.
    assert _buttons(_text(console_client(owner).get(f"/workspaces/{theirs}"))) == [
        "Start", "Fork", "Archive", "Delete"]


def test_another_orgs_workspace_is_not_found(console_client, owner, role):
    elsewhere = make_member(make_org(), role="owner")
    workspace_id = _workspace(owner, role)
    client = console_client(elsewhere)
    assert client.get(f"/workspaces/{workspace_id}").status_code == 404
    assert client.get(f"/workspaces/{workspace_id}/live").status_code == 404
    assert client.post(f"/workspaces/{workspace_id}/delete",
                       data={"csrf_token": client.csrf_token}).status_code == 404


def test_stop_from_the_page_moves_the_workspace_and_says_so(console_client, owner, role):
    workspace_id = _workspace(owner, role, "idle")
    client = console_client(owner)
    response = client.post(f"/workspaces/{workspace_id}/stop",
                           data={"csrf_token": client.csrf_token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/workspaces/{workspace_id}"
    assert db.session.get(Workspace, workspace_id).status == "stopping"
    html = _text(client.get(f"/workspaces/{workspace_id}"))
    assert "Stopping: /data is saved" in html and _buttons(html) == ["Delete"]
    # Pressed again from a stale page: a message, not an error page.
    again = client.post(f"/workspaces/{workspace_id}/stop",
                        data={"csrf_token": client.csrf_token})
    assert again.status_code == 303
    assert "Cannot stop a workspace that is stopping" in _text(
        client.get(f"/workspaces/{workspace_id}"))


def test_delete_goes_back_to_the_list(console_client, owner, role):
    workspace_id = _workspace(owner, role, "stopped")
    client = console_client(owner)
    response = client.post(f"/workspaces/{workspace_id}/delete",
                           data={"csrf_token": client.csrf_token})
    assert response.status_code == 303 and response.headers["Location"] == LIST
    assert workspace_id not in _text(client.get(LIST))
    assert client.get(f"/workspaces/{workspace_id}").status_code == 404


# -- live updates ------------------------------------------------------------------------

def _first_frame(client, url: str) -> str:
    response = client.get(url, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    try:
        assert next(chunks).startswith(b"retry:")
        return next(chunks).decode()
    finally:
        response.close()


def test_the_live_page_frame_replaces_by_id_so_a_reconnect_repeats_nothing(
        console_client, owner, role):
    workspace_id = _workspace(owner, role)
    db.session.execute(sa.update(Workspace).where(Workspace.id == workspace_id)
                       .values(status="idle"))
    from evershell.workspaces import lifecycle
    lifecycle.emit_status(db.session.get(Workspace, workspace_id), "provisioning", "idle",
                          "provisioned", None)
    db.session.commit()
    client = console_client(owner)
    url = f"/workspaces/{workspace_id}/live"
    frame = _first_frame(client, url)
    assert frame.startswith("id: 2\nevent: workspace\n")
    assert f'id="ws-status-{workspace_id}" class="ws-status" hx-swap-oob="true"' in frame
    assert 'id="ws-timeline" class="ws-timeline" hx-swap-oob="true"' in frame
    assert frame.count('id="event-1"') == frame.count('id="event-2"') == 1
    assert 'id="ws-actions" class="ws-actions" hx-swap-oob="true"' in frame
    # The same URL again (what htmx does on reconnect): the same replacing frame.
    assert _first_frame(client, url) == frame


def test_the_live_list_frame_carries_each_rows_badge(console_client, owner, role):
    older = _workspace(owner, role)
    newer = _workspace(owner, role, "idle")
    frame = _first_frame(console_client(owner),
                         f"/workspaces/live?newest={newer}&oldest={older}")
    assert frame.startswith("event: status\n") and "id:" not in frame.split("\n")[0]
    assert f'id="ws-status-{older}" class="ws-status" hx-swap-oob="true"' in frame
    assert f'id="ws-status-{newer}"' in frame and "badge-idle" in frame


def test_a_member_cannot_watch_another_members_workspace(console_client, org, owner, role):
    member = make_member(org)
    theirs = _workspace(owner, role)
    assert console_client(member).get(f"/workspaces/{theirs}/live").status_code == 403
    # What the live list reads for its rows leaves out what the caller may not read.
    assert services.current_states(principal_for(member), [theirs]) == {}
    assert list(services.current_states(principal_for(owner), [theirs])) == [theirs]
