from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db
from evershell.orgs.models import Org


class User(Timestamped, db.Model):
    __tablename__ = "users"

    id: Mapped[str] = id_column("user")
    email: Mapped[str] = mapped_column(sa.String(320), unique=True, nullable=False)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    # The identity provider's user id (AuthKit ``user_…``), linked at first sign-in.
    idp_user_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)


class Membership(Timestamped, db.Model):
    __tablename__ = "memberships"

    id: Mapped[str] = id_column("mem")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(sa.String(20), nullable=False)

    org: Mapped[Org] = relationship()
    user: Mapped[User] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),
        sa.CheckConstraint("role in ('owner', 'operator', 'member')", name="role"),
    )


PENDING_INVITATION = "accepted_at IS NULL AND revoked_at IS NULL"


class Invitation(Timestamped, db.Model):
    """An email invited to an org with a role; claimed at sign-in by that verified email."""

    __tablename__ = "invitations"

    id: Mapped[str] = id_column("inv")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    email: Mapped[str] = mapped_column(sa.String(320), nullable=False)
    role: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    invited_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("role in ('owner', 'operator', 'member')", name="role"),
        sa.Index("ix_invitations_email", "email"),
        # At most one pending invitation per email and org: two invites at once cannot
        # both leave a live link (members.services.invite retries the loser).
        sa.Index("uq_invitations_pending_email", "org_id", "email", unique=True,
                 sqlite_where=sa.text(PENDING_INVITATION),
                 postgresql_where=sa.text(PENDING_INVITATION)),
    )


class ConsoleSession(Timestamped, db.Model):
    """A browser session behind a ``wos_session`` cookie; revoking it signs the browser out."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = id_column("ses")
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    idp_session_id: Mapped[str | None] = mapped_column(sa.String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
