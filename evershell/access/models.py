from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from evershell.core.db import Timestamped, id_column
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
