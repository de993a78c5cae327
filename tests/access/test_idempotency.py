"""``Idempotency-Key`` on create-class POSTs (SPEC §5): a retry replays the first answer,
another body conflicts, a running first request answers ``idempotency_in_progress``,
dead claims lapse after 60 s and answers after 24 h; 5xx and guard refusals are never
stored; stored answers are sealed."""

from __future__ import annotations

import io
import os
import re
import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from evershell import create_app
from evershell.access import idempotency
from evershell.access.idempotency import IdempotencyKey
from evershell.access.routes import declarations
from evershell.apikeys import services as api_key_services
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import db, get_redis
from evershell.orgs.models import BillingPosture
from evershell.secrets import services as secret_services
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.support.databases import sibling_database
from tests.support.processes import evershell_env, gunicorn, seed_owner_key

SECRETS, API_KEYS, PACKS = "/v1/secrets", "/v1/api-keys", "/v1/packs"
KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
TOKEN_BODY = {"name": "API_TOKEN", "value": "s3cret-value-of-the-token"}


@pytest.fixture
def org(app):
    return make_org()


@pytest.fixture
def owner(org):
    return make_member(org, role="owner", email=f"owner@{org.slug}.test")


@pytest.fixture
def headers(owner):
    return bearer(make_api_key(owner))


@pytest.fixture
def clock(monkeypatch):
    """The mechanism's clock, moved by the test instead of sleeping."""

    class Clock:
        now = utcnow()

        def advance(self, **delta) -> None:
            self.now += timedelta(**delta)

    fake = Clock()
    monkeypatch.setattr(idempotency, "clock", lambda: fake.now)
    return fake


@pytest.fixture
def blob_dir(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "BLOB_DIR", str(tmp_path / "blobs"))


def post(client, url, headers, key, **kwargs):
    return client.post(url, headers={**headers, KEY: key}, **kwargs)


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def rows(session) -> list[IdempotencyKey]:
    return session.scalars(sa.select(IdempotencyKey)).all()


def secret_names(client, headers) -> list[str]:
    return [item["name"] for item in client.get(SECRETS, headers=headers).get_json()["data"]]


# -- replay and conflict -----------------------------------------------------------------

def test_a_retry_of_a_secret_create_replays_it_and_creates_nothing(client, headers):
    first = post(client, SECRETS, headers, "create-token-1", json=TOKEN_BODY)
    again = post(client, SECRETS, headers, "create-token-1", json=TOKEN_BODY)
    assert first.status_code == again.status_code == 201
    assert REPLAYED not in first.headers and again.headers[REPLAYED] == "true"
    assert again.get_data() == first.get_data()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert secret_names(client, headers) == ["API_TOKEN"]


def test_the_same_key_with_another_body_is_a_conflict(client, headers):
    assert post(client, SECRETS, headers, "k", json=TOKEN_BODY).status_code == 201
    other = post(client, SECRETS, headers, "k", json=TOKEN_BODY | {"value": "another"})
    assert (other.status_code, error_code(other)) == (409, "idempotency_conflict")
    assert REPLAYED not in other.headers
    assert secret_names(client, headers) == ["API_TOKEN"]


def test_requests_without_the_header_are_not_deduplicated(client, headers):
    assert client.post(SECRETS, json=TOKEN_BODY, headers=headers).status_code == 201
    again = client.post(SECRETS, json=TOKEN_BODY, headers=headers)
    assert (again.status_code, error_code(again)) == (409, "name_taken")


def test_an_api_key_replay_carries_the_same_secret_which_is_stored_sealed(client, headers,
                                                                          session):
    body = {"name": "deploy bot", "template": "full"}
    first = post(client, API_KEYS, headers, "new-key", json=body)
    again = post(client, API_KEYS, headers, "new-key", json=body)
    assert first.status_code == again.status_code == 201
    secret = first.get_json()["key"]
    assert secret.startswith("sk_") and again.get_json() == first.get_json()
    assert again.headers[REPLAYED] == "true"
    names = [k["name"] for k in client.get(API_KEYS, headers=headers).get_json()["data"]]
    assert names.count("deploy bot") == 1

    raw = session.execute(sa.text("SELECT * FROM idempotency_keys")).all()
    assert len(raw) == 1
    for value in raw[0]:
        if isinstance(value, bytes | memoryview):
            assert secret.encode() not in bytes(value)
        else:
            assert secret not in str(value)
    assert raw[0]._mapping["response_status"] == 201
    assert raw[0]._mapping["response_sealed"]


