"""Running one sandboxed command: its process, its limits, its output, its result.

The command (bwrap and everything under it) is started already inside its exec cgroup,
with rlimits set and the workspace's host uid taken between fork and exec. One loop then
reads the combined output and, every few milliseconds, checks cancel, wall clock, CPU
time (from the cgroup) and disk use; whichever trips first kills the whole group and is
named in the result. Memory (OOM kill) and process-count refusals are read from the
cgroup's counters afterwards.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from evershell.sandbox.backend import ExecResult
from evershell.sandbox.cgroups import ExecGroup

POLL_SECONDS = 0.05
OPEN_FILES = 1024
# bwrap's monitor process lives in the exec's cgroup
# and under its uid, so the process limits leave room for them.
BWRAP_PROCESSES = 1


@dataclass(frozen=True)
class Budget:
    """Limits with every default filled in."""

    cpu_seconds: int
    wall_seconds: int
    memory_mb: int
    processes: int
    disk_mb: int
    max_output_bytes: int


def truncation_marker(limit: int) -> bytes:
    """The line that replaces output past ``max_output_bytes``."""
    return f"\n[output truncated: more than {limit} bytes; the command ran on]\n".encode()


def _child_setup(join_fds: list[int], uid: int, budget: Budget) -> Callable[[], None]:
    """Runs in the child between fork and exec: only system calls, no allocation-heavy
    Python, because the parent may have other threads holding locks."""
    pid_bytes_fds = list(join_fds)
    limits = [
        (resource.RLIMIT_CPU, (budget.cpu_seconds, budget.cpu_seconds + 1)),
        (resource.RLIMIT_FSIZE, (budget.disk_mb << 20, budget.disk_mb << 20)),
        (resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES)),
        # One above the cgroup's pids.max, so that within one exec the cgroup refuses
        # first and counts it (pids.events); the rlimit still binds the uid as a whole.
        (resource.RLIMIT_NPROC, (budget.processes + BWRAP_PROCESSES + 1,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ]

    def setup() -> None:
        os.setsid()
        pid = str(os.getpid()).encode()
        for fd in pid_bytes_fds:
            os.write(fd, pid)
        for which, value in limits:
            resource.setrlimit(which, value)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        # PR_SET_PDEATHSIG is reset by setuid; bwrap's --die-with-parent sets it again.

    return setup


def run(argv: list[str], *, env: dict[str, str], pass_fds: tuple[int, ...], uid: int,
        budget: Budget, group: ExecGroup, disk_usage: Callable[[], int],
        on_output: Callable[[bytes], None] | None,
        cancel: threading.Event | None, gone: Callable[[], bool] = lambda: False,
        ) -> ExecResult:
    """Start ``argv`` in ``group`` as ``uid`` and see it through to its result.

    ``gone`` says the workspace was destroyed meanwhile: the exec is then cancelled.
    """
    join_fds = group.join_fds()
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, pass_fds=pass_fds, cwd="/",
            preexec_fn=_child_setup(join_fds, uid, budget))
    finally:
        for fd in join_fds:
            os.close(fd)
    watch = _Watch(process, budget, group, disk_usage, on_output, cancel, started)
    watch.gone = gone
    try:
        watch.loop()
    finally:
        if process.poll() is None:
            group.kill_all()
        process.wait()
        group.kill_all()
    return watch.result(time.monotonic() - started)


class _Watch:
    def __init__(self, process, budget, group, disk_usage, on_output, cancel, started):
        self.process, self.budget, self.group = process, budget, group
        self.disk_usage, self.on_output, self.cancel = disk_usage, on_output, cancel
        self.started = started
        self.kept: list[bytes] = []
        self.kept_bytes = self.total_bytes = 0
        self.truncated = False
        self.killed_for: str | None = None
        self.disk_limit = budget.disk_mb << 20
        self.next_disk_check = started + 0.25
        self.disk_interval = 0.5

    def loop(self) -> None:
        stream = self.process.stdout
        os.set_blocking(stream.fileno(), False)
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            open_ = True
            while open_ or self.process.poll() is None:
                if open_:
                    for _ in selector.select(POLL_SECONDS):
                        chunk = os.read(stream.fileno(), 65536)
                        if chunk:
                            self._output(chunk)
                        else:
                            open_ = False
                            selector.unregister(stream)
                else:
                    try:
                        self.process.wait(POLL_SECONDS)
                    except subprocess.TimeoutExpired:
                        pass
                if self.killed_for is None and self._check():
                    self.group.kill_all()
        stream.close()

    def _check(self) -> bool:
        now = time.monotonic()
        if (self.cancel is not None and self.cancel.is_set()) or self.gone():
            self.killed_for = "cancel"
        elif now - self.started >= self.budget.wall_seconds:
            self.killed_for = "wall"
        elif self.group.cpu_seconds() >= self.budget.cpu_seconds:
            self.killed_for = "cpu"
        elif now >= self.next_disk_check:
            spent = time.monotonic()
            over = self.disk_usage() >= self.disk_limit
            # Walking a large tree costs: check less often the longer a walk takes.
            self.next_disk_check = now + max(self.disk_interval,
                                             20 * (time.monotonic() - spent))
            if over:
                self.killed_for = "disk"
        return self.killed_for is not None

    def _output(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        if self.truncated:
            return  # drained and dropped, so the command is never blocked on a full pipe
        room = self.budget.max_output_bytes - self.kept_bytes
        keep = chunk[:room]
        if len(chunk) > room:
            self.truncated = True
            keep += truncation_marker(self.budget.max_output_bytes)
        self.kept.append(keep)
        self.kept_bytes += min(len(chunk), room)
        if self.on_output is not None and keep:
            self.on_output(keep)

    def _limit(self, status: int | None) -> str | None:
        if self.killed_for not in (None, "cancel"):
            return self.killed_for
        if self.killed_for == "cancel":
            return None
        if self.group.oom_kills():
            return "memory"
        if status == 128 + signal.SIGXCPU or (
                status == 128 + signal.SIGKILL
                and self.group.cpu_seconds() >= self.budget.cpu_seconds):
            return "cpu"
        # RLIMIT_FSIZE stops a file exactly at the limit (SIGXFSZ or EFBIG to the writer).
        if status == 128 + signal.SIGXFSZ or self.disk_usage() >= self.disk_limit:
            return "disk"
        if self.group.forks_refused():
            return "processes"
        return "output" if self.truncated else None

    def result(self, duration: float) -> ExecResult:
        code = self.process.returncode
        # A negative code means bwrap itself was killed (by us): no status to report.
        status = code if code is not None and code >= 0 else None
        return ExecResult(
            exit_code=status, duration_seconds=duration,
            cpu_seconds=self.group.cpu_seconds(), peak_memory_bytes=self.group.peak_memory(),
            limit=self._limit(status), output=b"".join(self.kept),
            output_truncated=self.truncated, cancelled=self.killed_for == "cancel",
            output_bytes_total=self.total_bytes)
