"""Per-org epochs: how every web process learns, on its very next request, that a cached
principal of an org may no longer be true.

Each org has a counter in Redis (``evershell:epoch:<org id>``). Any committed change to
what a credential of the org may do — an API key revoked or its expiry changed, a
membership removed or its role changed, a console session ended, the org's billing
posture, trial end or slug changed, a member's email changed — increments it after the
commit. The rate-limit
script returns the counter in the same round trip every ``/v1`` request already makes,
and a process whose cached principal carries another epoch resolves it again from the
database (``access.authn``). The changes are found by watching the ORM's flushes, so no
service can forget to bump: whatever path writes those columns, the epoch moves; a bulk
``UPDATE`` or ``DELETE`` that would write them around the flush is refused.

The bump runs at the flush (a change Redis cannot be told of fails with 503) and again
after the commit returns, before the request that made the change answers; a request
that starts after that answer sees the new epoch. A principal read
from the database is cached only with an epoch read *before* that database read (see
``authn.Authentication.settle``), so a bump can never hide behind a cached entry.
"""

from __future__ import annotations

import logging

import redis
import sqlalchemy as sa
from sqlalchemy import orm

from evershell.core.db import on_commit
from evershell.core.errors import ErrorCode, EvershellError

log = logging.getLogger("evershell.epochs")

PREFIX = "evershell:epoch:"
# What each watched model says about a principal, and where its org id is.
_WATCHED = {
    "ApiKey": ("org_id", {"revoked_at", "expires_at", "scopes", "key_hash"}),
    "Membership": ("org_id", {"role", "user_id", "org_id"}),
    "ConsoleSession": ("org_id", {"revoked_at"}),
    "Org": ("id", {"billing_posture", "trial_ends_at", "slug"}),
    # A principal names its user's email (audit entries record it); a user belongs to
    # orgs through memberships, so a changed email moves the epoch of each of them.
    "User": (None, {"email"}),
}
_installed = False


def key(org_id: str) -> str:
    return PREFIX + org_id


def install() -> None:
    """Watch every session's flushes and bulk statements (once per process)."""
    global _installed
    if not _installed:
        sa.event.listen(orm.Session, "after_flush", _after_flush)
        sa.event.listen(orm.Session, "do_orm_execute", _refuse_bulk_changes)
        _installed = True


def _orgs_of(session: orm.Session, obj) -> set[str]:
    column = _WATCHED[type(obj).__name__][0]
    if column is not None:
        return {getattr(obj, column)}
    from evershell.access.models import Membership  # a User: the orgs it belongs to
    return set(session.scalars(sa.select(Membership.org_id)
                               .where(Membership.user_id == obj.id)))


def _changed_orgs(session: orm.Session) -> set[str]:
    orgs: set[str] = set()
    for obj in session.deleted:
        if type(obj).__name__ in _WATCHED:
            orgs |= _orgs_of(session, obj)
    for obj in session.dirty:
        watched = _WATCHED.get(type(obj).__name__)
        if watched is None:
            continue
        state = sa.inspect(obj)
        if any(state.attrs[name].history.has_changes() for name in watched[1]):
            orgs |= _orgs_of(session, obj)
            if watched[0] is not None:  # a row moved between orgs
                history = state.attrs[watched[0]].history
                orgs.update(value for value in history.deleted or () if value)
    return {org for org in orgs if org}


def _refuse_bulk_changes(execute_state: orm.ORMExecuteState) -> None:
    """A bulk ``UPDATE`` of a watched column or a bulk ``DELETE`` of a watched model
    goes around the flush, so no epoch would move: refused, so that no code path can
    leave cached principals standing (change the objects through the session)."""
    if not (execute_state.is_update or execute_state.is_delete):
        return
    mapper = execute_state.bind_mapper
    watched = _WATCHED.get(mapper.class_.__name__) if mapper is not None else None
    if watched is None:
        return
    if execute_state.is_update:
        values = execute_state.statement._values or {}  # noqa: SLF001 (no public API)
        names = {getattr(column, "key", str(column)) for column in values}
        parameters = execute_state.parameters  # a bulk UPDATE by primary key
        for row in parameters if isinstance(parameters, list) else [parameters or {}]:
            names.update(row)
        if not names & watched[1]:
            return
    raise RuntimeError(
        f"a bulk {'UPDATE' if execute_state.is_update else 'DELETE'} of "
        f"{mapper.class_.__name__} would change what cached principals may do without "
        "moving their org's epoch: change the objects through the session instead")


def _after_flush(session: orm.Session, _flush_context) -> None:
    orgs = _changed_orgs(session)
    if not orgs:
        return
    # Bumped now, inside the transaction, and again after the commit: if Redis cannot
    # be told, the change fails (503) rather than leave cached principals standing.
    try:
        bump(orgs, strict=True)
    except redis.RedisError as exc:
        raise EvershellError(
            ErrorCode.SERVICE_UNAVAILABLE, "The change could not be announced to the web "
            "processes (Redis is unavailable); nothing was changed. Try again.", 503,
            headers={"Retry-After": "5"}) from exc
    pending = session.info.get("evershell_epoch_orgs")
    if pending is None:
        pending = session.info["evershell_epoch_orgs"] = set()

        def bump_pending() -> None:
            bump(session.info.pop("evershell_epoch_orgs", set()))

        on_commit(session, bump_pending)
        from evershell.core.db import on_rollback
        on_rollback(session, lambda: session.info.pop("evershell_epoch_orgs", None))
    pending.update(orgs)


# Lua that sets ``epoch`` to the epoch held in ``KEYS[<index>]``. A missing epoch starts
# from the clock in microseconds: an epoch lost with Redis's data never comes back as a
# number some cache holds. Shared by the bump and the rate-limit script.
CURRENT_EPOCH_LUA = """
local epoch = redis.call('GET', KEYS[{index}])
if not epoch then
  local clock = redis.call('TIME')
  redis.call('SET', KEYS[{index}],
             string.format('%.0f', tonumber(clock[1]) * 1000000 + tonumber(clock[2])), 'NX')
  epoch = redis.call('GET', KEYS[{index}])
end
"""
_BUMP = CURRENT_EPOCH_LUA.format(index=1) + "return redis.call('INCR', KEYS[1])\n"


def bump(org_ids: set[str], strict: bool = False) -> None:
    """Increment the epochs of ``org_ids`` now (one pipelined round trip). When not
    ``strict``, Redis being down is logged: cached principals then expire by their age
    (``principal_cache``)."""
    if not org_ids:
        return
    from evershell.extensions import get_redis, get_script
    try:
        script = get_script("epoch-bump", _BUMP)
        pipe = get_redis().pipeline(transaction=False)
        for org_id in sorted(org_ids):
            script(keys=[key(org_id)], client=pipe)
        pipe.execute()
    except redis.RedisError as exc:
        if strict:
            raise
        log.error("could not bump the epochs of %s: %s", ", ".join(sorted(org_ids)), exc)
