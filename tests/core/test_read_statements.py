"""A /v1 read runs its statements without a transaction (``read_statements_alone``): no
BEGIN reaches the database, and a flush in such a request is refused rather than
committed statement by statement. On a database of its own, where commits are real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from evershell.core.db import declare_writes, read_statements_alone
from evershell.extensions import db
from evershell.orgs.models import Org
from tests.support.databases import migrated_sibling_app


@pytest.fixture(scope="module")
def live_db(app_config, tmp_path_factory) -> Iterator[Flask]:
    with migrated_sibling_app(app_config, "reads", tmp_path_factory.mktemp("reads-db")) \
            as (app, _url):
        yield app


def _in_transaction(session) -> bool:
    raw = session.connection().connection.dbapi_connection
    if session.get_bind().dialect.name == "sqlite":
        return raw.in_transaction
    return raw.info.transaction_status != 0  # psycopg: IDLE is 0


def test_a_read_sends_no_begin_and_a_flush_in_it_is_refused(live_db):
    sent: list[str] = []
    with live_db.test_request_context("/v1/org", method="GET"):
        sa.event.listen(db.engine, "before_cursor_execute",
                        lambda _c, _cur, sql, *_a: sent.append(sql))
        read_statements_alone(db.session)
        assert db.session.execute(sa.text("SELECT 1")).scalar() == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Org)) == 0
        assert not _in_transaction(db.session)
        assert not any(sql.lstrip().upper().startswith("BEGIN") for sql in sent)
        db.session.add(Org(slug="written", name="Written"))
        with pytest.raises(RuntimeError, match="declare_writes"):
            db.session.flush()
        db.session.rollback()
        db.session.expunge_all()
        db.session.remove()
    with live_db.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Org)) == 0


def test_a_read_that_declares_writes_writes_in_one_transaction(live_db):
    with live_db.test_request_context("/v1/org", method="GET"):
        read_statements_alone(db.session)
        db.session.execute(sa.text("SELECT 1"))
        declare_writes(db.session)
        db.session.add(Org(slug="declared", name="Declared"))
        db.session.flush()
        assert _in_transaction(db.session)
        db.session.commit()
        db.session.remove()
    with live_db.app_context():
        org = db.session.scalar(sa.select(Org).where(Org.slug == "declared"))
        assert org.name == "Declared"
        db.session.delete(org)
        db.session.commit()