def test_a_multipart_pack_upload_retried_creates_one_pack(client, headers, blob_dir):
    def upload(files: dict[str, bytes], name: str = "docs"):
        data = {"name": name, "files": [(io.BytesIO(c), p) for p, c in files.items()]}
        return post(client, PACKS, headers, "pack-upload", data=data,
                    content_type="multipart/form-data")

    files = {"README.md": b"# Docs\n", "guide/intro.md": b"Hello\n" * 5000}
    first = upload(files)
    assert first.status_code == 201, first.get_json()
    # Hashing read the file parts; the view still saw every byte of them.
    assert first.get_json()["latest"]["file_count"] == 2
    assert first.get_json()["latest"]["total_bytes"] == sum(map(len, files.values()))
    again = upload(files)  # the test client writes a new boundary each time
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.get_json() == first.get_json()
    assert len(client.get(PACKS, headers=headers).get_json()["data"]) == 1

    changed = upload(files | {"README.md": b"# Docs, changed\n"})
    assert (changed.status_code, error_code(changed)) == (409, "idempotency_conflict")
    renamed = upload(files, name="other")
    assert (renamed.status_code, error_code(renamed)) == (409, "idempotency_conflict")


# -- what is stored, and what is not -----------------------------------------------------

def test_a_4xx_answer_is_stored_and_replayed(client, headers, session):
    client.post(SECRETS, json=TOKEN_BODY, headers=headers)
    taken = post(client, SECRETS, headers, "dup", json=TOKEN_BODY)
    assert (taken.status_code, error_code(taken)) == (409, "name_taken")
    existing = client.get(SECRETS, headers=headers).get_json()["data"][0]["id"]
    assert client.delete(f"{SECRETS}/{existing}", headers=headers).status_code == 200

    # The name is free now, but the key's first answer stands.
    again = post(client, SECRETS, headers, "dup", json=TOKEN_BODY)
    assert again.status_code == 409 and again.headers[REPLAYED] == "true"
    assert again.get_json() == taken.get_json()
    assert secret_names(client, headers) == []

    invalid = post(client, SECRETS, headers, "bad", json={"name": "not valid!", "value": "x"})
    assert (invalid.status_code, error_code(invalid)) == (400, "validation_error")
    replayed = post(client, SECRETS, headers, "bad", json={"name": "not valid!", "value": "x"})
    assert replayed.headers[REPLAYED] == "true" and replayed.get_json() == invalid.get_json()
    assert sorted(r.response_status for r in rows(session)) == [400, 409]


@pytest.mark.parametrize("failure", [
    RuntimeError("database fell over"),
    EvershellError(ErrorCode.SERVICE_UNAVAILABLE, "busy", 503),
])
def test_a_5xx_is_not_stored_and_the_retry_runs(client, headers, session, monkeypatch,
                                               failure):
    original = secret_services.create

    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr(secret_services, "create", failing)
    broken = post(client, SECRETS, headers, "flaky", json=TOKEN_BODY)
    assert broken.status_code >= 500
    assert rows(session) == []
    monkeypatch.setattr(secret_services, "create", original)
    retry = post(client, SECRETS, headers, "flaky", json=TOKEN_BODY)
    assert retry.status_code == 201 and REPLAYED not in retry.headers
    assert secret_names(client, headers) == ["API_TOKEN"]


