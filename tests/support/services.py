"""Make sure the PostgreSQL and Redis the test suite uses are answering.

``python -m tests.support.services PG_URL REDIS_URL``: starts the local servers when they
are installed but down (the commands Debian's packages use), and fails with a clear
message when they cannot be reached. Uses only the standard library and the installed
drivers, so it runs before anything else.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from urllib.parse import urlparse

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def _pg_answers(url: str) -> bool:
    import psycopg
    parsed = urlparse(url)
    try:
        psycopg.connect(
            host=parsed.hostname or "127.0.0.1", port=parsed.port or 5432,
            user=parsed.username or "postgres", password=parsed.password,
            dbname="postgres", connect_timeout=3).close()
        return True
    except psycopg.OperationalError as exc:
        _pg_answers.last_error = str(exc).strip()  # type: ignore[attr-defined]
        return False


def _redis_answers(url: str) -> bool:
    import redis
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=3).ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def _wait(check, url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check(url):
            return True
        time.sleep(0.5)
    return False


def ensure_postgres(url: str) -> None:
    if _pg_answers(url):
        return
    if urlparse(url).hostname not in LOCAL_HOSTS:
        sys.exit(f"PostgreSQL at {url} does not answer: {_pg_answers.last_error}")
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions or not shutil.which("pg_ctlcluster"):
        sys.exit("PostgreSQL is not installed here; run bin/setup --test or set TEST_DATABASE_URL")
    print(f"services: starting PostgreSQL {versions[-1]}", flush=True)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                   check=False)
    if not _wait(_pg_answers, url):
        sys.exit(f"PostgreSQL at {url} did not come up: {_pg_answers.last_error}")


def ensure_redis(url: str) -> None:
    if _redis_answers(url):
        return
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS or not shutil.which("redis-server"):
        sys.exit(f"Redis at {url} does not answer and cannot be started here")
    print("services: starting redis-server", flush=True)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
                    "--port", str(parsed.port or 6379), "--save", "", "--appendonly", "no"],
                   check=True)
    if not _wait(_redis_answers, url):
        sys.exit(f"Redis at {url} did not come up")


if __name__ == "__main__":
    ensure_postgres(sys.argv[1])
    ensure_redis(sys.argv[2])
    print("services: PostgreSQL and Redis answer", flush=True)
