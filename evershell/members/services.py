"""Memberships and invitations: list, invite by email, change role, remove, and claim
invitations at sign-in.

Rules held here (API and console only translate HTTP):

- An org always keeps at least one owner: demoting or removing the last owner (including
  an owner removing themselves) is 409 ``last_owner``. The owner rows are locked
  (``SELECT … FOR UPDATE``) before counting, so two owners demoting each other at once on
  PostgreSQL cannot both succeed; SQLite serialises writers anyway.
- Inviting an email that already has a pending invitation replaces it: the old one is
  revoked, the new one gets a fresh id, expiry and the role chosen now (the link you
  send is the latest); the answer names what it replaced. One pending invitation per
  email and org, enforced by a partial unique index (concurrent invites retry).
- Removing a member deletes the membership and ends their console sessions in the org;
  their API keys stop working at once because every request re-checks membership.
- Ids of another org, and invitations no longer pending (accepted, revoked, expired),
  are 404: their history lives in the audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm

from evershell.access import sessions
from evershell.access.authn import build_principal
from evershell.access.models import Invitation, Membership, User
from evershell.access.principal import CredentialShape, Principal
from evershell.access.scopes import Role
from evershell.access.services import normalise_email, parse_role
from evershell.apikeys import services as api_keys
from evershell.audit import services as audit
from evershell.core.db import utcnow
from evershell.core.errors import ErrorCode, EvershellError, validation_error
from evershell.core.ids import ID_PATTERN, is_id
from evershell.core.pagination import decode_cursor, encode_cursor
from evershell.extensions import db
from evershell.orgs.models import Org

INVITATION_TTL = timedelta(days=7)
ACTIVE = "active"
INVITED = "invited"
STATUSES = (ACTIVE, INVITED)

Member = Membership | Invitation


def _membership_not_found(membership_id: str) -> EvershellError:
    return EvershellError(ErrorCode.MEMBERSHIP_NOT_FOUND,
                          f"Membership {membership_id!r} was not found in this organisation.",
                          404)


def _invitation_not_found(invitation_id: str) -> EvershellError:
    return EvershellError(ErrorCode.INVITATION_NOT_FOUND,
                          f"No pending invitation {invitation_id!r} in this organisation.", 404)


def _pending(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
                   Invitation.expires_at > now)


def status_of(item: Member) -> str:
    """``active`` or ``invited``; ``removed`` / ``revoked`` / ``accepted`` / ``expired``
    for what a removal or time has ended (what DELETE returns)."""
    if isinstance(item, Membership):
        return "removed" if sa.inspect(item).was_deleted else ACTIVE
    if item.revoked_at is not None:
        return "revoked"
    if item.accepted_at is not None:
        return "accepted"
    if item.expires_at <= utcnow():
        return "expired"
    return INVITED


def invite_url(invitation: Invitation) -> str:
    """The link to send the invited person: sign-in, where the invitation is claimed."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/sign-in?invitation={invitation.id}"


# -- listing ---------------------------------------------------------------------------

def _cursor_position(cursor: str) -> tuple[str, str]:
    """(ulid, prefix) of the last item a page returned."""
    match = ID_PATTERN.match(decode_cursor(cursor))
    if not match or match.group(1) not in ("mem", "inv"):
        raise validation_error({"cursor": ["Not a cursor this API issued."]})
    return match.group(2), match.group(1)


def _after(column, prefix: str, position: tuple[str, str] | None):
    """Rows of the table with ``prefix`` that sort after ``position`` in the merged order
    (ulid descending, then prefix descending)."""
    if position is None:
        return sa.true()
    body, last_prefix = position
    bound = f"{prefix}_{body}"
    return column <= bound if prefix < last_prefix else column < bound


def list_members(actor: Principal, limit: int, cursor: str | None,
                 status: str | None = None) -> dict:
    """Members and pending invitations of the caller's org, newest first, as one list.

    Both kinds of id are time-sortable ULIDs, so they are merged by their ULID part; the
    cursor is the last item's id. ``status`` narrows to ``active`` members or
    ``invited`` (pending, unexpired) invitations.
    """
    if status is not None and status not in STATUSES:
        raise validation_error({"status": [f"Must be one of: {', '.join(STATUSES)}."]})
    position = _cursor_position(cursor) if cursor else None
    items: list[Member] = []
    if status in (None, ACTIVE):
        items += db.session.scalars(
            sa.select(Membership).options(orm.joinedload(Membership.user))
            .where(Membership.org_id == actor.org_id,
                   _after(Membership.id, "mem", position))
            .order_by(Membership.id.desc()).limit(limit + 1)).all()
    if status in (None, INVITED):
        items += db.session.scalars(
            sa.select(Invitation)
            .where(Invitation.org_id == actor.org_id, _pending(utcnow()),
                   _after(Invitation.id, "inv", position))
            .order_by(Invitation.id.desc()).limit(limit + 1)).all()
    items.sort(key=lambda item: (item.id.split("_", 1)[1], item.id.split("_", 1)[0]),
               reverse=True)
    page = items[:limit]
    more = len(items) > limit
    return {"data": page, "next_cursor": encode_cursor(page[-1].id) if more and page else None}


