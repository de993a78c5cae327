"""Issue item 8: a secret's or a credential's value never appears in any API response,
console page, log line, audit entry or database column other than its ciphertext.

Known canary values are stored, then every ``/v1`` route of the app (walked from the
route table, so routes added later are covered too) and every console page of this
domain is exercised, including the refusals that carry a value in the request. Logs are
captured at DEBUG from every logger. Then the canaries are searched for everywhere.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from evershell.access.routes import declarations
from evershell.extensions import db
from tests.factories import bearer, make_api_key
from tests.secrets.factories import make_credential, make_secret

CANARIES = {
    "secret": "cAnArY-s3cr3t-9f41c7e2-NEVER-SHOW",
    "rotated": "cAnArY-r0tat3d-2b8e11aa-NEVER-SHOW",
    "token": "cAnArY-t0k3n-77d0c3f5-NEVER-SHOW",
    "password": "cAnArY-passw0rd-5e6f0b19-NEVER-SHOW",
    "console": "cAnArY-c0ns0le-a1b2c3d4-NEVER-SHOW",
}
FAKE_ID = "zz_00000000000000000000000000"


def forms(value: str) -> list[str]:
    """The value, and how it would look if something encoded it on the way out."""
    return [value, base64.b64encode(value.encode()).decode().rstrip("="), quote(value)]


def leaks(haystack: str) -> list[str]:
    return [f"{name}: {form!r}" for name, value in CANARIES.items() for form in forms(value)
            if form in haystack]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs():
    """Every log record at DEBUG, from the root and from ``evershell`` (which does not
    propagate), formatted with exception text."""
    collector = _Collect()
    loggers = [logging.getLogger(), logging.getLogger("evershell")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(collector)
        logger.setLevel(logging.DEBUG)
    yield collector.lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(collector)
        logger.setLevel(level)


def _path(rule: str, ids: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        return ids.get(match.group(1), FAKE_ID)
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", fill, rule)


def _body(rule: str, method: str) -> dict | None:
    """Requests that carry a canary in; everything else gets an empty JSON body."""
    if method not in ("POST", "PUT", "PATCH"):
        return None
    rule = re.sub(r"<[^:>]+:", "<", rule)  # converters aside: <id:secret_id> → <secret_id>
    if rule == "/v1/secrets":
        return {"name": "lower-case-refused", "value": CANARIES["secret"]}
    if rule == "/v1/secrets/<secret_id>":
        return {"value": CANARIES["rotated"]}
    if rule == "/v1/credentials":
        return {"name": "GH", "kind": "token", "material": {"token": CANARIES["token"]}}
    if rule == "/v1/credentials/<credential_id>":
        return {"material": {"username": "svc", "password": CANARIES["password"],
                             "token": CANARIES["token"]}}
    return {}


def _exchange(response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return f"{response.status_code}\n{headers}\n{response.get_data(as_text=True)}"


def test_no_value_ever_leaves_through_api_console_logs_audit_or_database(
        app, client, session, owner, console_client, all_logs, capsys):
    headers = bearer(make_api_key(owner))
    secret = make_secret(owner, "CANARY_SECRET", CANARIES["secret"])
    credential = make_credential(owner, "CANARY_CRED", kind="username_password",
                                 material={"username": "svc", "password": CANARIES["password"]},
                                 scope="org")
    token = make_credential(owner, "CANARY_TOKEN", material={"token": CANARIES["token"]})
    # DELETE routes get objects of their own, so the ones above live on for the console.
    doomed = {"secret_id": make_secret(owner, "DOOMED", CANARIES["secret"]).id,
              "credential_id": make_credential(owner, "DOOMED",
                                               material={"token": CANARIES["token"]}).id}
    ids = {"secret_id": secret.id, "credential_id": credential.id}
    seen: list[str] = []

    # Every /v1 route, deletions last.
    routes = sorted(declarations(app), key=lambda r: r[1] == "DELETE")
    for rule, method, _endpoint, _declaration in routes:
        path = _path(rule, doomed if method == "DELETE" else ids)
        seen.append(_exchange(client.open(path, method=method, headers=headers,
                                          json=_body(rule, method))))
        if rule.startswith("/v1/audit"):
            for fmt in ("jsonl", "csv"):
                seen.append(_exchange(client.get(path, query_string={"format": fmt},
                                                 headers=headers)))

    from evershell.secrets import services
    # The walk really rotated the secret through PATCH.
    assert services.secret_values(owner.org_id, ["CANARY_SECRET"]) == {
        "CANARY_SECRET": CANARIES["rotated"]}

    # Refusals that carry a value: a taken name, an oversized value, a bad kind.
    refusals = [
        ("POST", "/v1/secrets", {"name": "CANARY_SECRET", "value": CANARIES["secret"]}),
        ("POST", "/v1/secrets", {"name": "BIG", "value": CANARIES["secret"] * 3000}),
        ("POST", "/v1/secrets", {"name": "NUL", "value": CANARIES["secret"] + "\x00"}),
        ("PATCH", f"/v1/secrets/{FAKE_ID}", {"value": CANARIES["secret"]}),
        ("POST", "/v1/credentials", {"name": "CANARY_TOKEN", "kind": "token",
                                     "material": {"token": CANARIES["token"]}}),
        ("POST", "/v1/credentials", {"name": "SSH", "kind": "ssh_key",
                                     "material": {"private_key": CANARIES["token"]}}),
        ("POST", "/v1/credentials", {"name": "X", "kind": "nope",
                                     "material": {"token": CANARIES["token"]}}),
        ("PATCH", f"/v1/credentials/{token.id}", {"material": {"token": CANARIES["token"],
                                                               "extra": CANARIES["password"]}}),
    ]
    for method, path, body in refusals:
        response = client.open(path, method=method, headers=headers, json=body)
        assert response.status_code >= 400, (method, path)
        seen.append(_exchange(response))

    # Every console page of the domain, and every form, including refused ones.
    browser = console_client(owner)
    form_headers = {"X-CSRF-Token": browser.csrf_token}
    for htmx in (False, True):
        extra = {**form_headers, **({"HX-Request": "true"} if htmx else {})}
        for path in ("/settings/secrets", "/settings/credentials",
                     f"/settings/secrets/{secret.id}/rotate",
                     f"/settings/credentials/{credential.id}/rotate",
                     f"/settings/credentials/{token.id}/rotate",
                     "/settings/credentials/fields?kind=ssh_key"):
            seen.append(_exchange(browser.get(path, headers=extra)))
        posts = [
            ("/settings/secrets", {"name": "bad name", "value": CANARIES["console"]}),
            ("/settings/secrets", {"name": "CANARY_SECRET", "value": CANARIES["console"]}),
            (f"/settings/secrets/{secret.id}/rotate", {"value": CANARIES["console"]}),
            ("/settings/credentials", {"name": "bad", "kind": "token",
                                       "token": CANARIES["console"]}),
            ("/settings/credentials", {"name": "C_SSH", "kind": "ssh_key",
                                       "private_key": CANARIES["console"],
                                       "passphrase": CANARIES["console"]}),
            (f"/settings/credentials/{token.id}/rotate", {"token": CANARIES["console"]}),
            (f"/settings/credentials/{credential.id}/rotate",
             {"username": "svc", "password": CANARIES["console"] + "\x00"}),
        ]
        for path, data in posts:
            seen.append(_exchange(browser.post(path, data=data, headers=extra)))
    # The console really rotated it too (so its pages went through the success paths).
    assert services.secret_values(owner.org_id, ["CANARY_SECRET"]) == {
        "CANARY_SECRET": CANARIES["console"]}
    for path in (f"/settings/secrets/{secret.id}/delete",
                 f"/settings/credentials/{token.id}/delete"):
        seen.append(_exchange(browser.post(path, headers=form_headers)))

    assert leaks("\n".join(seen)) == []
    captured = capsys.readouterr()
    assert all_logs, "the log capture saw nothing; the search below would prove nothing"
    assert leaks("\n".join(all_logs) + captured.out + captured.err) == []

    # The database: every row of every table, the audit log included.
    dump = []
    for table in db.metadata.sorted_tables:
        for row in session.execute(sa.select(table)).all():
            dump.append(repr(tuple(row)))
    audit_rows = session.execute(sa.text("select * from audit_entries")).all()
    assert len(audit_rows) > 5  # the walk above really mutated things
    assert leaks("\n".join(dump)) == []
    assert leaks("\n".join(map(repr, audit_rows))) == []

