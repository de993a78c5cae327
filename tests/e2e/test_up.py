"""`evershell up` runs web, worker and an embedded Redis in the foreground, and Ctrl-C
stops them all, quietly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
import requests
from rq import Queue, Worker

from evershell.core import embedded_redis
from tests.support.processes import BIN, ROOT, evershell_env, free_port, wait_for_http

KEY_WARNING = "EVERSHELL_SECRETS_KEYS is not set"


class Up:
    """`evershell up` as a terminal runs it: the foreground job, leading a process group
    of its own, so a Ctrl-C is SIGINT to that whole group."""

    def __init__(self, instance_dir: Path) -> None:
        self.instance_dir = instance_dir
        self.port = free_port()
        # The worker refuses a sandbox root other users cannot reach, and pytest's
        # tmp_path lies under a private directory: put the sandboxes under /tmp itself.
        sandboxes = tempfile.mkdtemp(prefix="evershell-up-sandboxes-", dir="/tmp")
        os.chmod(sandboxes, 0o711)
        self.env = evershell_env(EVERSHELL_INSTANCE_DIR=str(instance_dir), PORT=str(self.port),
                                 EVERSHELL_LOCALAUTH_URL=f"http://127.0.0.1:{free_port()}",
                                 EVERSHELL_SANDBOX_ROOT=sandboxes)
        self.sandboxes = Path(sandboxes)
        for name in ("DATABASE_URL", "REDIS_URL", "EVERSHELL_SECRETS_KEYS"):
            self.env.pop(name, None)
        self.proc = subprocess.Popen([str(BIN / "evershell"), "up"], env=self.env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_announced(self, seconds: float = 90) -> None:
        wait_for_http(self.url + "/health", self.proc, seconds=seconds)
        deadline = time.monotonic() + seconds
        while not any("Evershell is up" in line for line in self.lines):
            assert time.monotonic() < deadline and self.proc.poll() is None, self.output
            time.sleep(0.1)

    def ctrl_c(self, seconds: float = 60) -> str:
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(seconds)
        self._reader.join(10)
        return self.output

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def processes(self) -> set[int]:
        """Every live process started for this instance (they inherit its setting)."""
        marker = f"EVERSHELL_INSTANCE_DIR={self.instance_dir}".encode()
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
        return found

    def wait_for_no_processes(self, seconds: float = 30) -> set[int]:
        deadline = time.monotonic() + seconds
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        shutil.rmtree(self.sandboxes, ignore_errors=True)


def test_up_serves_runs_a_worker_and_ctrl_c_stops_everything_quietly(tmp_path):
    up = Up(tmp_path)
    try:
        up.wait_until_announced()
        wait_for_http(up.env["EVERSHELL_LOCALAUTH_URL"] + "/health", up.proc, seconds=30)
        assert requests.get(up.url + "/sign-in", timeout=5).ok
        # The embedded Redis answers on its socket and the worker registered on it.
        client = redis.Redis.from_url(embedded_redis.url_for(tmp_path))
        deadline = time.monotonic() + 30
        while not Worker.all(connection=client) and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = Worker.all(connection=client)
        assert workers and {q.name for q in workers[0].queues} >= {"workspaces", "tasks"}
        assert (tmp_path / "evershell.db").exists()
        Queue("default", connection=client)  # the queue is reachable from outside too
        # up, redis, localauth, gunicorn and its 2 workers, the RQ worker
        assert len(up.processes()) >= 6
        output = up.ctrl_c()
    finally:
        up.kill()
        print(up.output)  # shown when the test fails
    assert up.proc.returncode == 0, output
    assert output.rstrip().endswith("Evershell stopped."), output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "Error" not in output, output  # e.g. a worker losing Redis before it stopped
    assert up.wait_for_no_processes() == set(), output
    assert output.count(KEY_WARNING) == 1, output  # once, by up, not by each child
    try:
        requests.get(up.url + "/health", timeout=2)
        raise AssertionError("web still answering after Ctrl-C")
    except requests.ConnectionError:
        pass
    assert not embedded_redis._answering(embedded_redis.socket_path(tmp_path))


def test_a_second_up_on_one_instance_is_refused_and_a_killed_up_leaves_nothing(tmp_path):
    up = Up(tmp_path)
    try:
        up.wait_until_announced()
        second = subprocess.run([str(BIN / "evershell"), "up", "--port", str(free_port())],
                                env=up.env, cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode != 0
        assert f"evershell up is already running for {tmp_path} (pid {up.proc.pid})" \
            in second.stderr
        assert "Traceback" not in second.stderr
        assert requests.get(up.url + "/health", timeout=5).ok  # the first one is unharmed
        # kill -9 of up itself: its children are told to stop (PR_SET_PDEATHSIG).
        up.proc.kill()
        up.proc.wait(10)
        assert up.wait_for_no_processes(seconds=40) == set()
    finally:
        up.kill()
        for pid in up.processes():
            os.kill(pid, signal.SIGKILL)
