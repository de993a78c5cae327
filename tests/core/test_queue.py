"""The embedded Redis and the RQ plumbing, against real redis-server processes."""

from __future__ import annotations

import sqlalchemy as sa
from rq import SimpleWorker

from evershell.core import embedded_redis
from evershell.extensions import get_queue, get_redis
from evershell.orgs.models import Org


def test_embedded_redis_starts_once_and_is_shared(tmp_path):
    first = embedded_redis.ensure_running(tmp_path, daemonize=False)
    try:
        assert first is not None
        # A second process (web or worker) finds it answering and starts nothing.
        assert embedded_redis.ensure_running(tmp_path, daemonize=False) is None
        import redis
        client = redis.Redis.from_url(embedded_redis.url_for(tmp_path))
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        first.terminate()
        first.wait(10)


def test_a_queued_job_runs_in_a_real_worker(app, session):
    queue = get_queue("default")
    job = queue.enqueue("tests.core.sample_jobs.create_org", "Queued", "queued")
    SimpleWorker([queue], connection=get_redis()).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result()
    assert session.scalar(sa.select(Org).where(Org.slug == "queued")).id == job.return_value()


def test_a_failing_job_is_marked_failed_not_swallowed(app):
    queue = get_queue("default")
    job = queue.enqueue("tests.core.sample_jobs.create_org", "Bad", "-bad-")
    SimpleWorker([queue], connection=get_redis()).work(burst=True)
    job.refresh()
    assert job.get_status() == "failed"
    assert "validation_error" in job.latest_result().exc_string
