"""Creating and dropping scratch databases for tests that need an empty or separate one."""

from __future__ import annotations

import sqlalchemy as sa
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
