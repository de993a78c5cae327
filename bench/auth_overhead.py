"""How much an authenticated /v1 request costs over an unauthenticated one.

Runs in-process (Flask test client) on a scratch SQLite database and the Redis in
REDIS_URL (or an embedded one): N requests to ``GET /health`` (the baseline, measured in
the same run) against N to ``GET /v1/me`` with an API key (hash lookup, membership,
rate-limit script in Redis, scopes) and with a session JWT (signature check against a
cached JWKS is not exercised here: API keys are the automation path).

    .venv/bin/python bench/auth_overhead.py [N]

Prints the ratio; no thresholds, no assertions.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(client, path: str, headers: dict, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    from flask_migrate import upgrade

    from evershell import create_app
    from evershell.core import embedded_redis
    from evershell.extensions import db
    with tempfile.TemporaryDirectory() as tmp:
        redis_child = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_child = embedded_redis.ensure_running(tmp, daemonize=False)
            redis_url = embedded_redis.url_for(tmp)
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "REDIS_URL": redis_url,
                          "INSTANCE_DIR": tmp, "SECRET_KEY": "bench",
                          "RATE_LIMIT_PER_MINUTE": 10**9, "RATE_LIMIT_BURST": 10**9})
        try:
            with app.app_context():
                upgrade()
                from evershell.access import services as access
                from evershell.access.authn import build_principal
                from evershell.access.principal import CredentialShape
                from evershell.apikeys import services as api_keys
                from evershell.orgs import services as orgs
                org = orgs.create_org("Bench", "bench")
                member = access.add_member(org, "bench@example.test", "owner")
                actor = build_principal(member.user, org, CredentialShape.CLI)
                _key, secret = api_keys.create(actor, "bench", template="full")
                db.session.commit()
            client = app.test_client()
            timed(client, "/health", {}, 20)  # warm up
            base = timed(client, "/health", {}, n)
            keyed = timed(client, "/v1/me", {"Authorization": f"Bearer {secret}"}, n)
        finally:
            if redis_child is not None:
                redis_child.terminate()
    print(f"GET /health        {n} requests  {base * 1000 / n:7.3f} ms each (baseline)")
    print(f"GET /v1/me API key {n} requests  {keyed * 1000 / n:7.3f} ms each")
    print(f"ratio: {keyed / base:.2f}x the baseline")


if __name__ == "__main__":
    main()
