"""Workspaces through the API, with their jobs run in-process from the real RQ queue (so
enqueue-after-commit is exercised) against real bubblewrap."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from flask_migrate import upgrade
from rq import Queue

from evershell import create_app
from evershell.extensions import get_redis
from tests.factories import bearer, make_api_key, make_member, make_org
from tests.roles.conftest import Owner, make_provider, make_role
from tests.support.databases import sibling_database
from tests.support.processes import ROOT, evershell_env

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (apt-get install bubblewrap)")


@pytest.fixture
def owner() -> Owner:
    membership = make_member(make_org(), role="owner")
    return Owner(membership, bearer(make_api_key(membership)), make_provider(membership))


@pytest.fixture
def role(owner):
    return make_role(owner.membership, provider=owner.provider)


def run_jobs(limit: int = 50, queues: tuple[str, ...] = ("workspaces", "tasks")) \
        -> list[str]:
    """Run what the queues hold, in priority order as a worker takes them, in this
    process (the test's transaction); the function names run."""
    ran = []
    for _ in range(limit):
        for name in queues:
            queue = Queue(name, connection=get_redis())
            job_ids = queue.get_job_ids()
            if job_ids:
                queue.remove(job_ids[0])
                job = queue.fetch_job(job_ids[0])
                job.func(*job.args, **job.kwargs)
                ran.append(job.func_name.rsplit(".", 1)[-1])
                break
        else:
            return ran
    raise AssertionError("jobs keep coming")


def queued() -> list[str]:
    queue = Queue("workspaces", connection=get_redis())
    return [job.func_name.rsplit(".", 1)[-1] for job in queue.jobs]


def create(client, headers, role, **body):
    return client.post("/v1/workspaces", headers=headers,
                       json={"role_id": role.role.id, **body})


@pytest.fixture(scope="session")
def world(redis_url, tmp_path_factory):
    """A database and instance directory of their own, shared by this process and the
    worker processes (the instance is under a world-searchable directory, as a sandbox
    root must be)."""
    database = sibling_database(os.environ.get("DATABASE_URL"), "workers",
                                tmp_path_factory.mktemp("workers-db"))
    instance = Path(tempfile.mkdtemp(prefix="evershell-workers-"))
    instance.chmod(0o755)
    config = {"DATABASE_URL": database, "REDIS_URL": redis_url, "INSTANCE_DIR": str(instance),
              "SECRET_KEY": "workers-secret", "TESTING": True}
    app = create_app(dict(config))
    with app.app_context():
        upgrade()
    env = evershell_env(DATABASE_URL=database, REDIS_URL=redis_url,
                        EVERSHELL_INSTANCE_DIR=str(instance), SECRET_KEY="workers-secret",
                        EVERSHELL_REAPER_INTERVAL_SECONDS="0.5",
                        PYTHONPATH=str(ROOT))  # the worker imports tests' sample jobs
    yield app, env
    shutil.rmtree(instance, ignore_errors=True)
