"""`evershell up` runs web, worker and an embedded Redis, and Ctrl-C stops them all."""

from __future__ import annotations

import signal
import subprocess
import time

import redis
import requests
from rq import Queue, Worker

from evershell.core import embedded_redis
from tests.support.processes import BIN, ROOT, evershell_env, free_port, wait_for_http


def test_up_serves_runs_a_worker_and_stops_cleanly(tmp_path):
    port = free_port()
    env = evershell_env(EVERSHELL_INSTANCE_DIR=str(tmp_path), PORT=str(port),
                        EVERSHELL_LOCALAUTH_URL=f"http://127.0.0.1:{free_port()}")
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([str(BIN / "evershell"), "up"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", proc, seconds=60)
        wait_for_http(env["EVERSHELL_LOCALAUTH_URL"] + "/health", proc, seconds=30)
        assert requests.get(f"http://127.0.0.1:{port}/sign-in", timeout=5).ok
        # The embedded Redis answers on its socket and the worker registered on it.
        client = redis.Redis.from_url(embedded_redis.url_for(tmp_path))
        deadline = time.monotonic() + 30
        while not Worker.all(connection=client) and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = Worker.all(connection=client)
        assert workers and {q.name for q in workers[0].queues} >= {"workspaces", "tasks"}
        assert (tmp_path / "evershell.db").exists()
        Queue("default", connection=client)  # the queue is reachable from outside too
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, output
    assert "Evershell stopped." in output
    try:
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
        raise AssertionError("web still answering after Ctrl-C")
    except requests.ConnectionError:
        pass
    assert not embedded_redis._answering(embedded_redis.socket_path(tmp_path))
