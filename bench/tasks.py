"""Task latency through the real stack, as ratios against a floor measured in the same run.

Starts `evershell up` on a fresh instance (SQLite, embedded Redis, one web and one worker
process), makes a scripted role whose task makes one tool call, then for N tasks measures
  start     POST /v1/tasks → task.started
  complete  POST /v1/tasks → task.completed
  cancel    POST /v1/tasks/{id}/cancel of a task running `sleep 600` → task.cancelled
and prints p50 and p95 of each ÷ the floor: one RQ enqueue→dequeue→run round trip of a
no-op job on the same Redis plus one bare `bwrap --unshare-all -- true`.

    .venv/bin/python bench/tasks.py [--tasks 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _cli(env, *args) -> str:
    return subprocess.run([str(BIN / "evershell"), *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def _event_time(base, headers, task_id, wanted: str, seconds: float = 60) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        log = requests.get(f"{base}/v1/tasks/{task_id}/log?limit=1000", headers=headers,
                           timeout=10).json()["data"]
        for event in log:
            if event["type"] == wanted:
                return datetime.fromisoformat(event["created_at"]).timestamp()
        time.sleep(0.02)
    raise TimeoutError(f"{task_id}: no {wanted}")


def _floor(redis_url: str, rounds: int = 20) -> list[float]:
    from redis import Redis
    from rq import Queue, SimpleWorker
    connection = Redis.from_url(redis_url)
    queue = Queue("bench-floor", connection=connection)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        queue.enqueue("builtins.len", "x")
        SimpleWorker([queue], connection=connection).work(burst=True, with_scheduler=False)
        subprocess.run(["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--", "true"],
                       check=True)
        samples.append(time.perf_counter() - started)
    return samples


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="evershell-bench-"))
    instance.chmod(0o755)
    port = 8300 + os.getpid() % 500
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(EVERSHELL_INSTANCE_DIR=str(instance), PORT=str(port), EVERSHELL_DEMO="false",
               EVERSHELL_LOCALAUTH_URL=f"http://127.0.0.1:{port + 1}",
               EVERSHELL_RATE_LIMIT_BURST="100000")
    up = subprocess.Popen([str(BIN / "evershell"), "up"], env=env, cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/health")
        _cli(env, "org", "create", "--name", "Bench", "--slug", "bench")
        _cli(env, "user", "add", "--org", "bench", "--email", "b@bench.test", "--role", "owner")
        key = _cli(env, "apikey", "create", "--org", "bench", "--user", "b@bench.test",
                   "--name", "bench").split()[-1]
        headers = {"Authorization": f"Bearer {key}"}

        def role(name, script):
            provider = requests.post(f"{base}/v1/providers", headers=headers, json={
                "name": name, "kind": "scripted", "models": ["s"], "script": script}).json()
            return requests.post(f"{base}/v1/roles", headers=headers, json={
                "name": name, "provider_id": provider["id"], "model": "s",
                "capabilities": "tools: [shell]\n"}).json()["id"]

        quick = role("quick", [{"tool_calls": [{"name": "shell",
                                                "arguments": {"command": "true"}}]},
                               {"text": "done"}])
        slow = role("slow", [{"tool_calls": [{"name": "shell",
                                              "arguments": {"command": "sleep 600"}}]},
                             {"text": "never"}])
        # One workspace per role, then every task is a follow-up in it: what is measured
        # is the task path, not provisioning.
        starts, completes, cancels = [], [], []
        first = requests.post(f"{base}/v1/tasks", headers=headers,
                              json={"role_id": quick, "description": "warm up"}).json()
        _event_time(base, headers, first["task_id"], "task.completed")
        for _ in range(args.tasks):
            sent = time.time()
            task = requests.post(f"{base}/v1/workspaces/{first['workspace_id']}/tasks",
                                 headers=headers, json={"description": "one tool call"})
            task_id = task.json()["task_id"]
            starts.append(_event_time(base, headers, task_id, "task.started") - sent)
            completes.append(_event_time(base, headers, task_id, "task.completed") - sent)
        sleeper = requests.post(f"{base}/v1/tasks", headers=headers,
                                json={"role_id": slow, "description": "sleep"}).json()
        workspace = sleeper["workspace_id"]
        for index in range(max(5, args.tasks // 5)):
            task_id = sleeper["task_id"] if index == 0 else requests.post(
                f"{base}/v1/workspaces/{workspace}/tasks", headers=headers,
                json={"description": "sleep"}).json()["task_id"]
            _event_time(base, headers, task_id, "tool.call")
            time.sleep(0.2)  # the command is running
            sent = time.time()
            requests.post(f"{base}/v1/tasks/{task_id}/cancel", headers=headers)
            cancels.append(_event_time(base, headers, task_id, "task.cancelled") - sent)
        from evershell.core import embedded_redis
        floor = _floor(embedded_redis.url_for(instance))
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(60)
        shutil.rmtree(instance, ignore_errors=True)
    floor_median = statistics.median(floor)
    print(f"floor (RQ round trip + bare bwrap): median {floor_median * 1000:.1f} ms")
    for name, values in (("start", starts), ("complete", completes), ("cancel", cancels)):
        p50, p95 = _pct(values, 0.5), _pct(values, 0.95)
        print(f"{name:9} n={len(values):3}  p50 {p50 * 1000:7.1f} ms ({p50 / floor_median:5.2f}x)"
              f"  p95 {p95 * 1000:7.1f} ms ({p95 / floor_median:5.2f}x)")


if __name__ == "__main__":
    main()
