"""The migrations build the schema from empty, on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from evershell import create_app
from evershell.extensions import db
from tests.conftest import table_names
from tests.support.databases import sibling_database


@pytest.fixture
def scratch_app(app_config, tmp_path):
    url = sibling_database(os.environ.get("DATABASE_URL"), "migrations", tmp_path)
    app = create_app(dict(app_config, DATABASE_URL=url))
    yield app, url
    with app.app_context():
        db.engine.dispose()


def test_upgrade_from_empty_then_down_and_up_again(scratch_app):
    app, url = scratch_app
    with app.app_context():
        upgrade()
        assert {"orgs", "users", "memberships", "alembic_version"} <= table_names(url)
        downgrade(revision="base")
        assert table_names(url) <= {"alembic_version"}
        upgrade()
        assert {"orgs", "users", "memberships"} <= table_names(url)
        db.engine.dispose()


def test_models_and_migrations_agree(app):
    """A model change without its migration fails here, on the backend under test."""
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite-only behaviour")
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_timestamps_come_back_as_aware_utc(app, session):
    from tests.factories import make_org
    org = make_org()
    session.commit()
    session.expire_all()
    fetched = session.scalar(sa.select(type(org)).where(type(org).id == org.id))
    assert fetched.created_at.utcoffset().total_seconds() == 0
