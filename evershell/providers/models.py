from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db


class ProviderKind(enum.StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    OPENAI_COMPATIBLE = "openai_compatible"  # any base URL: vLLM, Ollama, llama.cpp server
    SCRIPTED = "scripted"  # plays a stored script: offline demos and tests


class Provider(Timestamped, db.Model):
    """A model endpoint an org's roles call. Names are unique in the org, archived ones
    included, so unarchiving never collides."""

    __tablename__ = "providers"

    id: Mapped[str] = id_column("prov")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(30), nullable=False)
    # Normalised by providers.ssrf; None only for scripted providers.
    base_url: Mapped[str | None] = mapped_column(sa.String(2048))
    # No ON DELETE: a secret a provider uses cannot be deleted from under it (the
    # secrets service asks the usage checks registered in secrets.usage first).
    api_key_secret_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("secrets.id"), index=True)
    models: Mapped[list] = mapped_column(sa.JSON, nullable=False)
    script: Mapped[list | None] = mapped_column(sa.JSON)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("org_id", "name", name="uq_providers_org_name"),
        sa.CheckConstraint(
            "kind in ('anthropic', 'openai', 'openai_compatible', 'scripted')", name="kind"),
    )
