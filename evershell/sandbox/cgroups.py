"""One cgroup per exec: limits, accounting, and killing the whole tree.

cgroup v2 is used where ``/sys/fs/cgroup`` is a unified mount with the memory, pids and
cpu controllers available; otherwise the v1 hierarchies of a hybrid host (``memory``,
``pids``, ``cpuacct`` and ``freezer``, each mounted at ``/sys/fs/cgroup/<name>``). Every
exec's group is ``<parent>/<workspace>.<random>`` so ``destroy`` can find the groups of a
workspace from any worker process.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from evershell.sandbox.backend import HostNotReady

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpuacct", "freezer")
V2_CONTROLLERS = ("memory", "pids", "cpu")


@dataclass(frozen=True)
class Support:
    """Which cgroup version this host offers us, and what is missing."""

    version: int | None
    missing: tuple[str, ...] = ()


def detect(root: Path = ROOT) -> Support:
    """v2 when the unified hierarchy has our controllers, else v1 when its are mounted."""
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        have = controllers.read_text().split()
        return Support(2, tuple(c for c in V2_CONTROLLERS if c not in have))
    mounted = _v1_hierarchies()
    missing = tuple(name for name in V1_CONTROLLERS
                    if name not in mounted or not (root / name / "cgroup.procs").exists())
    if len(missing) == len(V1_CONTROLLERS):
        return Support(None, missing)
    return Support(1, missing)


def _v1_hierarchies() -> set[str]:
    """Controllers the kernel has enabled and attached to a v1 hierarchy."""
    try:
        lines = Path("/proc/cgroups").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {w[0] for w in (line.split() for line in lines)
            if len(w) == 4 and w[1] != "0" and w[3] == "1"}


class ExecGroup:
    """The cgroup(s) of one exec; create with :meth:`create`, end with :meth:`remove`."""

    def __init__(self, version: int, dirs: dict[str, Path]) -> None:
        self.version, self.dirs = version, dirs

    @classmethod
    def create(cls, parent: str, workspace_id: str, *, memory_bytes: int, pids: int,
               root: Path = ROOT) -> ExecGroup:
        """Make the group and set its memory and process limits."""
        support = detect(root)
        if support.version is None or support.missing:
            raise HostNotReady(f"cgroup controllers missing: {', '.join(support.missing)}")
        name = f"{workspace_id}.{secrets.token_hex(6)}"
        if support.version == 2:
            base = root / parent
            base.mkdir(exist_ok=True)
            enable = " ".join(f"+{c}" for c in V2_CONTROLLERS)
            for level in (root, base):
                (level / "cgroup.subtree_control").write_text(enable)
            group = cls(2, {"all": base / name})
        else:
            group = cls(1, {c: root / c / parent / name for c in V1_CONTROLLERS})
        try:
            for path in group.dirs.values():
                path.mkdir(parents=True)
            group._set_limits(memory_bytes, pids)
        except BaseException:
            group.remove()
            raise
        return group

    def _set_limits(self, memory_bytes: int, pids: int) -> None:
        if self.version == 2:
            d = self.dirs["all"]
            (d / "memory.max").write_text(str(memory_bytes))
            if (d / "memory.swap.max").exists():
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(pids))
            return
        memory = self.dirs["memory"]
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():  # memory+swap = memory: no escaping the limit into swap
            swap.write_text(str(memory_bytes))
        (self.dirs["pids"] / "pids.max").write_text(str(pids))

    def join_fds(self) -> list[int]:
        """Open ``cgroup.procs`` of every hierarchy, for the child to write its pid into
        between fork and exec (so not one of its processes starts outside the group)."""
        return [os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
                for d in self.dirs.values()]

    def _dir(self, controller: str) -> Path:
        return self.dirs["all" if self.version == 2 else controller]

    def _read(self, controller: str, filename: str) -> str | None:
        try:
            return (self._dir(controller) / filename).read_text()
        except OSError:
            return None

    def _counter(self, controller: str, filename: str, key: str) -> int:
        for line in (self._read(controller, filename) or "").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == key:
                return int(words[1])
        return 0

    def cpu_seconds(self) -> float:
        """CPU time used by every process of the group so far."""
        if self.version == 2:
            return self._counter("cpu", "cpu.stat", "usage_usec") / 1e6
        text = self._read("cpuacct", "cpuacct.usage")
        return int(text) / 1e9 if text else 0.0

    def peak_memory(self) -> int | None:
        """The group's peak memory use in bytes (None where the kernel does not say)."""
        text = self._read("memory", "memory.peak" if self.version == 2
                          else "memory.max_usage_in_bytes")
        return int(text) if text and text.strip().isdigit() else None

    def oom_kills(self) -> int:
        """How many processes the kernel killed for the memory limit."""
        if self.version == 2:
            return self._counter("memory", "memory.events", "oom_kill")
        return self._counter("memory", "memory.oom_control", "oom_kill")

    def forks_refused(self) -> int:
        """How many forks the process limit refused."""
        return self._counter("pids", "pids.events", "max")

    def pids(self) -> list[int]:
        """Every process still in the group."""
        text = self._read("pids", "cgroup.procs") or ""
        return [int(p) for p in text.split()]

    def kill_all(self, timeout: float = 5.0) -> None:
        """Kill every process of the group and wait until it is empty.

        Frozen first, so nothing forks between reading the pid list and the kill. The
        tree's root (bwrap, a child of the worker) is spared for a moment: it reaps the
        killed command and exits, so no zombie is left to the host's init, where it would
        count against the uid's RLIMIT_NPROC until reaped.
        """
        if not self.pids():
            return
        deadline = time.monotonic() + timeout
        self._freeze(True, deadline)
        try:
            self._kill_inner(set(self.pids()))
        finally:
            self._freeze(False, deadline)
        childless_since: float | None = None
        while pids := set(self.pids()):
            now = time.monotonic()
            if now > deadline:
                raise HostNotReady(f"processes {sorted(pids)} survived SIGKILL")
            if self._kill_inner(pids):
                childless_since = None
            elif childless_since is None:
                childless_since = now
            elif now - childless_since > 1.0:  # a root that does not exit on its own
                for pid in pids:
                    _kill(pid)
            time.sleep(0.005)

    def _kill_inner(self, pids: set[int]) -> bool:
        inner = {pid for pid in pids if _parent(pid) in pids}
        for pid in inner:
            _kill(pid)
        return bool(inner)

    def _freeze(self, frozen: bool, deadline: float) -> None:
        try:
            self._set_frozen(frozen, deadline)
        except OSError as error:  # removed meanwhile (destroy elsewhere): it was empty
            if error.errno not in (errno.ENOENT, errno.ENODEV):
                raise

    def _set_frozen(self, frozen: bool, deadline: float) -> None:
        if self.version == 2:
            control, events = self.dirs["all"] / "cgroup.freeze", self.dirs["all"] / "cgroup.events"
            control.write_text("1" if frozen else "0")
            want = f"frozen {int(frozen)}"
            while want not in events.read_text().splitlines() and time.monotonic() < deadline:
                time.sleep(0.002)
            return
        state = self.dirs["freezer"] / "freezer.state"
        state.write_text("FROZEN" if frozen else "THAWED")
        while frozen and state.read_text().strip() != "FROZEN" and time.monotonic() < deadline:
            time.sleep(0.002)

    def remove(self) -> None:
        """Remove the group's directories (the group must be empty)."""
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last task is still exiting
                    time.sleep(0.01)


def _parent(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat_line.rsplit(")", 1)[1].split()[1])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def groups_of(parent: str, workspace_id: str, root: Path = ROOT) -> list[ExecGroup]:
    """The exec groups of a workspace that still exist, whichever process made them."""
    support = detect(root)
    if support.version == 2:
        return [ExecGroup(2, {"all": p})
                for p in sorted((root / parent).glob(f"{workspace_id}.*")) if p.is_dir()]
    if support.version != 1:
        return []
    names = {p.name for p in (root / "pids" / parent).glob(f"{workspace_id}.*") if p.is_dir()}
    return [ExecGroup(1, {c: root / c / parent / n for c in V1_CONTROLLERS})
            for n in sorted(names)]
