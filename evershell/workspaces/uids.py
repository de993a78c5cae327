"""Host uids for sandboxes: each live workspace gets one of its own from a configured
range (``EVERSHELL_SANDBOX_UIDS``), so per-uid limits such as the process count are
never shared between workspaces, and no workspace's files belong to another's uid."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import db
from evershell.workspaces.models import Workspace

# Any constant: it names the lock that serialises allocations on PostgreSQL (on SQLite
# every writing transaction already holds the database's write lock).
_ADVISORY_LOCK = 0x65767368


def uid_range() -> tuple[int, int]:
    low, _, high = current_app.config["SANDBOX_UIDS"].partition("-")
    return int(low), int(high)


def allocate() -> int:
    """The lowest uid of the range that no workspace which is not deleted holds."""
    low, high = uid_range()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK)))
    taken = Workspace.sandbox_uid
    highest = db.session.scalar(sa.select(sa.func.max(taken)).where(
        Workspace.deleted_at.is_(None)))
    if highest is None or highest < low:
        return low
    if highest < high:
        return highest + 1
    # The top of the range is used: find the first gap (rare; a scan of live uids).
    used = set(db.session.scalars(sa.select(taken).where(Workspace.deleted_at.is_(None))))
    for uid in range(low, high + 1):
        if uid not in used:
            return uid
    raise EvershellError(ErrorCode.SERVICE_UNAVAILABLE,
                         "Every sandbox uid of this server is in use; delete unused "
                         "workspaces or widen EVERSHELL_SANDBOX_UIDS.", 503)
