"""Extensions, created once and bound to the app with ``init_app``.

The Redis client and RQ are imported when first used: the admin commands never need
them, and they are a fifth of those commands' start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from evershell.core import embedded_redis
from evershell.core.db import Base

if TYPE_CHECKING:
    import redis as redis_lib
    from rq import Queue

db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def redis_url(app: Flask) -> str:
    """The configured Redis, or the embedded one (started on first use)."""
    url = app.config.get("REDIS_URL")
    if url:
        return url
    embedded_redis.ensure_running(app.config["INSTANCE_DIR"])
    return embedded_redis.url_for(app.config["INSTANCE_DIR"])


def get_redis() -> redis_lib.Redis:
    """The app's Redis client (one connection pool per app)."""
    app = current_app._get_current_object()
    client = app.extensions.get("evershell-redis")
    if client is None:
        import redis as redis_lib
        client = redis_lib.Redis.from_url(redis_url(app))
        app.extensions["evershell-redis"] = client
    return client


def get_script(name: str, source: str):
    """A Lua script on the app's Redis, registered once: calls send it by SHA
    (``EVALSHA``), loading it only where Redis does not have it yet."""
    app = current_app._get_current_object()
    key = f"evershell-script-{name}"
    script = app.extensions.get(key)
    if script is None:
        script = app.extensions[key] = get_redis().register_script(source)
    return script


def get_queue(name: str) -> Queue:
    """An RQ queue on the app's Redis; names come from config ``QUEUES``."""
    if name not in current_app.config["QUEUES"]:
        raise ValueError(f"unknown queue {name!r}")
    from rq import Queue
    return Queue(name, connection=get_redis())


def job_lost(queue_name: str, job_id: str) -> bool:
    """RQ no longer has a live job ``job_id`` (it failed, was stopped, or is gone)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    try:
        job = Job.fetch(job_id, connection=get_queue(queue_name).connection)
    except NoSuchJobError:
        return True
    return job.get_status(refresh=False) in ("failed", "stopped", "canceled")
