"""Shared fixtures: a real database (PostgreSQL when DATABASE_URL says so, else SQLite),
schema built once by the migrations, each test in a transaction rolled back; a real
Redis (REDIS_URL, else an embedded redis-server of the test run's own), flushed per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from evershell import create_app
from evershell.core import embedded_redis
from evershell.core.db import BEGIN_OPTION
from evershell.extensions import db, get_redis
from tests.support.databases import recreate_database


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    instance = tmp_path_factory.mktemp("redis")
    child = embedded_redis.ensure_running(instance, daemonize=False)
    yield embedded_redis.url_for(instance)
    if child is not None:
        child.terminate()
        child.wait(10)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """The test database, emptied: a scratch SQLite file, or the PostgreSQL in DATABASE_URL."""
    url = os.environ.get("DATABASE_URL")
    if url:
        recreate_database(url)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def localauth(tmp_path_factory):
    """The local AuthKit-protocol server, serving real HTTP from a thread."""
    import threading

    from werkzeug.serving import make_server

    from evershell.localauth import create_localauth_app
    from evershell.localauth.settings import LocalAuthSettings
    from tests.support.processes import free_port

    port = free_port()
    settings = LocalAuthSettings(port=port, key_file=tmp_path_factory.mktemp("auth") / "key.pem")
    server = make_server("127.0.0.1", port, create_localauth_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield settings
    server.shutdown()


@pytest.fixture(scope="session")
def sandbox_root() -> Iterator[str]:
    """Live workspace directories: under a directory every user can traverse, as a
    sandbox root must be (pytest's own temporary directories are private to root)."""
    import shutil
    import tempfile
    root = tempfile.mkdtemp(prefix="evershell-sandboxes-")
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def app_config(database_url, redis_url, localauth, sandbox_root, tmp_path_factory) -> dict:
    return {
        "SANDBOX_ROOT": sandbox_root,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOCALAUTH_URL": localauth.issuer,
        "WORKOS_CLIENT_ID": None,
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
        "SECRET_KEY": "test-secret-key",
        "TESTING": True,
    }


@pytest.fixture(scope="session")
def app(app_config) -> Flask:
    from flask_migrate import upgrade
    app = create_app(dict(app_config))
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(autouse=True)
def _isolated(request) -> Iterator[None]:
    """Per test: a transaction rolled back afterwards, and an empty Redis database."""
    if "app" not in request.fixturenames or "live_db" in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    from evershell.access.principal_cache import cache
    cache.clear()  # principals of the rolled-back rows of an earlier test
    with app.app_context():
        get_redis().flushdb()
        # Deferred on SQLite, so a test that opens a second connection is not locked out
        # before its outer transaction has written anything.
        connection = db.engine.connect().execution_options(**{BEGIN_OPTION: "DEFERRED"})
        transaction = connection.begin()
        original = db.session
        # Service commits release a SAVEPOINT; the outer transaction is never committed.
        db.session = orm.scoped_session(
            orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id)
        try:
            yield
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture
def console_client(app):
    """``console_client(membership)``: a test client signed in to the console as them."""
    from tests.support.console import console_client_factory
    return console_client_factory(app)


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