def test_guard_refusals_are_not_stored(app, client, org, owner, headers, session,
                                       monkeypatch):
    unauthenticated = client.post(SECRETS, json=TOKEN_BODY, headers={KEY: "g"})
    assert unauthenticated.status_code == 401
    reader = bearer(make_api_key(owner, scopes=["secrets:read"]))
    assert post(client, SECRETS, reader, "g", json=TOKEN_BODY).status_code == 403
    wrong_type = post(client, SECRETS, headers, "g", data="name=API_TOKEN",
                      content_type="text/plain")
    assert wrong_type.status_code == 415

    org.billing_posture = BillingPosture.PAST_DUE
    session.commit()
    assert post(client, SECRETS, headers, "g", json=TOKEN_BODY).status_code == 423
    org.billing_posture = BillingPosture.ACTIVE
    session.commit()

    monkeypatch.setitem(app.config, "RATE_LIMIT_BURST", 1)
    monkeypatch.setitem(app.config, "RATE_LIMIT_PER_MINUTE", 1)
    client.get(SECRETS, headers=headers)
    assert post(client, SECRETS, headers, "g", json=TOKEN_BODY).status_code == 429
    assert rows(session) == []
    monkeypatch.undo()
    get_redis().flushdb()  # a full bucket again

    # None of those answers is replayed: the same key and body now run.
    created = post(client, SECRETS, headers, "g", json=TOKEN_BODY)
    assert created.status_code == 201 and REPLAYED not in created.headers


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "caf\u00e9"])
def test_a_malformed_key_is_a_400_before_anything_runs(client, headers, session, bad):
    response = post(client, SECRETS, headers, bad, json=TOKEN_BODY)
    assert (response.status_code, error_code(response)) == (400, "validation_error")
    assert KEY in response.get_json()["error"]["details"]["fields"]
    assert rows(session) == [] and secret_names(client, headers) == []


def test_the_longest_key_and_every_printable_character_are_accepted(client, headers):
    assert post(client, SECRETS, headers, "k" * 255, json=TOKEN_BODY).status_code == 201
    printable = "".join(chr(c) for c in range(0x21, 0x7f))
    assert post(client, SECRETS, headers, printable,
                json=TOKEN_BODY | {"name": "OTHER"}).status_code == 201


def test_routes_that_are_not_create_class_posts_ignore_the_header(client, headers):
    created = post(client, SECRETS, headers, "k", json=TOKEN_BODY).get_json()
    url = f"{SECRETS}/{created['id']}"
    for description in ("one", "two"):
        response = client.patch(url, json={"description": description},
                                headers={**headers, KEY: "k"})
        assert response.status_code == 200 and REPLAYED not in response.headers
    assert client.get(url, headers=headers).get_json()["description"] == "two"


# -- scope -------------------------------------------------------------------------------

def test_keys_are_scoped_to_org_principal_and_route(client, owner, headers):
    assert post(client, SECRETS, headers, "shared", json=TOKEN_BODY).status_code == 201

    # Another API key of the same user: its own scope, so another body is no conflict.
    second_key = bearer(make_api_key(owner))
    other = post(client, SECRETS, second_key, "shared", json=TOKEN_BODY | {"name": "OTHER"})
    assert other.status_code == 201 and REPLAYED not in other.headers

    # Another org, the same key and body: runs there.
    elsewhere = bearer(make_api_key(make_member(make_org(), role="owner")))
    there = post(client, SECRETS, elsewhere, "shared", json=TOKEN_BODY)
    assert there.status_code == 201 and REPLAYED not in there.headers

    # Another route of the same principal.
    api_key = post(client, API_KEYS, headers, "shared", json={"name": "x", "template": "full"})
    assert api_key.status_code == 201 and REPLAYED not in api_key.headers
    assert sorted(secret_names(client, headers)) == ["API_TOKEN", "OTHER"]


# -- time: dead claims and the 24 hours --------------------------------------------------

class RequestDied(BaseException):
    """What a killed worker looks like from inside the request: not an Exception."""