# -- invitations -----------------------------------------------------------------------

def invite(actor: Principal, email: str, role: str) -> Invitation:
    """Invite ``email`` to the caller's org with ``role``; the invitation is claimed when
    that verified email signs in, within 7 days. 409 ``already_member`` if it is a member.

    A pending invitation for the same email is revoked and replaced by this one, which
    has the role the inviter chose now (not the earlier one's); the replaced rows are on
    the answer's ``replaced`` so API and console can say the earlier link stopped
    working. A partial unique index keeps one pending invitation per email: when two
    invites race, the loser's insert fails and is retried, replacing the winner's.
    """
    email = normalise_email(email)
    member_role = parse_role(role)
    if db.session.scalar(
            sa.select(Membership.id).join(User, User.id == Membership.user_id)
            .where(Membership.org_id == actor.org_id, User.email == email)) is not None:
        raise EvershellError(ErrorCode.ALREADY_MEMBER,
                             f"{email} is already a member of this organisation.", 409)
    attempts_left = _INVITE_ATTEMPTS
    while True:
        try:
            with db.session.begin_nested():
                return _replace_pending(actor, email, member_role.value)
        except sa.exc.IntegrityError:
            # Another invite of this email committed between our read and our insert
            # (READ COMMITTED): read again, now seeing it, and replace it.
            attempts_left -= 1
            if not attempts_left:
                raise EvershellError(
                    ErrorCode.CONFLICT, f"{email} is being invited by someone else right "
                    "now; try again.", 409) from None


_INVITE_ATTEMPTS = 3


def _unsettled(org_id: str, email: str) -> list[Invitation]:
    """The email's invitations neither accepted nor revoked (expired ones included: the
    unique index counts them), locked."""
    return list(db.session.scalars(
        sa.select(Invitation).where(
            Invitation.org_id == org_id, Invitation.email == email,
            Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.id).with_for_update()))


def _replace_pending(actor: Principal, email: str, role: str) -> Invitation:
    now = utcnow()
    replaced = _unsettled(actor.org_id, email)
    for old in replaced:
        old.revoked_at = now
        audit.record(actor.org_id, "invitation.revoke", "invitation", old.id,
                     {"email": email, "role": old.role, "reason": "replaced"})
    db.session.flush()  # the revocations first: the index admits one pending row
    invitation = Invitation(org_id=actor.org_id, email=email, role=role,
                            invited_by_user_id=actor.user_id, expires_at=now + INVITATION_TTL)
    db.session.add(invitation)
    db.session.flush()
    # Expired but never revoked rows are replaced too (the index counts them), but only
    # live links are news to the inviter.
    invitation.replaced = [old for old in replaced if old.expires_at > now]
    details = {"email": email, "role": role}
    if replaced:
        details["replaces"] = [old.id for old in replaced]
    audit.record(actor.org_id, "member.invite", "invitation", invitation.id, details)
    return invitation


def invitation_preview(invitation_id: str | None) -> dict | None:
    """What the sign-in page reached from an invitation link may say about it: who
    invited which email to which org as which role. Only for a pending invitation; None
    for anything else (unknown, expired, revoked, accepted, malformed), all alike, so
    the page tells someone without a live link nothing. The id is the link's secret: a
    ULID, 80 random bits."""
    if not invitation_id or not is_id(invitation_id, "inv"):
        return None
    row = db.session.execute(
        sa.select(Invitation, Org.name, User.name, User.email)
        .join(Org, Org.id == Invitation.org_id)
        .outerjoin(User, User.id == Invitation.invited_by_user_id)
        .where(Invitation.id == invitation_id, _pending(utcnow()))).first()
    if row is None:
        return None
    invitation, org_name, inviter_name, inviter_email = row
    return {"email": invitation.email, "role": invitation.role, "org_name": org_name,
            "inviter": inviter_name or inviter_email, "expires_at": invitation.expires_at}


def _pending_invitation(actor: Principal, invitation_id: str) -> Invitation:
    invitation = db.session.scalar(sa.select(Invitation).where(
        Invitation.id == invitation_id, Invitation.org_id == actor.org_id,
        _pending(utcnow())).with_for_update())
    if invitation is None:
        raise _invitation_not_found(invitation_id)
    return invitation


