"""The audit log at scale: the first filtered page of GET /v1/audit over 1,000,000 rows,
against the same SQL run directly, on PostgreSQL.

Makes a scratch database, inserts the rows with one ``INSERT … SELECT generate_series``
(1,000 actors, five actions), starts gunicorn as the Procfile does, and for each filter
prints the median latency of:

- the HTTP request (API key, warm);
- the same SQL run directly behind the same HTTP server: a bare Flask app on the same
  gunicorn command line whose one route runs the page's statement on a psycopg
  connection and returns its rows as JSON (no authentication, rate limit, validation or
  ORM) -- the route's cost against the least any HTTP route serving that query can cost;
- the statement run directly with psycopg in this process, and the HTTP floor
  (``GET /health`` through the same client and server): a request over HTTP from Python
  costs more than the statement itself, so no route can be within 2x of that figure.

Drops the database at the end.

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


BARE_SQL = '''
import os
from datetime import datetime

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
SQL = {"actor": os.environ["BENCH_ACTOR_SQL"], "action": os.environ["BENCH_ACTION_SQL"]}
connection = None


@app.get("/page/<name>")
def page(name):
    global connection
    if connection is None:
        connection = psycopg.connect(os.environ["BENCH_DATABASE"], autocommit=True)
    cursor = connection.execute(SQL[name])
    names = [column.name for column in cursor.description]
    rows = cursor.fetchall()
    data = [{key: value.isoformat() if isinstance(value, datetime) else value
             for key, value in zip(names, row)} for row in rows[:50]]
    return jsonify({"data": data, "next_cursor": rows[49][0] if len(rows) > 50 else None})


@app.get("/ok")
def ok():
    return {"ok": True}
'''


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
        from evershell.audit.api import ENTRY_FIELDS
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
                query = queries.filtered(org_id, **filters).with_only_columns(
                    *[AuditEntry.__table__.c[name] for name in ENTRY_FIELDS]).order_by(
                    AuditEntry.id.desc()).limit(51)
                compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
                statements[label] = (filters, str(compiled))
            db.session.remove()
            db.engine.dispose()

        import subprocess
        (Path(tmp) / "bare_sql.py").write_text(BARE_SQL)
        bare_port = free_port()
        bare = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--chdir", tmp, "-k",
             "evershell.server.Worker", "-w", "2", "-b", f"127.0.0.1:{bare_port}",
             "bare_sql:app"],
            env={**env, "PYTHONPATH": str(ROOT),
                 "BENCH_DATABASE": database.replace("postgresql+psycopg://", "postgresql://"),
                 "BENCH_ACTOR_SQL": statements["actor=<email>"][1],
                 "BENCH_ACTION_SQL": statements["action=<action>"][1]},
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (bare.terminate(), bare.wait(20)))
        port = free_port()
        web = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--chdir", str(ROOT), "-k",
             "evershell.server.Worker", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (web.terminate(), web.wait(20)))
        base = f"http://127.0.0.1:{port}"
        bare_base = f"http://127.0.0.1:{bare_port}"
        for ready in (f"{base}/health", f"{bare_base}/ok"):
            for _ in range(100):
                try:
                    requests.get(ready, timeout=2)
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
        print(f"{'filter':16} {'route ms':>8} {'bare SQL route ms':>17} {'ratio':>6} "
              f"{'SQL direct ms':>13} {'ratio':>6}")
        for label, (filters, sql) in statements.items():
            query = "&".join(f"{k}={v}" for k, v in filters.items())
            name = next(iter(filters))

            def over_http(query=query):
                response = http.get(f"{base}/v1/audit?{query}&limit=50", timeout=30)
                assert response.status_code == 200 and len(response.json()["data"]) == 50

            def bare_route(name=name):
                response = http.get(f"{bare_base}/page/{name}", timeout=30)
                assert response.status_code == 200 and len(response.json()["data"]) == 50

            def run_directly(sql=sql):
                rows = direct.execute(sql).fetchall()
                assert len(rows) == 51

            web_ms, bare_ms, sql_ms = [], [], []
            for _ in range(3):  # alternating rounds: the machine's noise hits all three
                web_ms.append(median_ms(over_http, args.samples))
                bare_ms.append(median_ms(bare_route, args.samples))
                sql_ms.append(median_ms(run_directly, args.samples))
            route, bare_, sql_ = (statistics.median(v) for v in (web_ms, bare_ms, sql_ms))
            print(f"{label:16} {route:8.2f} {bare_:17.2f} {route / bare_:6.2f} "
                  f"{sql_:13.2f} {route / sql_:6.2f}", flush=True)


if __name__ == "__main__":
    main()
