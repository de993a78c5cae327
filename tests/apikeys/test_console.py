"""Console: Settings → API keys shows who created each key (names, one query for all)
and offers an expiry when creating one."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from evershell.apikeys.models import ApiKey
from evershell.core.db import utcnow
from evershell.extensions import db
from tests.factories import make_api_key, make_member, make_org

PAGE = "/settings/api-keys"
HX = {"HX-Request": "true"}


def create(client, **form):
    return client.post(PAGE, data={"name": "ci", "template": "read_only", **form},
                       headers={**HX, "X-CSRF-Token": client.csrf_token})


def _row(html: str, name: str) -> str:
    start = html.index(f"<td>{name}</td>")
    return html[start:html.index("</tr>", start)]


def test_the_list_says_who_created_each_key_in_one_query(console_client):
    org = make_org()
    owner = make_member(org, role="owner", email="boss@example.test")
    colleagues = [make_member(org, role="operator", email=f"op{n}@example.test")
                  for n in range(3)]
    colleagues[0].user.name = "Grace Hopper"
    db.session.commit()
    make_api_key(owner, name="mine")
    for n, colleague in enumerate(colleagues):
        make_api_key(colleague, name=f"theirs-{n}")
    client = console_client(owner)

    user_selects = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM users" in statement:
            user_selects.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        html = client.get(PAGE).get_data(as_text=True)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert "<th>Created by</th>" in html
    assert '<td class="key-creator">you</td>' in _row(html, "mine")
    assert "Grace Hopper" in _row(html, "theirs-0")
    assert "op1@example.test" in _row(html, "theirs-1")
    # Sign-in resolution reads the caller's user; the creators take one more, however
    # many creators there are.
    creator_reads = [s for s in user_selects if " IN " in s.upper()]
    assert len(creator_reads) == 1


def test_the_create_form_offers_an_expiry_defaulting_to_90_days(console_client):
    html = console_client(make_member(role="owner")).get(PAGE).get_data(as_text=True)
    assert 'name="expires_in"' in html
    assert '<option value="90" selected>90 days</option>' in html
    assert '<option value="">Never</option>' in html


@pytest.mark.parametrize("choice, days", [("30", 30), ("365", 365), ("", None)])
def test_a_key_created_in_the_console_gets_the_chosen_expiry(console_client, session,
                                                              choice, days):
    owner = make_member(role="owner")
    answer = create(console_client(owner), name=f"ci-{choice or 'never'}",
                    expires_in=choice)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    key = session.scalar(sa.select(ApiKey).where(ApiKey.created_by_user_id == owner.user_id))
    if days is None:
        assert key.expires_at is None
    else:
        assert abs(key.expires_at - (utcnow() + timedelta(days=days))) < timedelta(minutes=1)
        assert key.expires_at.strftime("%Y-%m-%d") in answer.get_data(as_text=True)


def test_an_expiry_not_offered_is_refused(console_client, session):
    owner = make_member(role="owner")
    answer = create(console_client(owner), expires_in="-5")
    assert answer.status_code == 200
    assert "Choose one of the offered expiries." in answer.get_data(as_text=True)
    assert session.scalar(sa.select(ApiKey).where(
        ApiKey.created_by_user_id == owner.user_id)) is None