def test_a_claim_whose_request_died_lapses_after_60_seconds(client, headers, clock,
                                                           monkeypatch):
    original = secret_services.create

    def die(*args, **kwargs):
        raise RequestDied

    monkeypatch.setattr(secret_services, "create", die)
    with pytest.raises(RequestDied):
        post(client, SECRETS, headers, "dies", json=TOKEN_BODY)
    monkeypatch.setattr(secret_services, "create", original)

    waiting = post(client, SECRETS, headers, "dies", json=TOKEN_BODY)
    assert (waiting.status_code, error_code(waiting)) == (409, "idempotency_in_progress")
    assert waiting.headers["Retry-After"] == "1"
    clock.advance(seconds=59)
    assert error_code(post(client, SECRETS, headers, "dies", json=TOKEN_BODY)) == \
        "idempotency_in_progress"
    clock.advance(seconds=1)
    retried = post(client, SECRETS, headers, "dies", json=TOKEN_BODY)
    assert retried.status_code == 201 and REPLAYED not in retried.headers
    assert post(client, SECRETS, headers, "dies", json=TOKEN_BODY).headers[REPLAYED] == "true"
    assert secret_names(client, headers) == ["API_TOKEN"]


def test_answers_are_kept_24_hours_then_the_key_runs_again(client, headers, clock, session):
    body = {"name": "nightly", "template": "full"}
    first = post(client, API_KEYS, headers, "nightly", json=body)
    clock.advance(hours=24, seconds=-1)
    replay = post(client, API_KEYS, headers, "nightly", json=body)
    assert replay.headers[REPLAYED] == "true" and replay.get_json() == first.get_json()
    assert idempotency.delete_expired(clock.now) == 0

    clock.advance(seconds=1)
    fresh = post(client, API_KEYS, headers, "nightly", json=body)
    assert fresh.status_code == 201 and REPLAYED not in fresh.headers
    assert fresh.get_json()["id"] != first.get_json()["id"]

    clock.advance(hours=24)
    assert post(client, SECRETS, headers, "other", json=TOKEN_BODY).status_code == 201
    assert idempotency.delete_expired(clock.now) == 1  # the newest claim stays
    assert [r.key for r in rows(session)] == ["other"]


def test_a_lost_claim_cannot_store_its_answer_or_commit_its_mutation(client, headers, clock,
                                                                     monkeypatch):
    """A request that ran past its lease while a retry took the key over changes nothing."""
    original = api_key_services.create
    body = {"name": "slow", "template": "full"}
    retried: dict = {}

    def slow_then_retried(*args, **kwargs):
        monkeypatch.setattr(api_key_services, "create", original)
        clock.advance(seconds=61)
        retried["response"] = post(client, API_KEYS, headers, "slow", json=body)
        return original(*args, **kwargs)

    monkeypatch.setattr(api_key_services, "create", slow_then_retried)
    first = post(client, API_KEYS, headers, "slow", json=body)
    assert retried["response"].status_code == 201
    assert (first.status_code, error_code(first)) == (409, "idempotency_in_progress")
    names = [k["name"] for k in client.get(API_KEYS, headers=headers).get_json()["data"]]
    assert names.count("slow") == 1
    replay = post(client, API_KEYS, headers, "slow", json=body)
    assert replay.get_json() == retried["response"].get_json()


# -- OpenAPI -----------------------------------------------------------------------------

def test_every_create_class_post_documents_the_header_and_its_409s(app, client):
    spec = client.get("/v1/openapi.json").get_json()
    documented = 0
    for rule, method, _endpoint, declaration in declarations(app):
        if declaration is None or declaration.public:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
        operation = spec["paths"][path][method.lower()]
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        if idempotency.applies(declaration, method):
            documented += 1
            assert KEY in names, (method, path)
            assert {"idempotency_conflict", "idempotency_in_progress"} <= \
                set(operation["x-error-codes"]["409"]), (method, path)
            success = next(s for s in operation["responses"] if s.startswith("2"))
            assert REPLAYED in operation["responses"][success]["headers"]
        else:
            assert KEY not in names, (method, path)
    assert documented >= 7  # secrets, credentials, api keys, providers, roles, packs, members


# -- real concurrency --------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_db(tmp_path_factory):
    """A database of this module's own (the name tells ``_isolated`` to keep out): threads
    need connections of their own, which one rolled-back transaction cannot give."""
    return sibling_database(os.environ.get("DATABASE_URL"), "idempotency",
                            tmp_path_factory.mktemp("idempotency-db"))


