"""The request path, counted on live gunicorn processes (EVERSHELL_REQUEST_STATS): an
API-key read of a role with a warm principal is one SQL statement and one Redis round
trip, and every change that could make a cached principal untrue takes effect on the
very next request on another process."""

from __future__ import annotations

import os
import re
from contextlib import ExitStack

import pytest
import requests

from tests.support.databases import sibling_database
from tests.support.processes import evershell_env, gunicorn, run_cli, seed_owner_key


@pytest.fixture(scope="module")
def servers(redis_url, tmp_path_factory):
    """Two web processes (one gunicorn worker each) on one database and Redis."""
    database = sibling_database(os.environ.get("DATABASE_URL"), "request_path",
                                tmp_path_factory.mktemp("request-path-db"))
    env = evershell_env(
        DATABASE_URL=database, REDIS_URL=redis_url, SECRET_KEY="request-path",
        EVERSHELL_INSTANCE_DIR=str(tmp_path_factory.mktemp("request-path")),
        EVERSHELL_REQUEST_STATS="true", EVERSHELL_RATE_LIMIT_PER_MINUTE="1000000",
        EVERSHELL_RATE_LIMIT_BURST="100000")
    key = seed_owner_key(env, "path")
    with ExitStack() as stack:
        first = stack.enter_context(gunicorn(env, workers=1))
        second = stack.enter_context(gunicorn(env, workers=1))
        yield env, first, second, {"Authorization": f"Bearer {key}"}


def stats(response: requests.Response) -> tuple[int, int, int]:
    """Statements, Redis round trips and transactions begun on the database."""
    counts = re.fullmatch(r"sql=(\d+);redis=(\d+);tx=(\d+)",
                          response.headers["X-Evershell-Stats"]).groups()
    return tuple(int(count) for count in counts)


def member_key(env, role: str, name: str) -> dict[str, str]:
    email = f"{name}@path.test"
    run_cli("user", "add", "--org", "path", "--email", email, "--role", role, env=env)
    key = run_cli("apikey", "create", "--org", "path", "--user", email, "--name", name,
                  env=env).split()[-1]
    return {"Authorization": f"Bearer {key}"}


def warm(base: str, headers: dict, path: str = "/v1/me") -> requests.Response:
    """Three requests: a read from the database, a confirming one, then the cache."""
    for _ in range(3):
        response = requests.get(base + path, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
    return response


def test_a_cached_api_key_read_of_a_role_is_one_statement_and_one_round_trip(servers):
    _env, base, _other, owner = servers
    provider = requests.post(f"{base}/v1/providers", headers=owner, timeout=10, json={
        "name": "scripted", "kind": "scripted", "script": [{"text": "hi"}]}).json()
    pack = requests.post(f"{base}/v1/packs", headers=owner, timeout=10,
                         data={"name": "notes"},
                         files={"files": ("README.md", b"# notes\n")}).json()
    role = requests.post(f"{base}/v1/roles", headers=owner, timeout=10, json={
        "name": "reader", "provider_id": provider["id"], "model": "scripted",
        "pack_ids": [pack["id"]]}).json()
    response = warm(base, owner, f"/v1/roles/{role['id']}")
    assert response.json()["pack_ids"] == [pack["id"]]
    # the role, its version and packs; the rate limit; no BEGIN or COMMIT around them
    assert stats(response) == (1, 1, 0)
    assert stats(warm(base, owner, "/v1/me")) == (1, 1, 0)  # /me describes the org
    created = requests.post(f"{base}/v1/secrets", headers=owner, timeout=10,
                            json={"name": "COUNTED", "value": "v"})
    assert created.status_code == 201, created.text
    assert stats(created)[1:] == (1, 1)  # a change is one transaction


def test_a_revoked_key_is_refused_by_the_next_request_on_another_process(servers):
    env, first, second, owner = servers
    headers = member_key(env, "member", "revokee")
    me = warm(first, headers).json()
    keys = requests.get(f"{second}/v1/api-keys", headers=owner, timeout=10).json()["data"]
    key_id = next(k["id"] for k in keys if k["name"] == "revokee")
    assert requests.delete(f"{second}/v1/api-keys/{key_id}", headers=owner,
                           timeout=10).status_code == 200
    response = requests.get(f"{first}/v1/me", headers=headers, timeout=10)
    assert response.status_code == 401, (me, response.text)


def test_a_demotion_holds_on_the_next_request_on_another_process(servers):
    env, first, second, owner = servers
    headers = member_key(env, "operator", "demotee")
    assert warm(first, headers).json()["role"] == "operator"
    members = requests.get(f"{second}/v1/memberships?limit=200", headers=owner,
                           timeout=10).json()["data"]
    member = next(m for m in members if m.get("email") == "demotee@path.test")
    changed = requests.patch(f"{second}/v1/memberships/{member['id']}", headers=owner,
                             json={"role": "member"}, timeout=10)
    assert changed.status_code == 200, changed.text
    now = requests.get(f"{first}/v1/me", headers=headers, timeout=10)
    assert now.status_code == 200 and now.json()["role"] == "member"
    denied = requests.post(f"{first}/v1/secrets", headers=headers, timeout=10,
                           json={"name": "NOPE", "value": "x"})
    assert denied.status_code == 403


def test_a_removed_member_is_refused_by_the_next_request_on_another_process(servers):
    env, first, second, owner = servers
    headers = member_key(env, "member", "removee")
    warm(first, headers)
    members = requests.get(f"{second}/v1/memberships?limit=200", headers=owner,
                           timeout=10).json()["data"]
    member = next(m for m in members if m.get("email") == "removee@path.test")
    assert requests.delete(f"{second}/v1/memberships/{member['id']}", headers=owner,
                           timeout=10).status_code == 200
    assert requests.get(f"{first}/v1/me", headers=headers, timeout=10).status_code == 401


def test_a_billing_change_holds_on_the_next_request_on_another_process(servers):
    env, first, _second, owner = servers
    warm(first, owner)
    run_cli("org", "set-billing", "path", "past_due", env=env)
    try:
        refused = requests.post(f"{first}/v1/secrets", headers=owner, timeout=10,
                                json={"name": "LATE", "value": "x"})
        assert refused.status_code == 423, refused.text
    finally:
        run_cli("org", "set-billing", "path", "active", env=env)
    allowed = requests.post(f"{first}/v1/secrets", headers=owner, timeout=10,
                            json={"name": "ON_TIME", "value": "x"})
    assert allowed.status_code == 201, allowed.text


def test_a_read_on_a_dropped_connection_is_run_again(servers):
    env, first, _second, owner = servers
    if not env["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite has no server to drop connections")
    import sqlalchemy as sa

    from evershell.config import normalise_database_url
    warm(first, owner)
    admin = sa.create_engine(normalise_database_url(env["DATABASE_URL"]))
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    with admin.begin() as conn:  # what a database restart does to the pool's connections
        dropped = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalar()
    admin.dispose()
    assert dropped >= 1
    response = requests.get(f"{first}/v1/org", headers=owner, timeout=10)
    assert response.status_code == 200, response.text
    with admin.begin() as conn:  # again, and this time a change meets the dead connection
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = :db AND pid <> pg_backend_pid()"),
                     {"db": database})
    admin.dispose()
    created = requests.post(f"{first}/v1/secrets", headers=owner, timeout=10,
                            json={"name": "AFTER_RESTART", "value": "x"})
    assert created.status_code == 201, created.text
