"""The audit log at scale: the first filtered page of GET /v1/audit over 1,000,000 rows,
against the same SQL run directly, on PostgreSQL.

Makes a scratch database, inserts the rows with one ``INSERT … SELECT generate_series``
(1,000 actors, five actions), starts gunicorn as the Procfile does, and for each filter
prints the median latency of the HTTP request (API key, warm) and of the route's own
SQL statement run directly with psycopg, and their ratio; and the same for the request's
time above the HTTP floor (``GET /health`` through the same client and server), which
no change to the route can go below. Drops the database at the end.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/audit_scale.py [--rows 1000000] [--samples 200]

Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.request_path import free_port, scratch_database, scratch_database_drop  # noqa: E402

INSERT = """
INSERT INTO audit_entries (id, org_id, created_at, actor_user_id, actor_email,
                           credential_shape, action, target_type, target_id, outcome, details)
SELECT 'aud_0' || lpad(g::text, 25, '0'), :org_id, now() - make_interval(secs => g),
       'user_' || (g % 1000), 'user' || (g % 1000) || '@bench.test', 'api_key',
       (ARRAY['secret.create', 'role.update', 'provider.create', 'api_key.create',
              'task.submit'])[1 + g % 5],
       'secret', 'sec_' || g, 'success', '{"name": "X"}'::json
FROM generate_series(1, :rows) AS g
"""


def median_ms(call, samples: int) -> float:
    for _ in range(10):
        call()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (the bench makes and "
                         "drops a scratch database of its own there)")
    import requests
    import sqlalchemy as sa

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        database = scratch_database(url, Path(tmp))
        stack.callback(lambda: scratch_database_drop(url))
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5")
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url,
               "EVERSHELL_INSTANCE_DIR": tmp, "SECRET_KEY": "bench",
               "EVERSHELL_RATE_LIMIT_PER_MINUTE": str(10**9),
               "EVERSHELL_RATE_LIMIT_BURST": str(10**9), "EVERSHELL_LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        from flask_migrate import upgrade

        from evershell import create_app
        from evershell.audit import queries
        from evershell.audit.models import AuditEntry
        from evershell.extensions import db
        from tests.factories import make_api_key, make_member, make_org
        app = create_app()
        with app.app_context():
            upgrade()
            owner = make_member(make_org("Audit", "audit"), role="owner")
            key, org_id = make_api_key(owner), owner.org_id
            started = time.perf_counter()
            db.session.execute(sa.text(INSERT), {"org_id": org_id, "rows": args.rows})
            db.session.commit()
            db.session.execute(sa.text("ANALYZE audit_entries"))
            db.session.commit()
            print(f"inserted {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
            statements = {}
            for label, filters in (("actor=<email>", {"actor": "user7@bench.test"}),
                                   ("action=<action>", {"action": "role.update"})):
                query = queries.filtered(org_id, **filters).order_by(
                    AuditEntry.id.desc()).limit(51)
                compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
                statements[label] = (filters, str(compiled))
            db.session.remove()
            db.engine.dispose()

        import subprocess
        port = free_port()
        web = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--chdir", str(ROOT), "-k",
             "evershell.server.Worker", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (web.terminate(), web.wait(20)))
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(f"{base}/health", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        import psycopg
        direct = psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://"))
        stack.callback(direct.close)
        floor_ms = median_ms(lambda: http.get(f"{base}/health", timeout=30), args.samples)
        print(f"HTTP floor (GET /health, same client and server): {floor_ms:.2f} ms")
        print(f"{'filter':18} {'HTTP ms':>8} {'SQL ms':>7} {'ratio':>6} "
              f"{'above floor':>12} {'ratio':>6}")
        for label, (filters, sql) in statements.items():
            query = "&".join(f"{k}={v}" for k, v in filters.items())

            def over_http(query=query):
                response = http.get(f"{base}/v1/audit?{query}&limit=50", timeout=30)
                assert response.status_code == 200 and len(response.json()["data"]) == 50

            def run_directly(sql=sql):
                rows = direct.execute(sql).fetchall()
                assert len(rows) == 51

            web_ms = median_ms(over_http, args.samples)
            sql_ms = median_ms(run_directly, args.samples)
            above = web_ms - floor_ms
            print(f"{label:18} {web_ms:8.2f} {sql_ms:7.2f} {web_ms / sql_ms:6.2f} "
                  f"{above:12.2f} {above / sql_ms:6.2f}", flush=True)


if __name__ == "__main__":
    main()
