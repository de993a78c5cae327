"""How many SSE streams one web process holds, what each costs, and how fast an event
reaches 1,000 of them — Evershell's SSE helper against a bare gevent app in the same run.

Both servers are one gunicorn process with Evershell's gevent worker on loopback:

- evershell: ``evershell.events.sse.stream`` behind a plain route (no auth), on a scratch
  SQLite database and the Redis in REDIS_URL (or an embedded one). Events are appended
  by this script (``events.services.append`` + commit: the row, the counter, the
  publish after commit, the one subscription of the web process, its fan-out).
- bare: a WSGI function holding one gevent queue per stream and a ``POST /publish``
  that puts the frame into every queue of the stream: the floor of any SSE server on
  this stack (no database, no Redis).

For each: open N idle streams (N/2 on one hot stream, the rest on their own streams),
check the server counts them all, read the worker's RSS before and after (KiB per
stream), then send E events to the hot stream, E_GAP apart, and time each delivery
from just before the append (or the POST) to its arrival at each client.

    .venv/bin/python bench/sse.py [N=2000] [E=20]

Prints figures and ratios to the bare app; no thresholds, no assertions. Bounded: each
phase has a deadline; everything is killed at the end.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOT = "task:task_hot"
EVENT_GAP = 0.25
PHASE_SECONDS = 60
_SEQ = re.compile(rb'"seq":(\d+),"t":([0-9.]+)')


# ---- the two servers (gunicorn app factories: ``bench.sse:evershell_app()``) ----

def evershell_app():
    from flask import Blueprint, jsonify

    from evershell import create_app
    from evershell.events import live, sse

    app = create_app()
    blp = Blueprint("bench_sse", __name__)

    @blp.get("/stream/<path:key>")
    def stream(key: str):
        return sse.stream(key, after=None, terminal_types=set(), is_finished=None)

    @blp.get("/live")
    def live_state():
        return jsonify(pid=os.getpid(), clients=live.subscriber().client_count())

    app.register_blueprint(blp)
    return app


def bare_app():
    import gevent.queue

    streams: dict[str, set] = {}

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/live":
            body = json.dumps({"pid": os.getpid(),
                               "clients": sum(len(s) for s in streams.values())}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path.startswith("/publish/"):
            event = environ["wsgi.input"].read()
            parsed = json.loads(event)
            frame = f"id: {parsed['id']}\nevent: {parsed['type']}\ndata: ".encode() \
                + event + b"\n\n"
            for queue in list(streams.get(path[len("/publish/"):], ())):
                queue.put(frame)
            start_response("204 No Content", [])
            return []
        key = path[len("/stream/"):]
        queue = gevent.queue.Queue()
        streams.setdefault(key, set()).add(queue)

        def frames():
            try:
                yield b": open\n\n"
                while True:
                    try:
                        yield queue.get(timeout=15)
                    except gevent.queue.Empty:
                        yield b": heartbeat\n\n"
            finally:
                streams[key].discard(queue)

        start_response("200 OK", [("Content-Type", "text/event-stream"),
                                  ("Cache-Control", "no-cache")])
        return frames()

    return app


# ---- the measuring side (this process, under gevent) ----

def start_server(factory: str, port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "--chdir", str(ROOT), "-k", "evershell.server.Worker",
         "-w", "1", "--worker-connections", "100000", "--graceful-timeout", "1",
         "--log-level", "warning", "-b", f"127.0.0.1:{port}", f"bench.sse:{factory}()"],
        env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr, start_new_session=True)


def get_json(port: int, path: str) -> dict:
    import requests
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).json()


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            get_json(port, "/live")
            return
        except Exception:  # noqa: BLE001 — not up yet
            time.sleep(0.2)
    raise TimeoutError("server did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Stream:
    """One raw SSE connection; records (seq, latency seconds) of hot events."""

    def __init__(self, port: int, key: str):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET /stream/{key} HTTP/1.1\r\nHost: bench\r\n"
                          f"Accept: text/event-stream\r\n\r\n".encode())
        self.opened = False
        self.received: dict[int, float] = {}  # seq -> latency from the event's "t"
        self.arrived: dict[int, float] = {}  # seq -> when it arrived

    def run(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.time()
            buffer += chunk
            if not self.opened and b": open" in buffer:
                self.opened = True
            for seq, sent in _SEQ.findall(buffer):
                self.received.setdefault(int(seq), now - float(sent))
                self.arrived.setdefault(int(seq), now)
            buffer = buffer[-256:]

    def close(self) -> None:
        self.sock.close()


def percentile(values: list[float], fraction: float) -> float:
    return values[max(int(len(values) * fraction) - 1, 0)] if values else float("nan")


def measure(name: str, port: int, pid: int, n: int, events: int, send) -> dict:
    import gevent

    def open_streams(count: int, prefix: str, hot: int) -> list[Stream]:
        opened = []
        for i in range(count):
            stream = Stream(port, HOT if i < hot else f"{prefix}_{i}")
            gevent.spawn(stream.run)
            opened.append(stream)
            if i % 100 == 99:
                gevent.sleep(0.01)  # let the server accept
        return opened

    def wait_held(count: int) -> None:
        deadline = time.monotonic() + PHASE_SECONDS
        while get_json(port, "/live")["clients"] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: only {get_json(port, '/live')['clients']} held")
            gevent.sleep(0.2)

    warm = open_streams(20, "task:task_warm", 0)  # code paths paged in, pools filled
    wait_held(20)
    for stream in warm:
        stream.close()  # noticed by the server at their next heartbeat, so counted on
    gevent.sleep(1)
    before = rss_kib(pid)
    started = time.monotonic()
    streams = open_streams(n, "task:task_idle", n // 2)
    wait_held(n)
    deadline = time.monotonic() + PHASE_SECONDS
    while sum(s.opened for s in streams) < n and time.monotonic() < deadline:
        gevent.sleep(0.2)
    connect_seconds = time.monotonic() - started
    gevent.sleep(1)
    after = rss_kib(pid)
    hot = streams[: n // 2]
    sent: dict[int, float] = {}  # seq -> when the append committed (or the POST returned)
    for seq in range(1, events + 1):
        sent[seq] = send(seq)
        gevent.sleep(EVENT_GAP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(s.received) < events for s in hot):
        gevent.sleep(0.1)
    latencies = sorted(lat for s in hot for lat in s.received.values())
    # The same deliveries timed from the commit (evershell) or the POST's answer (bare):
    # what the live path adds after the event exists.
    after_sent = sorted(arrived - sent[seq] for s in hot for seq, arrived in s.arrived.items())
    missing = len(hot) * events - len(latencies)
    held = sum(s.opened for s in streams)
    for stream in streams:
        stream.close()
    return {"name": name, "held": held, "connect_s": connect_seconds,
            "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_stream": (after - before) / n, "hot_clients": len(hot),
            "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
            "p99_after_sent_ms": percentile(after_sent, 0.99) * 1000,
            "missing": missing}


def main() -> None:
    from gevent import monkey
    monkey.patch_all()

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * n + 500  # our sockets plus the server's, with room
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"ulimit -n allows {hard} descriptors; {needed} are needed for N={n}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))

    sys.path.insert(0, str(ROOT))
    import requests
    from flask_migrate import upgrade

    from evershell import create_app
    from evershell.core import embedded_redis
    from evershell.events import services
    from evershell.extensions import db
    from tests.support.processes import free_port

    servers: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis_child = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_child = embedded_redis.ensure_running(tmp, daemonize=False)
            redis_url = embedded_redis.url_for(tmp)
        config = {"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "REDIS_URL": redis_url,
                  "INSTANCE_DIR": tmp, "SECRET_KEY": "bench"}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(DATABASE_URL=config["DATABASE_URL"], REDIS_URL=redis_url,
                   EVERSHELL_INSTANCE_DIR=tmp, SECRET_KEY="bench", LOG_LEVEL="WARNING")
        app = create_app(config)
        try:
            with app.app_context():
                upgrade()
                from evershell.orgs import services as orgs
                org_id = orgs.create_org("Bench", "bench").id
                db.session.commit()

            def append(seq: int, key: str = HOT) -> float:
                with app.app_context():
                    services.append(org_id, key, "message.delta",
                                    {"seq": seq, "t": time.time()})
                    db.session.commit()
                return time.time()

            append(0, "task:task_warm")  # first-use costs of this process, not measured

            results = []
            for name, factory, send in (
                    ("bare gevent", "bare_app", None), ("evershell", "evershell_app", append)):
                port = free_port()
                proc = start_server(factory, port, env)
                servers.append(proc)
                wait_up(port, proc)
                pid = get_json(port, "/live")["pid"]
                if send is None:
                    def send(seq: int, port=port) -> float:
                        body = json.dumps({"id": seq, "type": "message.delta",
                                           "data": {"seq": seq, "t": time.time()}},
                                          separators=(",", ":"))
                        requests.post(f"http://127.0.0.1:{port}/publish/{HOT}", data=body,
                                      timeout=10)
                        return time.time()
                results.append(measure(name, port, pid, n, events, send))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            for proc in servers:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            if redis_child is not None:
                redis_child.terminate()
    report(results, n, events)


def report(results: list[dict], n: int, events: int) -> None:
    bare, ours = results
    print(f"{n} idle SSE streams per web process (one gunicorn gevent worker), "
          f"{events} events to {ours['hot_clients']} clients of one stream\n")
    print(f"{'':24}{'bare gevent':>14}{'evershell':>14}{'ratio':>9}")
    rows = [("streams held", "held", "{:.0f}"), ("connect all (s)", "connect_s", "{:.2f}"),
            ("RSS before (MiB)", "rss_before_kib", "{:.1f}"),
            ("RSS after (MiB)", "rss_after_kib", "{:.1f}"),
            ("KiB per idle stream", "kib_per_stream", "{:.1f}"),
            ("delivery p50 (ms)", "p50_ms", "{:.1f}"), ("delivery p99 (ms)", "p99_ms", "{:.1f}"),
            ("delivery max (ms)", "max_ms", "{:.1f}"),
            ("  p99 after commit (ms)", "p99_after_sent_ms", "{:.1f}"),
            ("deliveries missing", "missing", "{:.0f}")]
    for label, key, fmt in rows:
        scale = 1024 if key.startswith("rss") else 1
        a, b = bare[key] / scale, ours[key] / scale
        ratio = f"{b / a:8.2f}x" if a else "       -"
        print(f"{label:24}{fmt.format(a):>14}{fmt.format(b):>14}{ratio}")
    print("\ndelivery: from just before the append (evershell: row, counter, commit, publish)"
          " or the POST (bare) to arrival;\n'after commit': from the commit's (the POST's)"
          " return.")
    print("\naims: >= 2000 streams held, p99 <= 50 ms to 1000 clients, <= 50 KiB per stream")


if __name__ == "__main__":
    main()
