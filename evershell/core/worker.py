"""The RQ worker Evershell runs: work horses that die with their worker, and the
periodic reaper.

RQ forks a work horse per job and the horse calls ``setpgrp()``, so a worker killed with
SIGKILL leaves its horse running — and with it a sandboxed command, whose bubblewrap
dies only with *its* parent. Each horse therefore asks the kernel for SIGKILL when its
parent dies (``PR_SET_PDEATHSIG``); bubblewrap's ``--die-with-parent`` carries that
death into the sandbox. Jobs that died so are settled by the reaper, which runs every
``REAPER_INTERVAL`` seconds on one worker at a time (a Redis lock).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading

from flask import Flask
from rq import Worker

log = logging.getLogger("evershell.worker")

PR_SET_PDEATHSIG = 1
REAPER_INTERVAL = 30.0
_REAPER_LOCK = "evershell:reaper"


def die_with_parent(expected_parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux); exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != expected_parent:  # the parent died between fork and prctl
        os._exit(1)


class EvershellWorker(Worker):
    """An RQ worker whose work horses die with it."""

    def fork_work_horse(self, job, queue):
        self._evershell_parent = os.getpid()
        return super().fork_work_horse(job, queue)

    def main_work_horse(self, job, queue):
        die_with_parent(getattr(self, "_evershell_parent", os.getppid()))
        forget_inherited_connections()
        return super().main_work_horse(job, queue)


def forget_inherited_connections() -> None:
    """In a forked work horse: the parent's pooled database connections are its own; the
    horse opens fresh ones (SQLAlchemy's documented recipe for fork)."""
    from flask import has_app_context

    from evershell.extensions import db
    if has_app_context():
        db.engine.dispose(close=False)


class Reaper:
    """Runs ``jobs.reaper.sweep`` every ``interval`` seconds while the worker lives, in a
    process of its own: a thread in the worker would be forked into every work horse
    mid-flight, and a horse inheriting a lock that thread held (the connection pool's,
    the logging module's) hangs for good."""

    def __init__(self, app: Flask, interval: float = REAPER_INTERVAL) -> None:
        self.app, self.interval = app, interval
        self.stopped = threading.Event()

    def start(self) -> int:
        """Fork the reaper (before the worker starts any thread); its pid."""
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return pid
        try:
            die_with_parent(parent)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker handles Ctrl-C
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            forget_inherited_connections()
            self.run()
        finally:
            os._exit(0)

    def run(self) -> None:
        from evershell.extensions import get_redis
        while not self.stopped.wait(self.interval):
            try:
                with self.app.app_context():
                    lock = get_redis().lock(_REAPER_LOCK, timeout=self.interval * 4,
                                            blocking=False)
                    if not lock.acquire():
                        continue
                    try:
                        from jobs import reaper
                        try:
                            reaper.flush_key_uses()
                        except Exception:  # retried next round; the sweep still runs
                            log.exception("flushing API key uses failed")
                        settled = reaper.sweep()
                    finally:
                        lock.release()
                if settled:
                    log.warning("reaper settled %d workspace(s): %s", len(settled), settled)
            except Exception:
                # A sweep that failed (the database restarting) is retried next round.
                log.exception("reaper sweep failed")
