"""Per-org epochs: how every web process learns, on its very next request, that a cached
principal of an org may no longer be true.

Each org has a counter in Redis (``evershell:epoch:<org id>``). Any committed change to
what a credential of the org may do — an API key revoked or its expiry changed, a
membership removed or its role changed, a console session ended, the org's billing
posture, trial end or slug changed — increments it after the commit. The rate-limit
script returns the counter in the same round trip every ``/v1`` request already makes,
and a process whose cached principal carries another epoch resolves it again from the
database (``access.authn``). The changes are found by watching the ORM's flushes, so no
service can forget to bump: whatever path writes those columns, the epoch moves.

The bump runs after the commit returns and before the request that made the change
answers; a request that starts after that answer sees the new epoch. A principal read
from the database is cached only with an epoch read *before* that database read (see
``authn.Authentication.settle``), so a bump can never hide behind a cached entry.
"""

from __future__ import annotations

import logging

import redis
import sqlalchemy as sa
from sqlalchemy import orm

from evershell.core.db import on_commit

log = logging.getLogger("evershell.epochs")

PREFIX = "evershell:epoch:"
# What each watched model says about a principal, and where its org id is.
_WATCHED = {
    "ApiKey": ("org_id", {"revoked_at", "expires_at", "scopes", "key_hash"}),
    "Membership": ("org_id", {"role", "user_id", "org_id"}),
    "ConsoleSession": ("org_id", {"revoked_at"}),
    "Org": ("id", {"billing_posture", "trial_ends_at", "slug"}),
}
_installed = False


def key(org_id: str) -> str:
    return PREFIX + org_id


def install() -> None:
    """Watch every session's flushes (once per process)."""
    global _installed
    if not _installed:
        sa.event.listen(orm.Session, "after_flush", _after_flush)
        _installed = True


def _changed_orgs(session: orm.Session) -> set[str]:
    orgs: set[str] = set()
    for obj in session.deleted:
        watched = _WATCHED.get(type(obj).__name__)
        if watched is not None:
            orgs.add(getattr(obj, watched[0]))
    for obj in session.dirty:
        watched = _WATCHED.get(type(obj).__name__)
        if watched is None:
            continue
        state = sa.inspect(obj)
        if any(state.attrs[name].history.has_changes() for name in watched[1]):
            orgs.add(getattr(obj, watched[0]))
            history = state.attrs[watched[0]].history  # a row moved between orgs
            orgs.update(value for value in history.deleted or () if value)
    return {org for org in orgs if org}


def _after_flush(session: orm.Session, _flush_context) -> None:
    orgs = _changed_orgs(session)
    if not orgs:
        return
    pending = session.info.get("evershell_epoch_orgs")
    if pending is None:
        pending = session.info["evershell_epoch_orgs"] = set()

        def bump_pending() -> None:
            bump(session.info.pop("evershell_epoch_orgs", set()))

        on_commit(session, bump_pending)
        from evershell.core.db import on_rollback
        on_rollback(session, lambda: session.info.pop("evershell_epoch_orgs", None))
    pending.update(orgs)


def bump(org_ids: set[str]) -> None:
    """Increment the epochs of ``org_ids`` now (one pipelined round trip). Redis being
    down is logged: cached principals then expire by their age (``principal_cache``)."""
    if not org_ids:
        return
    from evershell.extensions import get_redis
    try:
        pipe = get_redis().pipeline(transaction=False)
        for org_id in sorted(org_ids):
            pipe.incr(key(org_id))
        pipe.execute()
    except redis.RedisError as exc:
        log.error("could not bump the epochs of %s: %s", ", ".join(sorted(org_ids)), exc)
