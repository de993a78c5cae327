"""Cancelling a running task across processes: the request sets a Redis key (after its
commit); the worker running the task watches for it and sets the loop's cancel Event,
which also kills whatever the sandbox is running."""

from __future__ import annotations

import threading

from flask import current_app

from evershell.core.db import on_commit
from evershell.extensions import db, get_redis

_KEY = "evershell:task-cancel:{}"
TTL_SECONDS = 24 * 3600
POLL_SECONDS = 0.1


def request_cancel_after_commit(task_id: str) -> None:
    app = current_app._get_current_object()

    def _signal() -> None:
        with app.app_context():
            get_redis().set(_KEY.format(task_id), "1", ex=TTL_SECONDS)

    on_commit(db.session(), _signal)


def requested(task_id: str) -> bool:
    return bool(get_redis().exists(_KEY.format(task_id)))


class CancelWatcher(threading.Thread):
    """Sets ``event`` once the task's cancel key appears; stops with ``stop()``."""

    def __init__(self, app, task_id: str, event: threading.Event) -> None:
        super().__init__(name=f"cancel-watch-{task_id}", daemon=True)
        self.app, self.task_id, self.event = app, task_id, event
        self.stopped = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            redis = get_redis()
            key = _KEY.format(self.task_id)
            while not self.stopped.wait(POLL_SECONDS):
                if redis.exists(key):
                    self.event.set()
                    return

    def stop(self) -> None:
        self.stopped.set()
