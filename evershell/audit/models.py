from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import UTCDateTime, id_column, utcnow
from evershell.extensions import db


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"

    id: Mapped[str] = id_column("aud")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor_user_id: Mapped[str | None] = mapped_column(sa.String(40))
    actor_email: Mapped[str | None] = mapped_column(sa.String(320))
    credential_shape: Mapped[str | None] = mapped_column(sa.String(20))
    api_key_id: Mapped[str | None] = mapped_column(sa.String(40))
    action: Mapped[str] = mapped_column(sa.String(80), nullable=False)
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[str | None] = mapped_column(sa.String(80))
    outcome: Mapped[str] = mapped_column(sa.String(20), nullable=False, default="success")
    request_id: Mapped[str | None] = mapped_column(sa.String(128))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    details: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)

    __table_args__ = (
        sa.Index("ix_audit_entries_org_id_id", "org_id", "id"),
        # The filters of GET /v1/audit, each keyset-paged by id within an org.
        sa.Index("ix_audit_entries_org_actor_id", "org_id", "actor_user_id", "id"),
        sa.Index("ix_audit_entries_org_actor_email_id", "org_id", "actor_email", "id"),
        sa.Index("ix_audit_entries_org_action_id", "org_id", "action", "id"),
        sa.Index("ix_audit_entries_org_target_id", "org_id", "target_id", "id"),
        sa.CheckConstraint("outcome in ('success', 'denied')", name="outcome"),
    )
