"""RQ entry points. Each job takes ids, loads objects, calls one service, and raises on
failure. Queue names live in config (``QUEUES``); ``job`` is the one decorator."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, has_app_context

_app: Flask | None = None
_app_pid: int | None = None


def _worker_app() -> Flask:
    """One app per process: RQ forks a work horse per job, and a forked child must not
    reuse its parent's database connections."""
    global _app, _app_pid
    if _app is None or _app_pid != os.getpid():
        from evershell import create_app
        _app, _app_pid = create_app(), os.getpid()
    return _app


def job(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` inside an app context, committing on success, rolling back on error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from evershell.extensions import db
        if has_app_context():
            return func(*args, **kwargs)
        with _worker_app().app_context():
            try:
                result = func(*args, **kwargs)
                db.session.commit()
                return result
            except BaseException:
                db.session.rollback()
                raise

    return wrapper
