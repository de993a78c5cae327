"""Roles and their immutable versions.

A ``Role`` is the stable identity (its name, unique in the org, archived ones included,
and which version is current). Everything that shapes an agent lives in ``RoleVersion``
rows, written once: an update adds version n+1, so a workspace pinned to a version
keeps meaning exactly what it meant. ``role_version_packs`` links a version to its packs
(the packs service asks it whether a pack is in use).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db

THINKING_EFFORTS = ("low", "medium", "high")


class Role(Timestamped, db.Model):
    __tablename__ = "roles"

    id: Mapped[str] = id_column("role")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    current_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (sa.UniqueConstraint("org_id", "name", name="uq_roles_org_name"),)


class RoleVersion(Timestamped, db.Model):
    """One immutable version of a role (see ``_refuse_changes``)."""

    __tablename__ = "role_versions"

    id: Mapped[str] = id_column("rolev")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    role_id: Mapped[str] = mapped_column(
        sa.ForeignKey("roles.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # No ON DELETE: history keeps its provider; the providers service asks
    # roles.services.roles_using_provider before deleting one.
    provider_id: Mapped[str] = mapped_column(
        sa.ForeignKey("providers.id"), nullable=False, index=True)
    model: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    system_prompt: Mapped[str] = mapped_column(sa.Text, nullable=False)
    capabilities_yaml: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # The compiled set (CapabilitySet.to_dict()) as of this version: later changes to
    # defaults never change what an existing version grants.
    capabilities: Mapped[dict] = mapped_column(sa.JSON, nullable=False)
    thinking_effort: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    max_continuations: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    max_context_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        sa.UniqueConstraint("role_id", "number", name="uq_role_versions_role_number"),
        sa.CheckConstraint("thinking_effort in ('low', 'medium', 'high')",
                           name="thinking_effort"),
    )


class RoleVersionPack(db.Model):
    """A pack a role version mounts at ``/data/packs/<name>/``, in the order given."""

    __tablename__ = "role_version_packs"

    role_version_id: Mapped[str] = mapped_column(
        sa.ForeignKey("role_versions.id", ondelete="CASCADE"), primary_key=True)
    # No ON DELETE: a pack some version mounts cannot vanish from under it (the packs
    # service answers 409 pack_in_use first).
    pack_id: Mapped[str] = mapped_column(sa.ForeignKey("packs.id"), primary_key=True,
                                         index=True)
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)


@event.listens_for(RoleVersion, "before_update")
@event.listens_for(RoleVersionPack, "before_update")
def _refuse_changes(_mapper, _connection, target) -> None:
    # Versions are history: a workspace pinned to one must find it as it was.
    raise RuntimeError(f"{type(target).__name__} rows are immutable; add a new version")
