"""GET /v1/audit/export: the whole filtered log, streamed as JSON Lines or CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from evershell.audit import queries
from evershell.audit.models import AuditEntry
from evershell.extensions import db
from tests.audit.conftest import add_entry
from tests.factories import bearer, make_api_key, make_member, make_org

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def org(session):
    return make_org(slug="acme-export")


@pytest.fixture
def owner(org):
    return make_member(org, role="owner")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner, template="read_only"))


def export(client, headers, **params):
    response = client.get("/v1/audit/export", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def jsonl(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def org_ids(session, org, **where) -> list[str]:
    query = sa.select(AuditEntry.id).where(AuditEntry.org_id == org.id)
    for column, value in where.items():
        query = query.where(getattr(AuditEntry, column) == value)
    return session.scalars(query.order_by(AuditEntry.id.desc())).all()


def test_jsonl_streams_every_entry_as_an_attachment(client, session, org, owner, headers):
    for n in range(7):
        add_entry(owner, "export.me", "thing", f"t{n}", {"n": n})
    response = export(client, headers, format="jsonl")
    assert response.is_streamed
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert re.fullmatch(r'attachment; filename="audit-acme-export-\d{8}T\d{6}Z\.jsonl"',
                        response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    entries = jsonl(response)
    assert [e["id"] for e in entries] == org_ids(session, org)
    seven = [e for e in entries if e["action"] == "export.me"]
    assert [e["details"] for e in seven] == [{"n": n} for n in reversed(range(7))]
    assert seven[0]["actor_user_id"] == owner.user_id and seven[0]["target_id"] == "t6"


def test_jsonl_is_the_default_format(client, headers):
    response = export(client, headers)
    assert response.headers["Content-Type"] == "application/x-ndjson"


def test_csv_has_a_header_and_every_filtered_row(client, session, org, owner, headers):
    other = make_member(org, role="operator")
    for n in range(3):
        add_entry(owner, "role.update", "role", f"role_{n}", {"version": n + 2})
        add_entry(other, "pack.update", "pack", f"pack_{n}")
    response = export(client, headers, format="csv", target="type:role")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].endswith('.csv"')
    header = response.get_data(as_text=True).splitlines()[0]
    assert header.split(",")[:3] == ["id", "created_at", "actor_user_id"]
    rows = csv_rows(response)
    assert [r["id"] for r in rows] == org_ids(session, org, target_type="role")
    assert [json.loads(r["details"]) for r in rows] == [{"version": 4}, {"version": 3},
                                                       {"version": 2}]
    assert {r["actor_email"] for r in rows} == {owner.user.email}
    assert rows[0]["api_key_id"] == "" and rows[0]["outcome"] == "success"


def test_csv_defuses_spreadsheet_formulas(client, owner, headers):
    add_entry(owner, "+sum.it", "@type", "=HYPERLINK(\"http://evil\")",
              {"note": "=1+1"})
    add_entry(owner, "-minus", "thing", "\tcmd")
    rows = {r["action"]: r for r in csv_rows(export(client, headers, format="csv"))}
    dangerous = rows["'+sum.it"]
    assert dangerous["target_type"] == "'@type"
    assert dangerous["target_id"] == "'=HYPERLINK(\"http://evil\")"
    assert json.loads(dangerous["details"]) == {"note": "=1+1"}  # a JSON cell starts with {
    assert rows["'-minus"]["target_id"] == "'\tcmd"
    # nothing in the file begins with a formula character, whatever the column
    for row in rows.values():
        assert not any(v.startswith(("=", "+", "-", "@", "\t")) for v in row.values())
    # JSON Lines keeps the exact values
    exact = {e["action"] for e in jsonl(export(client, headers))}
    assert {"+sum.it", "-minus"} <= exact


def test_export_applies_every_filter(client, org, owner, headers):
    other = make_member(org, role="operator", email="filtered@example.test")
    keep = add_entry(other, "secret.rotate", "secret", "sec_1", at=T0)
    add_entry(other, "secret.rotate", "secret", "sec_1", at=T0 + timedelta(days=1))
    created = add_entry(other, "secret.create", "secret", "sec_1", at=T0)
    add_entry(owner, "secret.rotate", "secret", "sec_1", at=T0)
    params = {"actor": "filtered@example.test", "action": "secret.*", "target": "sec_1",
              "since": "2024-05-01T00:00:00Z", "until": "2024-05-02T00:00:00Z",
              "outcome": "success"}
    exported = jsonl(export(client, headers, **params))
    assert [e["id"] for e in exported] == [created.id, keep.id]
    params["action"] = "secret.rotate"
    assert [e["id"] for e in jsonl(export(client, headers, **params))] == [keep.id]


def test_export_fetches_in_keyset_batches(client, session, monkeypatch, org, owner,
                                          headers):
    """Memory stays flat: rows come from the database a batch at a time, by id."""
    monkeypatch.setattr(queries, "EXPORT_BATCH_SIZE", 3)
    for n in range(8):
        add_entry(owner, "batch.me", "thing", f"t{n}")
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM audit_entries" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        exported = jsonl(export(client, headers, action="batch.me"))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert [e["id"] for e in exported] == org_ids(session, org, action="batch.me")
    assert len(exported) == 8 and len(statements) == 3  # 3 + 3 + 2 rows
    assert all("LIMIT" in s.upper() for s in statements)


def test_export_never_includes_another_org(client, owner, headers):
    stranger = make_member(make_org(), role="owner")
    theirs = add_entry(stranger, "secret.create", "secret", "sec_theirs")
    body = export(client, headers).get_data(as_text=True) + \
        export(client, headers, format="csv").get_data(as_text=True)
    assert theirs.id not in body and stranger.user.email not in body


@pytest.mark.parametrize(("params", "field"), [
    ({"format": "xml"}, "format"),
    ({"since": "2024-05-01"}, "since"),
    ({"until": "2024-05-01T00:00:00"}, "until"),
    ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "until"),
    ({"limit": "10"}, "limit"),
    ({"cursor": "abc"}, "cursor"),
])
def test_bad_export_requests_are_400_before_any_byte(client, headers, params, field):
    response = client.get("/v1/audit/export", query_string=params, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]["fields"]
    assert "Content-Disposition" not in response.headers


def test_the_csv_parses_back_to_the_jsonl(client, owner, headers):
    add_entry(owner, "round.trip", "thing", "t,1", {"quote": "\"hi\"", "line": "a\nb"})
    line = next(e for e in jsonl(export(client, headers)) if e["action"] == "round.trip")
    row = next(r for r in csv_rows(export(client, headers, format="csv"))
               if r["action"] == "round.trip")
    assert row["target_id"] == "t,1" and json.loads(row["details"]) == line["details"]
    assert row["created_at"] == line["created_at"] and row["id"] == line["id"]


def test_export_streams_after_the_request_is_over(app, owner, headers):
    """As under a real server: the body is read after the request's contexts are gone
    (a thread starts with no Flask context; the test waits, so the connection is never
    used by two threads at once)."""
    made = [add_entry(owner, "thread.me", "thing", f"t{n}").id for n in range(3)]
    result = {}

    def download():
        try:
            response = app.test_client().get(
                "/v1/audit/export", query_string={"action": "thread.me"}, headers=headers)
            result["ids"] = [e["id"] for e in jsonl(response)]
        except Exception as exc:  # re-raised below, in the test's thread
            result["error"] = exc

    worker = threading.Thread(target=download)
    worker.start()
    worker.join(30)
    assert "error" not in result, result.get("error")
    assert result["ids"] == made[::-1]


def test_exported_entries_are_exactly_the_listed_ones(client, owner, headers):
    add_entry(owner, "same.shape", "thing", "t1", {"nested": {"a": [1, 2]}, "n": None})
    add_entry(owner, "same.shape", shape="cookie")
    listed = client.get("/v1/audit", query_string={"action": "same.shape"},
                        headers=headers).get_json()["data"]
    assert jsonl(export(client, headers, action="same.shape")) == listed
