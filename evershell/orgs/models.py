from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db


class BillingPosture(enum.StrEnum):
    ACTIVE = "active"
    TRIAL = "trial"
    PAST_DUE = "past_due"
    DECOMMISSIONING = "decommissioning"


class Org(Timestamped, db.Model):
    __tablename__ = "orgs"

    id: Mapped[str] = id_column("org")
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    billing_posture: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default=BillingPosture.ACTIVE.value)
    trial_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The identity provider's organisation id (AuthKit ``org_…``), when one is linked.
    idp_org_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)

    __table_args__ = (
        sa.CheckConstraint(
            "billing_posture in ('active', 'trial', 'past_due', 'decommissioning')",
            name="billing_posture"),
    )
