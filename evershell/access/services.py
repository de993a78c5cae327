"""Users and memberships."""

from __future__ import annotations

import re

import sqlalchemy as sa

from evershell.access.models import Membership, User
from evershell.access.scopes import Role
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.extensions import db
from evershell.orgs.models import Org

# Deliberately loose: the identity provider verifies addresses; this catches typos.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_PATTERN.match(email) or len(email) > 320:
        raise validation_error({"email": ["Enter a valid email address."]})
    return email


def parse_role(role: str) -> Role:
    try:
        return Role((role or "").strip().lower())
    except ValueError:
        raise validation_error(
            {"role": [f"Must be one of: {', '.join(r.value for r in Role)}."]}) from None


def find_or_create_user(email: str, name: str | None = None) -> User:
    """The user with ``email``, created when new (emails are unique, case-insensitive)."""
    email = normalise_email(email)
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name)
        db.session.add(user)
        db.session.flush()
    return user


def add_member(org: Org, email: str, role: str, name: str | None = None) -> Membership:
    """Add the user with ``email`` (created if new) to ``org`` with ``role``."""
    member_role = parse_role(role)
    user = find_or_create_user(email, name)
    existing = db.session.scalar(sa.select(Membership).where(
        Membership.org_id == org.id, Membership.user_id == user.id))
    if existing is not None:
        raise EvershellError(ErrorCode.ALREADY_MEMBER,
                             f"{user.email} is already a member of {org.slug}.", 409)
    membership = Membership(org_id=org.id, user_id=user.id, role=member_role.value)
    db.session.add(membership)
    db.session.flush()
    from evershell.audit import services as audit
    audit.record(org.id, "member.add", "membership", membership.id,
                 {"email": user.email, "role": member_role.value})
    return membership


def get_user(user_ref: str) -> User:
    """A user by id or email."""
    user = db.session.get(User, user_ref) or db.session.scalar(
        sa.select(User).where(User.email == (user_ref or "").strip().lower()))
    if user is None:
        raise EvershellError(ErrorCode.USER_NOT_FOUND, f"No user {user_ref!r}.", 404)
    return user
