"""Running Evershell's real processes (gunicorn, `evershell up`) for live tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {seconds}s: {last}")


def evershell_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(overrides)
    return env


def run_cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([str(BIN / "evershell"), *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"evershell {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


def stop(proc: subprocess.Popen, seconds: float = 20) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 1, app: str = "app:app",
             log: Path | None = None, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """gunicorn with Evershell's worker class, as the Procfile runs it; its base URL.
    Its output goes to ``log`` (printed when the block ends, so a failing test shows
    it) or nowhere."""
    port = free_port()
    command = [str(BIN / "gunicorn"), "--chdir", str(ROOT), "-k", "evershell.server.Worker",
               "-w", str(workers), "-b", f"127.0.0.1:{port}", *extra, app]
    with (log.open("w") if log else open(os.devnull, "w")) as sink:
        web = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", web)
        yield url
    finally:
        stop(web)
        if log is not None:
            print(log.read_text()[-20000:])


def seed_owner_key(env: dict[str, str], slug: str) -> str:
    """An org, its owner and a full API key of theirs, through the CLI; the key."""
    run_cli("db", "upgrade", env=env)
    run_cli("org", "create", "--name", slug.title(), "--slug", slug, env=env)
    run_cli("user", "add", "--org", slug, "--email", f"owner@{slug}.test", "--role", "owner",
            env=env)
    return run_cli("apikey", "create", "--org", slug, "--user", f"owner@{slug}.test",
                   "--name", "load", env=env).split()[-1]


def processes_of(uid: int, zombies: bool = False) -> list[int]:
    """Processes of host ``uid``: live ones, or with ``zombies`` also the dead ones not
    yet reaped (nothing runs in them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if not zombies and "State:\tZ" in status:
                continue
            for line in status.splitlines():
                if line.startswith("Uid:") and int(line.split()[1]) == uid:
                    found.append(int(entry.name))
    return found


def running_command(uid: int, command: str) -> bool:
    """A live process of ``uid`` whose command line is ``command``."""
    for pid in processes_of(uid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if cmdline.decode(errors="replace").strip() == command:
            return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and \
        "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
