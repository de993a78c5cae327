"""Fixtures for the sandbox tests: a real bubblewrap backend on a scratch root, its own
cgroup parent and host uids, all removed afterwards (no database needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from evershell.sandbox import cgroups, doctor
from evershell.sandbox.local import LocalBackend
from tests.support.processes import processes_of as support_processes_of

# High, rarely used uids; offset by pid so two test runs on one host do not share them.
UID_BASE = 3_900_000 + (os.getpid() % 5000) * 8


def _unusable() -> str | None:
    if os.geteuid() != 0:
        return "the local sandbox backend needs root (it switches to workspace uids)"
    problems = [f"{item}: {detail}" for item, detail, ok in doctor.report() if not ok]
    return "; ".join(problems) or None


@pytest.fixture(scope="session")
def backend() -> Iterator[LocalBackend]:
    reason = _unusable()
    if reason:
        pytest.skip(f"bubblewrap sandbox unusable here: {reason}")
    root = Path(tempfile.mkdtemp(prefix="evershell-sandbox-test-"))
    root.chmod(0o711)  # bwrap, as the workspace uid, resolves /data by path
    parent = f"evershell-test-{os.getpid()}"
    yield LocalBackend(root / "sandboxes", cgroup_parent=parent)
    for workspace in (root / "sandboxes").glob("[!.]*"):
        LocalBackend(root / "sandboxes", cgroup_parent=parent).destroy(workspace.name)
    shutil.rmtree(root)
    for hierarchy in ("memory", "pids", "cpuacct", "freezer", ""):
        path = cgroups.ROOT / hierarchy / parent
        if path.is_dir():
            path.rmdir()


@pytest.fixture
def uid() -> Iterator[int]:
    """A host uid of this test's own; asserts nothing of it is left running."""
    uid = UID_BASE + (abs(hash(os.environ.get("PYTEST_CURRENT_TEST", ""))) % 8)
    yield uid
    left = processes_of(uid)
    assert left == [], f"processes of uid {uid} left behind: {describe(left)}"


@pytest.fixture
def workspace(backend, uid, request) -> Iterator[str]:
    """A materialised workspace, destroyed after the test."""
    name = "ws-" + request.node.name.replace("[", "-").replace("]", "")[:40]
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    backend.materialise(name, uid, [])
    yield name
    backend.destroy(name)
    assert not cgroups.groups_of(backend.cgroup_parent, name)


def processes_of(uid: int) -> list[int]:
    """Host pids whose real uid is ``uid``, zombies included."""
    return support_processes_of(uid, zombies=True)


def describe(pids: list[int]) -> list[str]:
    """``/proc/<pid>/stat`` of each pid, for failure messages."""
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/stat").read_text()[:60])
        except OSError:
            out.append(f"{pid} (gone)")
    return out


def run_unsandboxed(uid: int, command: str) -> subprocess.CompletedProcess:
    """The same probe as a plain subprocess of that uid on the host."""
    def drop() -> None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, cwd="/",
                          preexec_fn=drop, timeout=60)
