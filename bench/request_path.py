"""What a request costs on the way to its view, counted and timed from outside.

Starts gunicorn as the Procfile does (Evershell's worker class, two workers) on a
scratch database, seeds an org, and for a representative set of routes prints:

- the SQL statements, Redis round trips and database transactions of one request once
  the caller's principal is warm (``X-Evershell-Stats``, from
  ``EVERSHELL_REQUEST_STATS``): counts, not timings, so they are exact;
- requests/s of the route ÷ requests/s of a bare Flask route (``{"ok": true}``) on the
  same gunicorn command line, measured alternately in the same run (``wrk -t2 -c32``,
  several rounds; min and median of the ratios).

    .venv/bin/python bench/request_path.py                 # SQLite, embedded Redis
    DATABASE_URL=postgresql://postgres@127.0.0.1/test REDIS_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/request_path.py [--rounds 3] [--seconds 3]

The PostgreSQL database is dropped and recreated; the Redis database is flushed. Needs
``wrk`` (``apt-get install wrk``). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = ROOT / ".venv" / "bin"
BARE = '''
from flask import Flask
app = Flask(__name__)
@app.get("/ok")
def ok():
    return {"ok": True}
'''
CREATE_LUA = '''
local counter = 0
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = string.format('{"name": "B_%d_%d_%d", "value": "v"}', os.time(), tid, counter)
  return wrk.format(nil, nil, nil, body)
end
'''


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    import requests
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def start(stack: ExitStack, command: list[str], env: dict, health: str) -> None:
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    stack.callback(lambda: (proc.terminate(), proc.wait(20)))
    wait_for(health, proc)


def gunicorn(stack: ExitStack, env: dict, app: str, chdir: Path) -> str:
    port = free_port()
    start(stack, [str(BIN / "gunicorn"), "--chdir", str(chdir), "-k", "evershell.server.Worker",
                  "-w", "2", "-b", f"127.0.0.1:{port}", app], env,
          f"http://127.0.0.1:{port}/health" if app == "app:app" else f"http://127.0.0.1:{port}/ok")
    return f"http://127.0.0.1:{port}"


def _on_server(url: str, *statements: str) -> None:
    """Run ``statements`` on the PostgreSQL server of ``url``, outside a transaction."""
    import sqlalchemy as sa

    from evershell.config import normalise_database_url
    admin = sa.create_engine(normalise_database_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    admin.dispose()


def scratch_database(url: str | None, tmp: Path) -> str:
    if not url:
        return f"sqlite:///{tmp}/bench.db"
    _on_server(url, "DROP DATABASE IF EXISTS evershell_bench WITH (FORCE)",
               "CREATE DATABASE evershell_bench")
    return url.rsplit("/", 1)[0] + "/evershell_bench"


def seed(env: dict) -> dict:
    """An org, its owner, an API key, a role with a pack, and a finished task."""
    import io

    os.environ.update(env)
    from flask_migrate import upgrade

    from evershell import create_app
    from evershell.extensions import db
    app = create_app()
    with app.app_context():
        upgrade()
        from evershell.packs import services as packs
        from evershell.providers import services as providers
        from evershell.roles import services as roles
        from evershell.tasks import services as tasks
        from tests.factories import make_api_key, make_member, make_org, principal_for
        owner = make_member(make_org("Bench", "bench"), role="owner", email="owner@bench.test")
        actor = principal_for(owner)
        key = make_api_key(owner)
        pack = packs.create(actor, "notes", files=[("README.md", io.BytesIO(b"# notes\n"))])
        provider = providers.create(actor, {"kind": "scripted", "name": "scripted",
                                            "script": [{"text": "hi"}], "models": ["s"]})
        role = roles.create(actor, {"name": "bench-role", "provider_id": provider.id,
                                    "model": "s", "pack_ids": [pack.id]})
        task = tasks.submit(actor, {"role_id": role.role.id, "description": "bench"}, [])
        db.session.commit()
        tasks.cancel(actor, task.id)
        db.session.commit()
        return {"key": key, "role_id": role.role.id, "task_id": task.id,
                "email": owner.user.email}


def cookie_for(base: str, email: str) -> str:
    """Sign in through /auth/login and the local AuthKit server; the session cookie."""
    import requests
    session = requests.Session()
    start_ = session.get(f"{base}/auth/login", allow_redirects=False)
    authorize = start_.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    form = requests.post(authorize.split("?")[0], data={**query, "email": email},
                         allow_redirects=False, timeout=10)
    back = form.headers["Location"]
    session.get(back, allow_redirects=False)
    return session.cookies.get("wos_session")


def counts(url: str, headers: dict, method: str = "GET", body: str | None = None) -> str:
    import requests
    value = ""
    for attempt in range(8):  # warms the principal cache of both gunicorn workers
        data = body.replace("%d", str(attempt) + str(time.time_ns())) if body else None
        response = requests.request(method, url, headers=headers, data=data, timeout=10,
                                    stream=True)
        value = response.headers.get("X-Evershell-Stats", "?")
        response.close()
    return value


def wrk(url: str, seconds: int, headers: dict, script: Path | None = None) -> float:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"    warning: {non2xx.group(1)} non-2xx answers from {url}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        (tmp / "bare.py").write_text(BARE)
        (tmp / "create.lua").write_text(CREATE_LUA)
        server_url = os.environ.get("DATABASE_URL")
        database = scratch_database(server_url, tmp)
        if database.startswith("postgresql"):
            stack.callback(lambda: scratch_database_drop(server_url))
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            from evershell.core import embedded_redis
            child = embedded_redis.ensure_running(str(tmp), daemonize=False)
            stack.callback(lambda: child and child.terminate())
            redis_url = embedded_redis.url_for(str(tmp))
        import redis
        redis.Redis.from_url(redis_url).flushdb()
        localauth = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url,
               "EVERSHELL_INSTANCE_DIR": str(tmp), "SECRET_KEY": "bench",
               "EVERSHELL_RATE_LIMIT_PER_MINUTE": str(10**9),
               "EVERSHELL_RATE_LIMIT_BURST": str(10**9), "EVERSHELL_REQUEST_STATS": "true",
               "EVERSHELL_LOCALAUTH_URL": localauth, "EVERSHELL_LOG_LEVEL": "WARNING"}
        seeded = seed(env)
        port = urlsplit(localauth).port
        start(stack, [sys.executable, "-m", "evershell.localauth"],
              {**env, "LOCALAUTH_HOST": "127.0.0.1", "LOCALAUTH_PORT": str(port),
               "LOCALAUTH_ISSUER": localauth,
               "LOCALAUTH_KEY_FILE": str(tmp / "localauth-key.pem")},
              f"{localauth}/.well-known/openid-configuration")
        web_port = free_port()
        env["EVERSHELL_PUBLIC_URL"] = f"http://127.0.0.1:{web_port}"
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--chdir", str(ROOT), "-k", "evershell.server.Worker",
             "-w", "2", "-b", f"127.0.0.1:{web_port}", "app:app"], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (proc.terminate(), proc.wait(20)))
        base = env["EVERSHELL_PUBLIC_URL"]
        wait_for(f"{base}/health", proc)
        bare = gunicorn(stack, {**env, "PYTHONPATH": str(tmp)}, "bare:app", tmp)
        key = {"Authorization": f"Bearer {seeded['key']}"}
        cookie = {"Cookie": f"wos_session={cookie_for(base, seeded['email'])}"}
        routes = [
            ("API-key read  GET /v1/roles/{id}", f"/v1/roles/{seeded['role_id']}", key, None),
            ("cookie read   GET /v1/roles/{id}", f"/v1/roles/{seeded['role_id']}", cookie,
             None),
            ("list          GET /v1/roles?limit=50", "/v1/roles?limit=50", key, None),
            ("create        POST /v1/secrets", "/v1/secrets", key, tmp / "create.lua"),
            ("SSE connect   GET /v1/tasks/{id}/events", f"/v1/tasks/{seeded['task_id']}/events",
             key, None),
        ]
        print(f"database: {database.split(':')[0]}; gunicorn -k evershell.server.Worker -w 2; "
              f"wrk -t2 -c32 -d{args.seconds}s; {args.rounds} rounds\n")
        print(f"{'route':44} {'sql':>4} {'redis':>6} {'tx':>3} {'ratio min':>10} {'median':>7}")
        for label, path, headers, script in routes:
            if script is None:
                stats = counts(base + path, headers)
            else:
                stats = counts(base + path, {**headers, "Content-Type": "application/json"},
                               "POST", '{"name": "C_%d", "value": "v"}')
            sql, red, tx = re.findall(r"\d+", stats)[:3] if stats != "?" else ("?",) * 3
            ratios = []
            for _ in range(args.rounds):
                baseline = wrk(f"{bare}/ok", args.seconds, {})
                ratios.append(wrk(base + path, args.seconds, headers, script) / baseline)
            print(f"{label:44} {sql:>4} {red:>6} {tx:>3} {min(ratios):>10.3f} "
                  f"{statistics.median(ratios):>7.3f}", flush=True)


def scratch_database_drop(url: str) -> None:
    _on_server(url, "DROP DATABASE IF EXISTS evershell_bench WITH (FORCE)")


if __name__ == "__main__":
    main()
