"""What the sandbox hides and forbids — each probe also run unsandboxed as the same uid,
where it must see the host, so the tests prove the sandbox and not the uid's rights."""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from evershell.sandbox import Limits
from tests.sandbox.conftest import run_unsandboxed

PROJECT = Path(__file__).resolve().parents[2]
WRITABLE_PROBE = r"""python3 - <<'PY'
import os
for top, dirs, files in os.walk('/'):
    if top.startswith(('/proc', '/sys')):
        dirs[:] = []
        continue
    probe = os.path.join(top, '.evershell-write-probe')
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    except OSError:
        continue
    os.unlink(probe)
    print(top)
PY"""


@pytest.fixture
def canaries(backend, uid, tmp_path_factory):
    """World-readable canary files where a sandbox must not reach, and a live unix socket
    like the embedded Redis one in a fake instance directory."""
    token, name = secrets.token_hex(8), secrets.token_hex(4)  # the content never in a path
    instance = Path(tempfile.mkdtemp(prefix="evershell-instance-"))
    instance.chmod(0o755)
    (instance / "redis").mkdir(mode=0o755)
    places = {"instance": instance / "secret_key", "project": PROJECT / f".canary-{name}",
              "home": Path("/home") / f".evershell-canary-{name}",
              "host tmp": Path("/tmp") / f"evershell-canary-{name}"}
    for path in places.values():
        path.write_text(f"canary {token}\n")
        path.chmod(0o644)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(instance / "redis" / "redis.sock"))
    os.chmod(instance / "redis" / "redis.sock", 0o777)
    listener.listen()
    backend.materialise("ws-other", uid + 1, [])
    backend.write_file("ws-other", uid + 1, "/data/work/canary", f"canary {token}\n".encode())
    yield token, places, instance / "redis" / "redis.sock"
    listener.close()
    backend.destroy("ws-other")
    for path in places.values():
        path.unlink(missing_ok=True)
    for path in sorted(instance.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    instance.rmdir()


def _sandboxed(backend, workspace, uid, command):
    return backend.exec(workspace, uid, command, env={}, limits=Limits(wall_seconds=30))


def test_canaries_are_readable_on_the_host_but_not_in_the_sandbox(
        backend, workspace, uid, canaries):
    token, places, _ = canaries
    for where, path in places.items():
        probe = f"cat {path}"
        assert token.encode() in run_unsandboxed(uid, probe).stdout, where
        inside = _sandboxed(backend, workspace, uid, probe)
        assert inside.exit_code != 0 and token.encode() not in inside.output, where
    other = backend.live_path("ws-other")
    probe = f"test -e {other.parent} && echo visible"
    assert b"visible" in run_unsandboxed(uid, probe).stdout  # the path exists on the host
    inside = _sandboxed(backend, workspace, uid, probe + f"; ls -R /data; cat {other}/work/*")
    assert b"visible" not in inside.output and token.encode() not in inside.output


def test_database_and_redis_sockets_are_absent(backend, workspace, uid, canaries):
    _, _, redis_socket = canaries
    probe = (f"for s in /var/run/postgresql /run/postgresql {redis_socket} /run /var/run; "
             "do test -e $s && echo present:$s; done; true")
    host = run_unsandboxed(uid, probe).stdout
    assert f"present:{redis_socket}".encode() in host and b"present:/run\n" in host
    if Path("/var/run/postgresql").exists():
        assert b"present:/var/run/postgresql" in host
    inside = _sandboxed(backend, workspace, uid, probe)
    assert inside.exit_code == 0 and b"present" not in inside.output


def test_only_data_areas_and_tmp_are_writable(backend, workspace, uid):
    host = run_unsandboxed(uid, WRITABLE_PROBE).stdout.decode().split()
    assert "/tmp" in host  # the probe finds writable places when there are some
    inside = _sandboxed(backend, workspace, uid, WRITABLE_PROBE)
    assert inside.exit_code == 0, inside.output
    found = inside.output.decode().split()
    assert {"/data/uploads", "/data/work", "/tmp"} <= set(found)
    assert [d for d in found if not d.startswith(("/data/uploads", "/data/work", "/tmp"))] == []


def test_network_none_is_only_loopback(backend, workspace, uid):
    probe = "tail -n +3 /proc/net/dev | cut -d: -f1"
    assert len(run_unsandboxed(uid, probe).stdout.split()) > 1
    inside = _sandboxed(backend, workspace, uid, probe)
    assert inside.output.split() == [b"lo"]


def test_commands_run_as_the_host_uid(backend, workspace, uid):
    marker = secrets.token_hex(4)
    seen: dict[int, list[str]] = {}

    def watch():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not seen:
            for entry in Path("/proc").iterdir():
                try:
                    if entry.name.isdigit() and marker.encode() in (
                            entry / "cmdline").read_bytes():
                        status = (entry / "status").read_text().splitlines()
                        seen[int(entry.name)] = [line for line in status
                                                 if line.startswith(("Uid:", "Gid:"))]
                except OSError:
                    continue
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = _sandboxed(backend, workspace, uid, f"sleep 1.5 # {marker}")
    watcher.join()
    assert result.exit_code == 0
    assert seen, "the sandboxed process was not found from the host"
    for lines in seen.values():
        assert lines == [f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}", f"Gid:\t{uid}\t{uid}\t{uid}\t{uid}"]
