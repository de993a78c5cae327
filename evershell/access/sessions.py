"""The ``wos_session`` cookie: sealed (AES-GCM) access + refresh tokens of one console
session, refreshed transparently under a per-session lock.

AuthKit refresh tokens are single-use. Two requests that arrive together with the same
expired cookie must not both spend the refresh token (the loser would sign the person
out), so the first refreshes under a Redis lock and leaves the result for the second.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app

from evershell.access.authkit import AuthKitError, identity_provider
from evershell.access.models import ConsoleSession
from evershell.access.tokens import is_expired, unverified_claims, verify_session_token
from evershell.core.crypto import derive_key, keyed_hash, seal, unseal
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import db, get_redis

log = logging.getLogger("evershell.sessions")

COOKIE_NAME = "wos_session"
_PURPOSE = "wos_session"
REFRESH_RESULT_TTL = 120  # seconds a refresh result is kept for racing requests
COOKIE_MAX_AGE = 60 * 60 * 24 * 30


@dataclass
class SessionState:
    session: ConsoleSession
    claims: dict[str, Any]
    refreshed_cookie: str | None = None  # set when the tokens were refreshed


def _cookie_key() -> bytes:
    config = current_app.config
    return derive_key(config.get("WOS_COOKIE_PASSWORD") or config["SECRET_KEY"], "wos-session")


def seal_cookie(session_id: str, access_token: str, refresh_token: str) -> str:
    return seal(_cookie_key(), {"sid": session_id, "at": access_token, "rt": refresh_token},
                _PURPOSE)


def seal_pending(payload: dict[str, Any]) -> str:
    return seal(_cookie_key(), payload, "auth_pending")


def unseal_pending(value: str) -> dict[str, Any] | None:
    return unseal(_cookie_key(), value, "auth_pending") if value else None


def csrf_token(session_id: str) -> str:
    return keyed_hash(derive_key(current_app.config["SECRET_KEY"], "csrf"), session_id)


def _signed_out(message: str = "Your session has ended; sign in again.") -> EvershellError:
    return EvershellError(ErrorCode.UNAUTHENTICATED, message, 401)


def load(cookie_value: str) -> SessionState:
    """The live console session behind a cookie; 401 when it is forged, revoked or over."""
    payload = unseal(_cookie_key(), cookie_value, _PURPOSE)
    if not payload or not all(isinstance(payload.get(k), str) for k in ("sid", "at", "rt")):
        raise _signed_out("The session cookie is not valid.")
    session = db.session.get(ConsoleSession, payload["sid"])
    if session is None or session.revoked_at is not None:
        raise _signed_out()
    idp = identity_provider()
    refreshed = None
    access_token = payload["at"]
    if _access_token_expired(access_token):
        access_token, refreshed = _refresh(session, payload["rt"])
    claims = verify_session_token(access_token, idp.jwks_url, idp.issuers)
    return SessionState(session, claims, refreshed)


def _access_token_expired(token: str) -> bool:
    """Read ``exp`` without verifying: only to decide whether to refresh first."""
    try:
        claims = unverified_claims(token)
    except (IndexError, ValueError):
        return False  # verification reports the malformed token
    return is_expired(claims)


def _refresh(session: ConsoleSession, refresh_token: str) -> tuple[str, str]:
    redis = get_redis()
    result_key = f"evershell:session-refresh:{session.id}:" + \
        hashlib.sha256(refresh_token.encode()).hexdigest()
    with redis.lock(f"evershell:session-lock:{session.id}", timeout=30, blocking_timeout=20):
        cached = redis.get(result_key)
        if cached is not None:
            payload = unseal(_cookie_key(), cached.decode(), _PURPOSE)
            if payload:
                return payload["at"], cached.decode()
        try:
            tokens = identity_provider().refresh(refresh_token)
        except AuthKitError as exc:
            log.info("refresh refused for session %s: %s", session.id, exc.message)
            raise _signed_out() from None
        sealed = seal_cookie(session.id, tokens["access_token"], tokens["refresh_token"])
        redis.set(result_key, sealed, ex=REFRESH_RESULT_TTL)
    return tokens["access_token"], sealed


def start(user_id: str, org_id: str, idp_session_id: str | None) -> ConsoleSession:
    session = ConsoleSession(user_id=user_id, org_id=org_id, idp_session_id=idp_session_id)
    db.session.add(session)
    db.session.flush()
    return session


def revoke(session: ConsoleSession) -> None:
    if session.revoked_at is None:
        session.revoked_at = utcnow()


def revoke_all(user_id: str, org_id: str) -> int:
    """End every console session of a user in an org (e.g. when they are removed)."""
    sessions = db.session.scalars(db.select(ConsoleSession).where(
        ConsoleSession.user_id == user_id, ConsoleSession.org_id == org_id,
        ConsoleSession.revoked_at.is_(None))).all()
    for session in sessions:
        revoke(session)
    return len(sessions)
