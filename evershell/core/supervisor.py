"""The child processes of ``evershell up``: started in process groups of their own, stopped
in reverse order of start.

Each child leads its own process group, so the terminal's Ctrl-C (SIGINT to the
foreground group) reaches ``up`` alone: children never see it and print no
KeyboardInterrupt tracebacks, and ``up`` stops them one by one, the web and worker before
the Redis they use. Each gets SIGTERM and a timeout, then its group gets SIGKILL. On
Linux a child also gets SIGTERM if ``up`` itself dies (``PR_SET_PDEATHSIG``), so nothing
outlives it even after a ``kill -9``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1
HURRIED_WAIT_SECONDS = 2.0
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: keep it to one system call.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    # RQ's worker treats a first SIGTERM as "finish the current job", a second one as
    # "kill the job's process and exit" (that process sits in a group of its own, so
    # SIGKILL to the worker's group would orphan it).
    second_sigterm: bool = False


class Supervisor:
    """Start children, notice the first to exit or a stop request, stop them all."""

    def __init__(self, stop_timeout: float = 10.0) -> None:
        self.children: list[Child] = []
        self.stop_timeout = stop_timeout
        self.stop_requested = False
        self.hurry = False  # a second Ctrl-C: stop waiting for graceful exits

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, _signum, _frame) -> None:
        self.hurry = self.stop_requested
        self.stop_requested = True

    @staticmethod
    def popen_kwargs() -> dict:
        """What every child is started with (for children started by other helpers)."""
        return {"process_group": 0, "preexec_fn": _die_with_parent}

    def spawn(self, name: str, argv: list[str], env: dict[str, str],
              second_sigterm: bool = False) -> subprocess.Popen:
        process = subprocess.Popen(argv, env=env, **self.popen_kwargs())
        self.adopt(name, process, second_sigterm)
        return process

    def adopt(self, name: str, process: subprocess.Popen, second_sigterm: bool = False) -> None:
        self.children.append(Child(name, process, second_sigterm))

    def exited(self) -> str | None:
        """The name of the first child that is no longer running, if any."""
        return next((c.name for c in self.children if c.process.poll() is not None), None)

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def stop_all(self) -> None:
        """Stop every child, last started first."""
        for child in reversed(self.children):
            self._stop(child)

    def _stop(self, child: Child) -> None:
        process = child.process
        if process.poll() is not None:
            return
        self._signal(process, signal.SIGTERM)
        first_signal = time.monotonic()
        if self._wait(process, self.stop_timeout):
            return
        if child.second_sigterm:
            # RQ ignores a repeated signal within a second of the first.
            time.sleep(max(0.0, first_signal + 1.2 - time.monotonic()))
            self._signal(process, signal.SIGTERM)
            if self._wait(process, 5.0, even_in_a_hurry=True):
                return
        # Still alive (and not yet reaped, so its group id cannot have been reused).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    @staticmethod
    def _signal(process: subprocess.Popen, signum: int) -> None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass

    def _wait(self, process: subprocess.Popen, seconds: float,
              even_in_a_hurry: bool = False) -> bool:
        """Wait up to ``seconds`` (2 s after a second Ctrl-C: enough for Redis to save);
        True once it has exited."""
        start = time.monotonic()
        while True:
            try:
                process.wait(timeout=0.1)
                return True
            except subprocess.TimeoutExpired:
                pass
            waited = time.monotonic() - start
            if waited >= seconds or (self.hurry and not even_in_a_hurry
                                     and waited >= HURRIED_WAIT_SECONDS):
                return process.poll() is not None
