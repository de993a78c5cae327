"""The embedded Redis: Debian's ``redis-server`` on a unix socket under the instance dir.

Used only when ``REDIS_URL`` is unset. Whichever process needs Redis first (``evershell
up``, a web worker, an RQ worker) starts it; a file lock keeps two processes from starting
two servers, and the others find the socket answering. Data persists as RDB snapshots in
``<instance>/redis/`` so queued jobs survive a restart.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger("evershell.redis")


class EmbeddedRedisError(RuntimeError):
    pass


def socket_path(instance_dir: str | Path) -> Path:
    return Path(instance_dir) / "redis" / "redis.sock"


def url_for(instance_dir: str | Path) -> str:
    return f"unix://{socket_path(instance_dir)}"


def _answering(sock: Path) -> bool:
    if not sock.exists():
        return False
    import redis  # here, not at the top: the admin commands import this module, never Redis
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def server_command(instance_dir: str | Path, daemonize: bool) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise EmbeddedRedisError(
            "REDIS_URL is unset and redis-server is not installed; run bin/setup "
            "(apt-get install redis-server) or point REDIS_URL at a Redis server")
    data_dir = socket_path(instance_dir).parent
    return [
        binary, "--port", "0", "--unixsocket", str(socket_path(instance_dir)),
        "--unixsocketperm", "700", "--dir", str(data_dir),
        "--save", "60 1", "--appendonly", "no",
        "--pidfile", str(data_dir / "redis.pid"),
        "--logfile", str(data_dir / "redis.log"),
        "--daemonize", "yes" if daemonize else "no",
    ]


def answering(instance_dir: str | Path) -> bool:
    """Whether an embedded Redis answers on the instance's socket."""
    return _answering(socket_path(instance_dir))


def shutdown(instance_dir: str | Path, timeout: float = 10.0) -> None:
    """Stop the embedded Redis answering on the instance's socket, saving its data first."""
    import redis
    sock = socket_path(instance_dir)
    try:
        redis.Redis(unix_socket_path=str(sock), socket_timeout=timeout).shutdown(save=True)
    except (redis.ConnectionError, OSError):
        pass  # the server closes the connection as it exits
    deadline = time.monotonic() + timeout
    while _answering(sock):
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"embedded redis-server on {sock} did not stop")
        time.sleep(0.05)


def ensure_running(instance_dir: str | Path, timeout: float = 10.0,
                   daemonize: bool = True,
                   popen_kwargs: dict | None = None) -> subprocess.Popen | None:
    """Start the embedded Redis unless it already answers; return the child if we own it.

    With ``daemonize`` the server outlives this process (the lazy path for web and worker);
    without, the caller (``evershell up``) supervises and stops it, starting it with
    ``popen_kwargs`` (its own process group).
    """
    sock = socket_path(instance_dir)
    if _answering(sock):
        return None
    sock.parent.mkdir(parents=True, exist_ok=True)
    with open(sock.parent / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answering(sock):
            return None
        log.info("starting embedded redis-server on %s", sock)
        child = subprocess.Popen(server_command(instance_dir, daemonize),
                                 **(popen_kwargs or {}))
        if daemonize:
            child.wait(timeout=timeout)
            child = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answering(sock):
                return child
            if child is not None and child.poll() is not None:
                break
            time.sleep(0.05)
    raise EmbeddedRedisError(
        f"embedded redis-server did not answer on {sock}; see {sock.parent / 'redis.log'}")
