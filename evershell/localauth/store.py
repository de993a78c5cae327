"""In-memory users, authorization codes, sessions and refresh tokens (thread-safe).

Only user ids survive a restart (they are derived from the email); everything else is
deliberately process-local, like a development identity provider should be.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from evershell.localauth import ids


class GrantError(Exception):
    """A code or refresh token that cannot be exchanged (OAuth ``invalid_grant``)."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass
class User:
    id: str
    email: str
    first_name: str | None
    last_name: str | None
    created_at: float
    updated_at: float
    last_sign_in_at: float

    def to_json(self) -> dict[str, Any]:
        """The AuthKit user object."""
        return {
            "object": "user",
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email_verified": True,
            "profile_picture_url": None,
            "external_id": None,
            "metadata": {},
            "last_sign_in_at": _iso(self.last_sign_in_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class AuthorizationCode:
    client_id: str
    user_id: str
    organization_id: str | None
    code_challenge: str | None
    expires_at: float


@dataclass
class Session:
    id: str
    user_id: str
    client_id: str
    organization_id: str | None
    auth_time: int
    ended: bool = False


@dataclass
class _RefreshToken:
    session_id: str
    client_id: str
    consumed: bool = False


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Store:
    """All mutable state of one server; every method holds one lock for its whole duration."""

    def __init__(self, code_ttl: int, clock: Callable[[], float] = time.time) -> None:
        self.code_ttl = code_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, _RefreshToken] = {}

    def sign_in(self, email: str, first_name: str | None, last_name: str | None) -> User:
        """Find or create the user of ``email``, refreshing the names when given."""
        now = self.clock()
        user_id = ids.user_id_for_email(email)
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                user = User(user_id, email.strip().lower(), first_name, last_name, now, now, now)
                self._users[user_id] = user
            else:
                if (first_name, last_name) != (user.first_name, user.last_name) and (
                        first_name or last_name):
                    user.first_name, user.last_name, user.updated_at = first_name, last_name, now
                user.last_sign_in_at = now
            return user

    def get_user(self, user_id: str) -> User:
        """The user with ``user_id`` (it exists: only a sign-in issues codes)."""
        with self._lock:
            return self._users[user_id]

    def issue_code(self, client_id: str, user_id: str, organization_id: str | None,
                   code_challenge: str | None) -> str:
        """A one-time authorization code for a signed-in user, valid ``code_ttl`` seconds."""
        code = ids.opaque_token()
        grant = AuthorizationCode(client_id, user_id, organization_id, code_challenge,
                                  self.clock() + self.code_ttl)
        with self._lock:
            self._purge_codes()
            self._codes[code] = grant
        return code

    def redeem_code(self, code: str, client_id: str, code_verifier: str | None) -> Session:
        """Exchange a code for a new session; the code is spent even when the exchange fails.

        Spending it on failure means a stolen code cannot be retried with guessed verifiers.
        """
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None:
            raise GrantError("The authorization code is invalid or has already been used.")
        if grant.expires_at <= self.clock():
            raise GrantError("The authorization code has expired.")
        if grant.client_id != client_id:
            raise GrantError("The authorization code was issued to another client.")
        if grant.code_challenge is not None:
            if not code_verifier:
                raise GrantError("A code_verifier is required: the code has a PKCE challenge.")
            if not hmac.compare_digest(pkce_s256(code_verifier), grant.code_challenge):
                raise GrantError("The code_verifier does not match the code challenge.")
        session = Session(ids.session_id(), grant.user_id, client_id, grant.organization_id,
                          int(self.clock()))
        with self._lock:
            self._sessions[session.id] = session
        return session

    def issue_refresh_token(self, session: Session) -> str:
        """A new single-use refresh token for ``session``."""
        token = ids.opaque_token()
        with self._lock:
            self._refresh[token] = _RefreshToken(session.id, session.client_id)
        return token

    def rotate_refresh_token(self, token: str, client_id: str,
                             organization_id: str | None) -> tuple[Session, str]:
        """Spend ``token`` and return its session (switched to ``organization_id`` if given)
        with the refresh token that replaces it."""
        with self._lock:
            record = self._refresh.get(token)
            if record is None or record.client_id != client_id:
                raise GrantError("The refresh token is invalid.")
            if record.consumed:
                raise GrantError("The refresh token has already been exchanged.")
            session = self._sessions[record.session_id]
            if session.ended:
                raise GrantError("The session of this refresh token has ended.")
            record.consumed = True
            if organization_id is not None:
                session.organization_id = organization_id
            new_token = ids.opaque_token()
            self._refresh[new_token] = _RefreshToken(session.id, client_id)
            return session, new_token

    def end_session(self, session_id: str) -> bool:
        """End a session so its refresh tokens stop working; False if it was unknown."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return False
            # Its refresh tokens stay recorded so that using one says why it fails.
            session.ended = True
            return True

    def _purge_codes(self) -> None:
        # Called under the lock: abandoned sign-ins must not accumulate forever.
        now = self.clock()
        for code in [c for c, g in self._codes.items() if g.expires_at <= now]:
            del self._codes[code]
