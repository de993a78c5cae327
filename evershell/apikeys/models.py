from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db


class ApiKey(Timestamped, db.Model):
    __tablename__ = "api_keys"

    id: Mapped[str] = id_column("key")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    created_by_user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    # HMAC-SHA256 of the whole key under the server pepper; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    # The last characters, so people can tell keys apart ("sk_…a1b2").
    last_four: Mapped[str] = mapped_column(sa.String(4), nullable=False)
    template: Mapped[str | None] = mapped_column(sa.String(20))
    scopes: Mapped[list] = mapped_column(sa.JSON, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
