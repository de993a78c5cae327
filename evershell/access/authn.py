"""Authentication of ``/v1`` requests and console pages: the three credential shapes.

- ``Authorization: Bearer eyJ…``: an AuthKit session JWT, verified against the JWKS.
- ``Authorization: Bearer sk_…`` (or ``?api_key=sk_…`` on SSE routes only): an API key.
- the ``wos_session`` cookie: a sealed console session (state changes need a CSRF token
  or a same-origin ``Origin``).

On ``/v1`` a credential's principal comes from the process's ``principal_cache`` when
it is there, and is confirmed by the org epoch the rate-limit round trip returns
(:meth:`Authentication.settle`): a cached principal costs no SQL at all, and a stale one
is never used. Console pages (not rate limited, so no round trip to confirm by) always
read the database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, g, request

from evershell.access import sessions
from evershell.access.authkit import identity_provider
from evershell.access.models import Membership, User
from evershell.access.principal import CredentialShape, Principal
from evershell.access.principal_cache import cache
from evershell.access.scopes import ROLE_SCOPES, Role, Scope
from evershell.access.tokens import verify_session_token
from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import db
from evershell.orgs.models import Org

CSRF_HEADER = "X-CSRF-Token"


def unauthenticated(message: str) -> EvershellError:
    return EvershellError(ErrorCode.UNAUTHENTICATED, message, 401)


def host_org_slug() -> str | None:
    """The org a ``<slug>.<base domain>`` host names, when a base domain is configured."""
    base = current_app.config.get("BASE_DOMAIN")
    if not base:
        return None
    host = request.host.split(":")[0].lower()
    suffix = "." + base.lower().lstrip(".")
    if host.endswith(suffix):
        slug = host[: -len(suffix)]
        if slug and "." not in slug:
            return slug
    return None


def _cross_org(org: Org) -> None:
    slug = host_org_slug()
    if slug is not None and slug != org.slug:
        raise EvershellError(ErrorCode.PERMISSION_DENIED, "cross-org access attempted", 403)


def membership_role(user_id: str, org_id: str) -> Role | None:
    role = db.session.scalar(sa.select(Membership.role).where(
        Membership.user_id == user_id, Membership.org_id == org_id))
    return Role(role) if role else None


def build_principal(user: User, org: Org, shape: CredentialShape,
                    limit: frozenset[Scope] | None = None, api_key_id: str | None = None,
                    session_id: str | None = None) -> Principal:
    """The principal of ``user`` acting in ``org``; 401 when they are not a member (any
    more: removing a member ends their sessions and keys at once)."""
    role = membership_role(user.id, org.id)
    if role is None:
        raise unauthenticated("This credential's user is not a member of the organisation.")
    scopes = ROLE_SCOPES[role] if limit is None else ROLE_SCOPES[role] & limit
    return Principal(user_id=user.id, email=user.email, org_id=org.id, org_slug=org.slug,
                     role=role, shape=shape, scopes=scopes, api_key_id=api_key_id,
                     session_id=session_id)


def _org_for_user(user: User, claimed_org: str | None) -> Org:
    slug = host_org_slug()
    if slug is not None:
        org = db.session.scalar(sa.select(Org).where(Org.slug == slug))
        if org is None:
            raise EvershellError(ErrorCode.ORG_NOT_FOUND, f"No org {slug!r}.", 404)
        return org
    if claimed_org:
        org = db.session.scalar(sa.select(Org).where(
            sa.or_(Org.id == claimed_org, Org.idp_org_id == claimed_org)))
        if org is not None:
            return org
    org_ids = db.session.scalars(sa.select(Membership.org_id).where(
        Membership.user_id == user.id)).all()
    if len(org_ids) == 1:
        return db.session.get(Org, org_ids[0])
    if not org_ids:
        raise unauthenticated("This user is not a member of any organisation.")
    raise EvershellError(ErrorCode.PERMISSION_DENIED,
                         "This user belongs to several organisations; name one with the "
                         "org-slug host or a token issued for that organisation.", 403)


def _jwt_principal(token: str) -> tuple[Principal, float]:
    idp = identity_provider()
    claims = verify_session_token(token, idp.jwks_url, idp.issuers)
    user = db.session.scalar(sa.select(User).where(User.idp_user_id == claims["sub"]))
    if user is None:
        raise unauthenticated("Unknown user; sign in to the console once first.")
    org = _org_for_user(user, claims.get("org_id"))
    return build_principal(user, org, CredentialShape.SESSION_JWT,
                           session_id=claims.get("sid")), float(claims["exp"])


def _api_key_principal(key: str) -> tuple[Principal, datetime | None]:
    from evershell.apikeys import services as api_keys
    api_key = api_keys.authenticate(key)
    org = db.session.get(Org, api_key.org_id)
    _cross_org(org)
    user = db.session.get(User, api_key.created_by_user_id)
    return build_principal(user, org, CredentialShape.API_KEY,
                           limit=api_keys.key_scopes(api_key),
                           api_key_id=api_key.id), api_key.expires_at


def cookie_principal(check_csrf: bool) -> Principal:
    value = request.cookies.get(sessions.COOKIE_NAME)
    if not value:
        raise unauthenticated("Authentication required.")
    principal, _expiry = _cookie_principal(value)
    if check_csrf:
        ensure_csrf(principal.session_id)
    return principal


def _cookie_principal(value: str) -> tuple[Principal, float]:
    state = sessions.load(value)
    if state.refreshed_cookie:
        g.refreshed_session_cookie = state.refreshed_cookie
    org = db.session.get(Org, state.session.org_id)
    _cross_org(org)
    user = db.session.get(User, state.session.user_id)
    principal = build_principal(user, org, CredentialShape.COOKIE, session_id=state.session.id)
    # a refreshed cookie is a new credential: the old one's entry simply ages out
    return principal, 0.0 if state.refreshed_cookie else float(state.claims["exp"])


@dataclass
class Authentication:
    """A request's principal, perhaps from the cache, not yet confirmed: the guard calls
    :meth:`settle` with the org epoch its rate-limit round trip returned."""

    principal: Principal
    cache_key: str
    cached_epoch: int | None  # the entry's epoch; None when read from the database now
    from_cache: bool
    resolve: Callable[[], tuple[Principal, datetime | float | None]]

    def settle(self, epoch: int | None) -> Principal:
        """The principal to use. A cached one stands only if its epoch is the org's
        current one; otherwise (or when Redis could not say) it is read again. A
        principal read *after* this epoch was read is cached under it, if it is still
        of the same org (a JWT's org can change with its user's memberships: another
        org's epoch says nothing of it); one read before (this request's first read) is
        cached unconfirmed, so the next request reads it once more under an epoch it
        knows is older than its read."""
        if self.from_cache and epoch is not None and epoch == self.cached_epoch:
            _cross_org_slug(self.principal.org_slug)  # a renamed org bumped the epoch
            return self.principal
        if self.from_cache:
            cache.drop(self.cache_key)
            principal, expiry = self.resolve()
            same_org = principal.org_id == self.principal.org_id
            cache.put(self.cache_key, principal, epoch if same_org else None, expiry)
            return principal
        return self.principal


def _authenticated(cache_key: str, resolve) -> Authentication:
    """The credential's principal from the cache (checked by :meth:`Authentication.settle`)
    or the database. The key includes the request's org host: a JWT's org can depend on
    it."""
    cache_key += "|" + (host_org_slug() or "")
    entry = cache.get(cache_key)
    if entry is not None:
        return Authentication(entry.principal, cache_key, entry.epoch, True, resolve)
    principal, expiry = resolve()
    cache.put(cache_key, principal, None, expiry)
    return Authentication(principal, cache_key, None, False, resolve)


def _cross_org_slug(slug: str) -> None:
    host = host_org_slug()
    if host is not None and host != slug:
        raise EvershellError(ErrorCode.PERMISSION_DENIED, "cross-org access attempted", 403)


def _digest(kind: str, value: str) -> str:
    return kind + hashlib.sha256(value.encode()).hexdigest()


def _api_key_authentication(key: str) -> Authentication:
    from evershell.apikeys import keys
    if not keys.well_formed(key):
        _api_key_principal(key)  # raises the 401 without a lookup
    return _authenticated("k:" + keys.hash_key(key), lambda: _api_key_principal(key))


def ensure_csrf(session_id: str) -> None:
    """Cookie-authenticated state changes carry our CSRF token or come from our origin."""
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
    if sent and hmac.compare_digest(sent, sessions.csrf_token(session_id)):
        return
    origin = request.headers.get("Origin")
    if origin and _same_origin(origin):
        return
    raise EvershellError(ErrorCode.PERMISSION_DENIED,
                         "Missing or invalid CSRF token for a cookie-authenticated change.", 403)


def _same_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def authenticate(allow_query_key: bool, mutating: bool) -> Authentication:
    """The principal behind this request's credential (see :class:`Authentication`);
    401 ``unauthenticated`` otherwise."""
    query_key = request.args.get("api_key")
    if query_key is not None:
        if not allow_query_key:
            raise unauthenticated("?api_key= is accepted on event-stream routes only; send "
                                  "Authorization: Bearer instead.")
        if not query_key.startswith("sk_"):
            raise unauthenticated("Only API keys may be sent in the query string.")
    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("Use Authorization: Bearer <session JWT or API key>.")
        if token.startswith("eyJ"):
            return _authenticated(_digest("j:", token), lambda: _jwt_principal(token))
        if token.startswith("sk_"):
            return _api_key_authentication(token)
        raise unauthenticated("Unrecognised credential: expected a session JWT (eyJ…) or "
                              "an API key (sk_…).")
    if query_key:
        return _api_key_authentication(query_key)
    value = request.cookies.get(sessions.COOKIE_NAME)
    if value:
        auth = _authenticated(_digest("c:", value), lambda: _cookie_principal(value))
        if mutating:
            ensure_csrf(auth.principal.session_id)
        return auth
    raise unauthenticated("Authentication required: send Authorization: Bearer <token>.")
