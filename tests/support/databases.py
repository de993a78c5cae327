"""Creating and dropping scratch databases for tests that need an empty or separate one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from evershell.config import normalise_database_url


def recreate_database(url: str) -> None:
    """Drop and create the database named by a PostgreSQL ``url``."""
    target = make_url(normalise_database_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": target.database})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def sibling_database(url: str | None, suffix: str, tmp_dir) -> str:
    """A fresh, empty database beside the test database: ``<name>_<suffix>`` on
    PostgreSQL, a new file in ``tmp_dir`` on SQLite."""
    if url and not url.startswith("sqlite"):
        sibling = make_url(normalise_database_url(url))
        sibling = sibling.set(database=f"{sibling.database}_{suffix}")
        rendered = sibling.render_as_string(hide_password=False)
        recreate_database(rendered)
        return rendered
    return f"sqlite:///{tmp_dir / f'{suffix}.db'}"


@contextmanager
def migrated_sibling_app(app_config: dict, suffix: str, tmp_dir) -> Iterator[tuple[Flask, str]]:
    """(app, url): an app on a fresh sibling of the test database (see
    :func:`sibling_database`), migrated, whose commits are real; its pool is disposed
    at the end."""
    from flask_migrate import upgrade

    from evershell import create_app
    from evershell.extensions import db
    url = sibling_database(os.environ.get("DATABASE_URL"), suffix, tmp_dir)
    app = create_app(dict(app_config, DATABASE_URL=url))
    with app.app_context():
        upgrade()
    try:
        yield app, url
    finally:
        with app.app_context():
            db.engine.dispose()
