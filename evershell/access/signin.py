"""Browser sign-in through AuthKit: the service side of /auth/login, /auth/callback,
/auth/logout. Views translate HTTP; these functions hold the rules."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from evershell.access import sessions
from evershell.access.authkit import AuthKitError, identity_provider
from evershell.access.models import ConsoleSession, Membership, User
from evershell.access.principal import CredentialShape
from evershell.access.services import normalise_email
from evershell.access.tokens import verify_session_token
from evershell.audit import services as audit
from evershell.core.errors import ErrorCode, EvershellError
from evershell.extensions import db
from evershell.orgs.models import Org

log = logging.getLogger("evershell.signin")


@dataclass(frozen=True)
class LoginStart:
    url: str
    state: str
    verifier: str


@dataclass
class Authenticated:
    """A finished code exchange, before an org is chosen."""

    user: User
    access_token: str
    refresh_token: str
    idp_session_id: str | None
    claimed_org: str | None


def begin(redirect_uri: str, login_hint: str | None = None,
          organization_id: str | None = None) -> LoginStart:
    """A fresh ``state`` and PKCE pair, and the AuthKit authorize URL to send the browser to."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    url = identity_provider().authorize_url(redirect_uri, state, challenge,
                                            organization_id=organization_id,
                                            login_hint=login_hint)
    return LoginStart(url, state, verifier)


def _failed(message: str) -> EvershellError:
    return EvershellError(ErrorCode.UNAUTHENTICATED, message, 401)


def complete(code: str, verifier: str) -> Authenticated:
    """Exchange the code, verify the access token, and find or create the user."""
    idp = identity_provider()
    try:
        result = idp.exchange_code(code, verifier)
    except AuthKitError as exc:
        raise _failed(f"The identity provider refused the sign-in: {exc.message}") from None
    access_token, refresh_token = result.get("access_token"), result.get("refresh_token")
    profile: dict[str, Any] = result.get("user") or {}
    if not access_token or not refresh_token or not profile.get("id"):
        raise _failed("The identity provider's answer was incomplete.")
    claims = verify_session_token(access_token, idp.jwks_url, idp.issuers)
    if claims["sub"] != profile["id"]:
        raise _failed("The identity provider's token does not match its user.")
    user = _find_or_create_user(profile)
    if profile.get("email_verified"):
        from evershell.members.services import claim_invitations
        claim_invitations(user)
    return Authenticated(user, access_token, refresh_token, claims.get("sid"),
                         result.get("organization_id") or claims.get("org_id"))


def _find_or_create_user(profile: dict[str, Any]) -> User:
    user = db.session.scalar(sa.select(User).where(User.idp_user_id == profile["id"]))
    email = normalise_email(profile.get("email", ""))
    name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p) \
        or None
    if user is None:
        # Link an account created by the CLI or an invitation, but only on a verified
        # email: otherwise anyone could claim an address at the provider.
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None and (user.idp_user_id or not profile.get("email_verified")):
            raise _failed("This email belongs to another account; sign in with that one.")
        if user is None:
            user = User(email=email)
            db.session.add(user)
        user.idp_user_id = profile["id"]
    if name and not user.name:
        user.name = name
    db.session.flush()
    return user


def orgs_of(user: User) -> list[Org]:
    return list(db.session.scalars(
        sa.select(Org).join(Membership, Membership.org_id == Org.id)
        .where(Membership.user_id == user.id).order_by(Org.name)))


def pick_org(auth: Authenticated) -> Org | None:
    """The token's org when the user belongs to it, else their only org, else None."""
    orgs = orgs_of(auth.user)
    if auth.claimed_org:
        for org in orgs:
            if auth.claimed_org in (org.id, org.idp_org_id):
                return org
    return orgs[0] if len(orgs) == 1 else None


def start_session(auth: Authenticated, org: Org) -> str:
    """Open a console session in ``org``; returns the sealed cookie value."""
    if org not in orgs_of(auth.user):
        raise EvershellError(ErrorCode.PERMISSION_DENIED, "You are not a member of that org.",
                             403)
    session = sessions.start(auth.user.id, org.id, auth.idp_session_id)
    from evershell.access.authn import build_principal
    audit.record(org.id, "session.sign_in", "user", auth.user.id,
                 principal=build_principal(auth.user, org, CredentialShape.COOKIE,
                                           session_id=session.id))
    return sessions.seal_cookie(session.id, auth.access_token, auth.refresh_token)


def end_session(session: ConsoleSession) -> str | None:
    """Revoke a console session (audited); returns the identity provider's session id."""
    from evershell.access.authn import build_principal
    user, org = db.session.get(User, session.user_id), db.session.get(Org, session.org_id)
    sessions.revoke(session)
    try:
        actor = build_principal(user, org, CredentialShape.COOKIE, session_id=session.id)
    except EvershellError:
        actor = None  # no longer a member: still signed out, recorded without a role
    audit.record(org.id, "session.sign_out", "user", user.id, principal=actor)
    return session.idp_session_id
