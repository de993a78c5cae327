"""API key actions: create (secret shown once), list, get, revoke, verify, authenticate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from evershell.access.principal import Principal
from evershell.access.ratelimit import LAST_USED_KEY
from evershell.access.scopes import (
    ROLE_SCOPES,
    TEMPLATE_DESCRIPTIONS,
    KeyTemplate,
    Scope,
    parse_scopes,
    template_scopes,
)
from evershell.apikeys import keys
from evershell.apikeys.models import ApiKey
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.pagination import paginate
from evershell.extensions import db, get_redis, get_script

LAST_USED_RESOLUTION = timedelta(minutes=1)


def _not_found(key_id: str) -> EvershellError:
    return EvershellError(ErrorCode.API_KEY_NOT_FOUND,
                          f"API key {key_id!r} was not found in this organisation.", 404)


def key_scopes(api_key: ApiKey) -> frozenset[Scope]:
    scopes, _unknown = parse_scopes(api_key.scopes)
    return scopes


def status(api_key: ApiKey, now: datetime | None = None) -> str:
    now = now or utcnow()
    if api_key.revoked_at is not None:
        return "revoked"
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return "expired"
    return "active"


def create(actor: Principal, name: str, template: str | None = None,
           scopes: list[str] | None = None, expires_at: datetime | None = None) \
        -> tuple[ApiKey, str]:
    """Create a key for ``actor``; returns the row and the secret, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise validation_error({"name": ["Name is required."]})
    if (template is None) == (scopes is None):
        raise validation_error({"template": ["Give exactly one of template or scopes."]})
    if expires_at is not None and expires_at <= utcnow():
        raise validation_error({"expires_at": ["Must be in the future."]})
    if template is not None:
        try:
            chosen = template_scopes(KeyTemplate(template), actor.scopes)
        except ValueError:
            raise validation_error({"template": [
                f"Must be one of: {', '.join(t.value for t in KeyTemplate)}."]}) from None
    else:
        chosen, unknown = parse_scopes(scopes or [])
        if unknown:
            raise validation_error({"scopes": [f"Unknown scope: {s}" for s in unknown]})
        if not chosen:
            raise validation_error({"scopes": ["Give at least one scope."]})
        beyond = sorted(s for s in chosen if not actor.has(s))
        if beyond:
            raise EvershellError(ErrorCode.PERMISSION_DENIED,
                                 "A key cannot hold scopes its creator lacks.", 403,
                                 {"scopes": beyond})
    secret = keys.generate()
    api_key = ApiKey(org_id=actor.org_id, created_by_user_id=actor.user_id, name=name,
                     key_hash=keys.hash_key(secret), last_four=secret[-4:],
                     template=template, scopes=sorted(s.value for s in chosen),
                     expires_at=expires_at)
    db.session.add(api_key)
    db.session.flush()
    audit.record(actor.org_id, "api_key.create", "api_key", api_key.id,
                 {"name": name, "template": template, "scopes": api_key.scopes},
                 principal=actor)
    return api_key, secret


def _visible(actor: Principal) -> sa.Select:
    query = sa.select(ApiKey).where(ApiKey.org_id == actor.org_id)
    if not actor.has_org_wide(Scope.API_KEYS_READ):
        query = query.where(ApiKey.created_by_user_id == actor.user_id)
    return query


def list_keys(actor: Principal, limit: int, cursor: str | None) -> dict:
    page = paginate(db.session, _visible(actor), ApiKey.id, limit, cursor)
    _with_pending_use(page["data"])
    return page


def _with_pending_use(keys_: list[ApiKey]) -> None:
    """Show uses recorded since the last flush, without making the rows dirty (a read
    writes nothing)."""
    pending = pending_last_used([k.id for k in keys_])
    for api_key in keys_:
        used = pending.get(api_key.id)
        if used is not None and (api_key.last_used_at is None or used > api_key.last_used_at):
            set_committed_value(api_key, "last_used_at", used)


def creators(keys_: list[ApiKey]) -> dict[str, str]:
    """Who created each of ``keys_``, by user id: the name, else the email (one query
    for the whole list)."""
    from evershell.access.models import User
    user_ids = {k.created_by_user_id for k in keys_ if k.created_by_user_id}
    if not user_ids:
        return {}
    rows = db.session.execute(sa.select(User.id, User.name, User.email)
                              .where(User.id.in_(user_ids)))
    return {user_id: name or email for user_id, name, email in rows}


def get(actor: Principal, key_id: str) -> ApiKey:
    api_key = db.session.scalar(sa.select(ApiKey).where(
        ApiKey.id == key_id, ApiKey.org_id == actor.org_id))
    if api_key is None:
        raise _not_found(key_id)
    if api_key.created_by_user_id != actor.user_id and \
            not actor.has_org_wide(Scope.API_KEYS_READ):
        raise EvershellError(ErrorCode.PERMISSION_DENIED,
                             "This key belongs to another member.", 403)
    _with_pending_use([api_key])
    return api_key


