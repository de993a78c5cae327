"""Concurrent clients against a live server (gunicorn with gevent, as in the Procfile):
writers queue instead of failing, on SQLite as on PostgreSQL, and no write is lost.

Eight clients mix creates, updates of a shared secret, updates of their own secret and
reads for ``EVERSHELL_CONCURRENCY_SECONDS`` (30 by default). Every response must be
below 500; afterwards every acknowledged create exists, each client's own secret holds
its last acknowledged description, and the audit log holds one entry per acknowledged
update of the shared secret.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest
import requests

from tests.support.databases import sibling_database
from tests.support.processes import evershell_env, gunicorn, seed_owner_key

CLIENTS = 8
SECONDS = float(os.environ.get("EVERSHELL_CONCURRENCY_SECONDS", "30"))


@pytest.fixture(scope="module")
def server(redis_url, tmp_path_factory):
    database = sibling_database(os.environ.get("DATABASE_URL"), "concurrency",
                                tmp_path_factory.mktemp("concurrency-db"))
    env = evershell_env(
        DATABASE_URL=database, REDIS_URL=redis_url,
        EVERSHELL_INSTANCE_DIR=str(tmp_path_factory.mktemp("concurrency-instance")),
        SECRET_KEY="concurrency-secret", EVERSHELL_RATE_LIMIT_PER_MINUTE="1000000",
        EVERSHELL_RATE_LIMIT_BURST="100000")
    key = seed_owner_key(env, "busy")
    log = tmp_path_factory.mktemp("concurrency-log") / "web.log"
    with gunicorn(env, workers=2, log=log) as url:
        yield url, key


def test_eight_clients_mixing_reads_and_writes_get_no_5xx_and_lose_nothing(server):
    base, key = server
    headers = {"Authorization": f"Bearer {key}"}
    shared = requests.post(f"{base}/v1/secrets", headers=headers, timeout=10,
                           json={"name": "SHARED", "value": "v0"})
    assert shared.status_code == 201, shared.text
    shared_id = shared.json()["id"]

    statuses: Counter = Counter()
    failures: list[str] = []
    created: list[str] = []
    shared_updates = Counter()
    own_last: dict[int, tuple[str, str]] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(number: int) -> None:
        http = requests.Session()
        http.headers.update(headers)
        own = http.post(f"{base}/v1/secrets", json={"name": f"OWN_{number}", "value": "x"},
                        timeout=30)
        if own.status_code != 201:
            failures.append(f"own secret: {own.status_code} {own.text[:200]}")
            return
        own_id = own.json()["id"]
        step = 0
        while time.monotonic() < deadline:
            step += 1
            kind = step % 4
            if kind == 0:
                name = f"C{number}_{step}"
                response = http.post(f"{base}/v1/secrets", timeout=30,
                                     json={"name": name, "value": f"value {step}"})
                if response.status_code == 201:
                    with lock:
                        created.append(name)
            elif kind == 1:
                response = http.patch(f"{base}/v1/secrets/{shared_id}", timeout=30,
                                      json={"description": f"client {number} step {step}"})
                if response.status_code == 200:
                    with lock:
                        shared_updates["acknowledged"] += 1
            elif kind == 2:
                description = f"mine {step}"
                response = http.patch(f"{base}/v1/secrets/{own_id}", timeout=30,
                                      json={"description": description, "value": f"v{step}"})
                if response.status_code == 200:
                    own_last[number] = (own_id, description)
            else:
                response = http.get(f"{base}/v1/secrets", params={"limit": 20}, timeout=30)
            with lock:
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{response.request.method} {response.url}: "
                                    f"{response.status_code} {response.text[:300]}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 120)

    assert not failures, failures[:5]
    assert sum(statuses.values()) > CLIENTS * 10, statuses  # the load really ran
    assert set(statuses) <= {200, 201}, statuses

    names = set()
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{base}/v1/secrets", headers=headers, params=params,
                            timeout=30).json()
        names.update(item["name"] for item in page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(created) <= names
    for own_id, description in own_last.values():
        assert requests.get(f"{base}/v1/secrets/{own_id}", headers=headers,
                            timeout=30).json()["description"] == description

    audited = 0
    cursor = None
    while True:
        params = {"limit": 100, "action": "secret.update", "target": shared_id,
                  **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{base}/v1/audit", headers=headers, params=params, timeout=30)
        assert page.status_code == 200, page.text
        audited += len(page.json()["data"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert audited == shared_updates["acknowledged"]