@pytest.fixture(scope="module")
def threaded(live_db, app_config, tmp_path_factory):
    from flask_migrate import upgrade
    app = create_app({**app_config, "DATABASE_URL": live_db,
                      "INSTANCE_DIR": str(tmp_path_factory.mktemp("idempotency-instance")),
                      "RATE_LIMIT_PER_MINUTE": 1_000_000, "RATE_LIMIT_BURST": 1_000_000})
    with app.app_context():
        upgrade()
        key = make_api_key(make_member(make_org(), role="owner"))
        db.session.remove()
    yield app, bearer(key)
    with app.app_context():
        db.engine.dispose()


def test_a_retry_while_the_first_runs_is_in_progress_then_replays(threaded, monkeypatch):
    app, headers = threaded
    entered, proceed = threading.Event(), threading.Event()
    original = secret_services.create

    def slow(*args, **kwargs):
        entered.set()
        assert proceed.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(secret_services, "create", slow)
    body = {"name": "SLOW", "value": "v"}
    results: dict = {}
    first = threading.Thread(target=lambda: results.setdefault(
        "first", post(app.test_client(), SECRETS, headers, "slow-1", json=body)))
    first.start()
    try:
        assert entered.wait(30)
        client = app.test_client()
        waiting = post(client, SECRETS, headers, "slow-1", json=body)
        assert (waiting.status_code, error_code(waiting)) == (409, "idempotency_in_progress")
        other = post(client, SECRETS, headers, "slow-1", json=body | {"value": "w"})
        assert (other.status_code, error_code(other)) == (409, "idempotency_conflict")
    finally:
        proceed.set()
        first.join(30)
    assert results["first"].status_code == 201
    replay = post(app.test_client(), SECRETS, headers, "slow-1", json=body)
    assert replay.headers[REPLAYED] == "true"
    assert replay.get_json() == results["first"].get_json()


@pytest.fixture(scope="module")
def live_server(redis_url, tmp_path_factory):
    """gunicorn with the gevent worker, as in the Procfile, on a database of its own."""
    database = sibling_database(os.environ.get("DATABASE_URL"), "idempotency_live",
                                tmp_path_factory.mktemp("idempotency-live-db"))
    env = evershell_env(
        DATABASE_URL=database, REDIS_URL=redis_url,
        EVERSHELL_INSTANCE_DIR=str(tmp_path_factory.mktemp("idempotency-live")),
        SECRET_KEY="idempotency-secret", EVERSHELL_RATE_LIMIT_PER_MINUTE="1000000",
        EVERSHELL_RATE_LIMIT_BURST="100000")
    key = seed_owner_key(env, "retry")
    log = tmp_path_factory.mktemp("idempotency-log") / "web.log"
    with gunicorn(env, workers=2, log=log) as url:
        yield url, {"Authorization": f"Bearer {key}"}


def test_concurrent_requests_with_one_key_run_exactly_once(live_server):
    base, headers = live_server
    clients = 8
    barrier = threading.Barrier(clients)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait(30)
        response = requests.post(f"{base}{API_KEYS}", timeout=30,
                                 headers={**headers, KEY: "burst-1"},
                                 json={"name": "burst", "template": "full"})
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(responses) == clients
    ran = [r for r in responses if r.status_code == 201 and REPLAYED not in r.headers]
    assert len(ran) == 1, [(r.status_code, r.text[:200]) for r in responses]
    for response in responses:
        if response.status_code == 201:
            assert response.json() == ran[0].json()  # replays carry the same secret
        else:
            assert (response.status_code, response.json()["error"]["code"]) == \
                (409, "idempotency_in_progress"), response.text
    listed = requests.get(f"{base}{API_KEYS}", headers=headers, params={"limit": 100},
                          timeout=30).json()["data"]
    assert [k["name"] for k in listed].count("burst") == 1
    final = requests.post(f"{base}{API_KEYS}", timeout=30, headers={**headers, KEY: "burst-1"},
                          json={"name": "burst", "template": "full"})
    assert final.headers[REPLAYED] == "true" and final.json() == ran[0].json()