def revoke(actor: Principal, key_id: str) -> ApiKey:
    api_key = db.session.scalar(sa.select(ApiKey).where(
        ApiKey.id == key_id, ApiKey.org_id == actor.org_id))
    if api_key is None:
        raise _not_found(key_id)
    if api_key.created_by_user_id != actor.user_id and \
            not actor.has_org_wide(Scope.API_KEYS_WRITE):
        raise EvershellError(ErrorCode.PERMISSION_DENIED,
                             "Revoking another member's key needs api_keys:write.", 403)
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        audit.record(actor.org_id, "api_key.revoke", "api_key", api_key.id,
                     {"name": api_key.name}, principal=actor)
    return api_key


def revoke_all_of(user_id: str, org_id: str) -> int:
    """Revoke every live key a user created in an org (when they leave it)."""
    now = utcnow()
    live = db.session.scalars(sa.select(ApiKey).where(
        ApiKey.created_by_user_id == user_id, ApiKey.org_id == org_id,
        ApiKey.revoked_at.is_(None))).all()
    for api_key in live:
        api_key.revoked_at = now
    return len(live)


def _lookup(secret: str) -> ApiKey | None:
    if not keys.well_formed(secret):
        return None  # a typo or a forgery: no database lookup
    return db.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == keys.hash_key(secret)))


def authenticate(secret: str) -> ApiKey:
    """The live key behind ``secret``; 401 for unknown, revoked or expired keys."""
    api_key = _lookup(secret)
    if api_key is None or status(api_key) != "active":
        raise EvershellError(ErrorCode.UNAUTHENTICATED,
                             "The API key is not valid (unknown, revoked or expired).", 401)
    return api_key


def pending_last_used(key_ids: list[str]) -> dict[str, datetime]:
    """Uses the rate-limit script recorded in Redis and no flush has written yet (so a
    key's page shows its use at once); empty when Redis cannot say."""
    if not key_ids:
        return {}
    try:
        values = get_redis().hmget(LAST_USED_KEY, key_ids)
    except redis.RedisError:
        return {}
    return {key_id: datetime.fromtimestamp(int(value) / 1000, UTC)
            for key_id, value in zip(key_ids, values, strict=True) if value is not None}


_FORGET_FLUSHED = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


def flush_last_used() -> int:
    """Write the key uses recorded in Redis to ``last_used_at``, in one batch, each key
    at most once a minute (a conditional update). The uses stay in Redis until the
    database has committed them; then each is removed only if no newer use replaced it
    meanwhile, so neither a database failure nor a crash loses one. Run by every
    worker's reaper; returns how many keys were written."""
    client = get_redis()
    recorded = client.hgetall(LAST_USED_KEY)
    if not recorded:
        return 0
    written = 0
    try:
        for raw_id, raw_ms in sorted(recorded.items()):
            used = datetime.fromtimestamp(int(raw_ms) / 1000, UTC)
            result = db.session.execute(
                sa.update(ApiKey).where(
                    ApiKey.id == raw_id.decode(),
                    sa.or_(ApiKey.last_used_at.is_(None),
                           ApiKey.last_used_at < used - LAST_USED_RESOLUTION))
                .values(last_used_at=used), execution_options={"synchronize_session": False})
            written += result.rowcount
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    pairs = [item for pair in recorded.items() for item in pair]
    get_script("forget-flushed-uses", _FORGET_FLUSHED)(keys=[LAST_USED_KEY], args=pairs)
    return written


def verify(actor: Principal, secret: str) -> dict:
    """Is ``secret`` a valid key of the caller's org: whose, which effective scopes."""
    api_key = _lookup(secret)
    if api_key is None or api_key.org_id != actor.org_id:
        return {"valid": False, "status": "unknown"}
    state = status(api_key)
    from evershell.access.authn import membership_role
    role = membership_role(api_key.created_by_user_id, api_key.org_id)
    effective = sorted(key_scopes(api_key) & ROLE_SCOPES[role]) if role else []
    if role is None and state == "active":
        state = "creator_removed"
    return {"valid": state == "active", "status": state, "key_id": api_key.id,
            "name": api_key.name, "created_by_user_id": api_key.created_by_user_id,
            "scopes": effective, "expires_at": api_key.expires_at}


def templates(actor: Principal) -> list[dict]:
    return [{"name": t.value, "description": d,
             "scopes": sorted(template_scopes(t, actor.scopes))}
            for t, d in TEMPLATE_DESCRIPTIONS.items()]