def claim_invitations(user: User) -> list[Membership]:
    """Turn every pending invitation for ``user.email`` into a membership. Called at
    sign-in, only once the identity provider has verified that email.

    The newest invitation of an org wins; where the user is already a member, the
    invitation is marked accepted without changing their role. The invitation rows are
    locked, so two sign-ins at once claim each invitation once.
    """
    now = utcnow()
    invitations = db.session.scalars(
        sa.select(Invitation).where(Invitation.email == user.email, _pending(now))
        .order_by(Invitation.id.desc()).with_for_update()).all()
    created: list[Membership] = []
    for invitation in invitations:
        membership = db.session.scalar(sa.select(Membership).where(
            Membership.org_id == invitation.org_id, Membership.user_id == user.id))
        already_member = membership is not None
        if not already_member:
            membership = Membership(org_id=invitation.org_id, user_id=user.id,
                                    role=invitation.role)
            db.session.add(membership)
            db.session.flush()
            created.append(membership)
        invitation.accepted_at = now
        invitation.accepted_user_id = user.id
        principal = build_principal(user, db.session.get(Org, invitation.org_id),
                                    CredentialShape.COOKIE)
        audit.record(invitation.org_id, "invitation.accept", "invitation", invitation.id,
                     {"email": user.email, "role": invitation.role,
                      "membership_id": membership.id, "already_member": already_member},
                     principal=principal)
    return created


# -- memberships -----------------------------------------------------------------------

def _membership(actor: Principal, membership_id: str) -> Membership:
    membership = db.session.scalar(
        sa.select(Membership).options(orm.joinedload(Membership.user))
        .where(Membership.id == membership_id, Membership.org_id == actor.org_id))
    if membership is None:
        raise _membership_not_found(membership_id)
    return membership


def _ensure_another_owner(org_id: str, membership: Membership, verb: str) -> None:
    """409 ``last_owner`` unless an owner other than ``membership`` remains.

    The org's owner rows are locked before counting: a concurrent demotion or removal
    waits for ours, then re-reads the rows and sees the org's owners as they now are.
    """
    owners = db.session.scalars(
        sa.select(Membership.id)
        .where(Membership.org_id == org_id, Membership.role == Role.OWNER.value)
        .order_by(Membership.id).with_for_update()).all()
    if not [owner for owner in owners if owner != membership.id]:
        raise EvershellError(
            ErrorCode.LAST_OWNER,
            f"The organisation's last owner cannot be {verb}; make another member an "
            "owner first.", 409, {"membership_id": membership.id})


def _kind(item_id: str) -> str | None:
    for prefix in ("mem", "inv"):
        if is_id(item_id, prefix):
            return prefix
    return None


def change_role(actor: Principal, item_id: str, role: str) -> Member:
    """Change a member's role (``mem_…``) or a pending invitation's role (``inv_…``).
    Demoting the last owner is 409 ``last_owner``."""
    new_role = parse_role(role).value
    kind = _kind(item_id)
    if kind == "inv":
        invitation = _pending_invitation(actor, item_id)
        if invitation.role != new_role:
            audit.record(actor.org_id, "invitation.update", "invitation", invitation.id,
                         {"email": invitation.email, "role": [invitation.role, new_role]})
            invitation.role = new_role
        return invitation
    if kind != "mem":
        raise _membership_not_found(item_id)
    membership = _membership(actor, item_id)
    old_role = membership.role
    if old_role == new_role:
        return membership
    if old_role == Role.OWNER.value:
        _ensure_another_owner(actor.org_id, membership, "demoted")
    membership.role = new_role
    db.session.flush()
    audit.record(actor.org_id, "member.role_change", "membership", membership.id,
                 {"email": membership.user.email, "user_id": membership.user_id,
                  "role": [old_role, new_role]})
    return membership


def remove(actor: Principal, item_id: str) -> Member:
    """Remove a member (``mem_…``: the membership is deleted, their console sessions end,
    their API keys stop working) or revoke a pending invitation (``inv_…``). Removing the
    last owner, themselves included, is 409 ``last_owner``."""
    kind = _kind(item_id)
    if kind == "inv":
        invitation = _pending_invitation(actor, item_id)
        invitation.revoked_at = utcnow()
        audit.record(actor.org_id, "invitation.revoke", "invitation", invitation.id,
                     {"email": invitation.email, "role": invitation.role})
        return invitation
    if kind != "mem":
        raise _membership_not_found(item_id)
    membership = _membership(actor, item_id)
    if membership.role == Role.OWNER.value:
        _ensure_another_owner(actor.org_id, membership, "removed")
    user_id, email = membership.user_id, membership.user.email
    db.session.delete(membership)
    db.session.flush()
    ended = sessions.revoke_all(user_id, actor.org_id)
    # Revoked, not just unusable: re-inviting the person later must not revive old keys.
    keys_revoked = api_keys.revoke_all_of(user_id, actor.org_id)
    audit.record(actor.org_id, "member.remove", "membership", membership.id,
                 {"email": email, "user_id": user_id, "role": membership.role,
                  "sessions_ended": ended, "api_keys_revoked": keys_revoked})
    return membership
