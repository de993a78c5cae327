"""The event log: a counter row per stream and the numbered events themselves."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import UTCDateTime, id_column, utcnow
from evershell.extensions import db


class EventStream(db.Model):
    """One row per stream: the last number handed out. Appending locks this row for the
    rest of the inserting transaction, so a stream's numbers commit in order."""

    __tablename__ = "event_streams"

    stream_key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    last_number: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


class Event(db.Model):
    __tablename__ = "events"

    id: Mapped[str] = id_column("evt")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    stream_key: Mapped[str] = mapped_column(sa.String(80), nullable=False)
    number: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    type: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    data: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    # Its index is also the replay index: WHERE stream_key = ? AND number > ? ORDER BY number.
    __table_args__ = (sa.UniqueConstraint("stream_key", "number"),)

    def __repr__(self) -> str:
        return f"<Event {self.stream_key}#{self.number} {self.type}>"
