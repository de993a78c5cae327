"""Console: /audit, signed in with a real console session."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from evershell.audit import views
from tests.audit.conftest import add_entry
from tests.factories import make_member, make_org

PAGE = "/audit"
HX = {"HX-Request": "true"}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def text(response) -> str:
    return response.get_data(as_text=True)


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


@pytest.fixture
def org(session):
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email=f"boss-{org.slug}@example.test")


def test_page_shows_form_table_badges_and_export_links(console_client, owner):
    denied = add_entry(owner, "api_key.create", "api_key", "key_1", at=T0)
    denied.outcome = "denied"
    denied.request_id = "req-abc-123"
    add_entry(owner, "secret.create", "secret", "sec_1", at=T0 + timedelta(seconds=5))
    response = console_client(owner).get(PAGE)
    html = text(response)
    assert response.status_code == 200 and "<html" in html
    assert 'hx-get="/audit"' in html and 'hx-target="#audit-results"' in html
    assert 'hx-push-url="true"' in html
    for name in ("actor", "action", "target", "since", "until"):
        assert f'name="{name}"' in html
    assert "2024-05-01 12:00:00" in html and "2024-05-01 12:00:05" in html
    assert owner.user.email in html and "req-abc-123" in html
    assert 'badge badge-failed">denied' in html and 'badge badge-ok">success' in html
    assert html.index("sec_1") < html.index("key_1")  # newest first
    exports = [h for h in hrefs(html) if h.startswith("/v1/audit/export")]
    assert {parse_qs(urlsplit(h).query)["format"][0] for h in exports} == {"jsonl", "csv"}


def test_the_nav_links_the_audit_log_for_holders_of_audit_read(console_client, org, owner):
    assert 'href="/audit"' in text(console_client(owner).get("/"))
    operator = make_member(org, role="operator")
    assert 'href="/audit"' in text(console_client(operator).get("/"))
    member = make_member(org, role="member")
    assert 'href="/audit"' not in text(console_client(member).get("/"))


def test_a_member_gets_a_403_page(console_client, org, owner):
    response = console_client(make_member(org, role="member")).get(PAGE)
    assert response.status_code == 403 and "<html" in text(response)


def test_signed_out_people_go_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    htmx = client.get(PAGE, headers=HX)
    assert htmx.status_code == 204 and "/sign-in" in htmx.headers["HX-Redirect"]


def test_htmx_filters_return_the_results_fragment_with_filtered_exports(
        console_client, client, owner):
    add_entry(owner, "role.update", "role", "role_A", at=T0)
    add_entry(owner, "pack.update", "pack", "pack_A", at=T0)
    signed_in = console_client(owner)
    response = signed_in.get(PAGE, headers=HX, query_string={
        "action": "role.*", "since": "2024-05-01T11:00", "until": "", "actor": ""})
    html = text(response)
    assert response.status_code == 200 and "<html" not in html and "<form" not in html
    assert "role_A" in html and "pack_A" not in html
    csv_link = next(h for h in hrefs(html) if "format=csv" in h)
    query = parse_qs(urlsplit(csv_link).query)
    # the form's naive time is UTC; the API link carries it with a timezone
    assert query == {"format": ["csv"], "action": ["role.*"],
                     "since": ["2024-05-01T11:00:00Z"]}
    exported = signed_in.get(csv_link)  # the browser's cookie works on the export
    assert exported.status_code == 200
    assert "role_A" in text(exported) and "pack_A" not in text(exported)


def test_history_restore_gets_the_whole_page(console_client, owner):
    response = console_client(owner).get(
        PAGE, headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in text(response)


def test_load_more_appends_the_next_rows(console_client, monkeypatch, owner):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    made = [add_entry(owner, "page.me", "thing", f"thing_{n}",
                      at=T0 + timedelta(minutes=n)) for n in range(5)]
    client = console_client(owner)
    html = text(client.get(PAGE, query_string={"action": "page.me"}))
    seen = re.findall(r"thing_\d", html)
    pages = 1
    while 'id="audit-more"' in html:
        more = unescape(re.search(r'hx-get="([^"]+)" hx-target="closest tr"', html)[1])
        assert parse_qs(urlsplit(more).query)["action"] == ["page.me"]
        response = client.get(more, headers=HX)
        html = text(response)
        assert response.status_code == 200 and "<table" not in html and "<tr" in html
        seen += re.findall(r"thing_\d", html)
        pages += 1
    assert seen == [e.target_id for e in reversed(made)] and pages == 3


@pytest.mark.parametrize(("params", "message"), [
    ({"since": "not a date"}, "since"),
    ({"since": "2024-05-02T00:00", "until": "2024-05-01T00:00"}, "until"),
])
def test_bad_filters_show_an_error(console_client, owner, params, message):
    client = console_client(owner)
    page = client.get(PAGE, query_string=params)
    assert page.status_code == 400 and "field-error" in text(page)
    fragment = client.get(PAGE, query_string=params, headers=HX)
    assert fragment.status_code == 200 and "not valid" in text(fragment)
    assert message in text(fragment) and "/v1/audit/export" not in text(fragment)


def test_another_orgs_entries_never_show(console_client, owner):
    stranger = make_member(make_org(), role="owner")
    add_entry(stranger, "secret.create", "secret", "sec_stranger")
    html = text(console_client(owner).get(PAGE))
    assert "sec_stranger" not in html and stranger.user.email not in html


def test_entries_are_escaped(console_client, owner):
    add_entry(owner, "x.create", "thing", "<script>alert(1)</script>")
    html = text(console_client(owner).get(PAGE))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _rows(html: str) -> list[str]:
    body = html[html.index("<tbody>"):html.index("</tbody>")]
    return [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", row.replace("<wbr>", ""))))
            .strip()
            for row in re.split(r"<tr[^>]*>", body)[1:]]


def test_rows_name_the_actor_target_and_show_the_change(console_client, org, owner):
    member = make_member(org, role="operator", email=f"op-{org.slug}@example.test")
    add_entry(owner, "member.add", "membership", member.id,
              {"email": member.user.email, "role": "operator"}, at=T0)
    add_entry(owner, "member.role_change", "membership", member.id,
              {"email": member.user.email, "user_id": member.user_id,
               "role": ["operator", "member"]}, at=T0 + timedelta(seconds=1))
    add_entry(owner, "org.update", "org", org.id, {"name": ["Acme", "Acme Corp"]},
              at=T0 + timedelta(seconds=2))
    add_entry(owner, "api_key.create", "api_key", "key_ci", {"name": "nightly CI"},
              at=T0 + timedelta(seconds=3))
    # a refusal records no name: the target's name comes from its latest entry
    refused = add_entry(owner, "member.remove", "membership", member.id,
                        {"code": "permission_denied", "reason": "Needs members:write."},
                        at=T0 + timedelta(seconds=4), shape="api_key")
    refused.outcome, refused.api_key_id = "denied", "key_ci"
    rows = _rows(text(console_client(owner).get(PAGE)))
    assert rows[0] == (f"2024-05-01 12:00:04 {owner.user.email} API key “nightly CI” "
                       f"member.remove membership {member.user.email} "
                       "reason Needs members:write. denied")
    assert f"member.role_change membership {member.user.email} " \
           "role operator → member success" in rows[3]
    assert "org.update org Acme Corp name Acme → Acme Corp success" in rows[2]
    assert "role operator" in rows[4] and "→" not in rows[4]  # a create has no change


def test_the_page_reads_the_log_in_as_many_queries_however_many_targets(console_client, org, owner):
    from sqlalchemy import event

    from evershell.extensions import db

    def statements(count: int) -> int:
        for n in range(count):
            add_entry(owner, "secret.create", "secret", f"sec_{count}_{n}",
                      {"name": f"S{n}"}, at=T0)
            add_entry(owner, "secret.delete", "secret", f"sec_{count}_{n}",
                      {"code": "x"}, at=T0).outcome = "denied"
        db.session.flush()
        seen = []

        def listener(_conn, _cursor, statement, *_args):
            if statement.lstrip().upper().startswith("SELECT") and "audit_entries" in statement:
                seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            response = client.get(PAGE, query_string={"action": "secret.*"})
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert response.status_code == 200 and f"S{count - 1}" in text(response)
        db.session.execute(db.text("delete from audit_entries where action like 'secret.%'"))
        return len(seen)

    client = console_client(owner)
    assert statements(2) == statements(12) == 2  # the page, then the names
