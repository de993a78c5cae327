"""Workspaces, the packs a live one materialised, and its snapshots.

A ``Workspace`` row is the whole truth about one sandbox: its status (moved only by
conditional updates, see ``lifecycle``), the role version it is pinned to, the host uid
its commands run as, and the fence (``attempt``) that keeps a job the reaper gave up on
from writing anything. A deleted workspace keeps its row (``deleted_at``) so its
snapshots stay listed until ``evershell gc``'s retention; every read filters it out.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column, utcnow
from evershell.extensions import db


class Status(enum.StrEnum):
    PROVISIONING = "provisioning"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


LIVE = (Status.IDLE, Status.BUSY)
# Statuses a job is working on: a deadline passes → the reaper settles them.
IN_FLIGHT = (Status.PROVISIONING, Status.STOPPING)


class Workspace(Timestamped, db.Model):
    __tablename__ = "workspaces"

    id: Mapped[str] = id_column("ws")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    # SET NULL only matters for deleted workspaces: roles refuse deletion (409
    # role_in_use) while a workspace that is not deleted uses them.
    role_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("roles.id", ondelete="SET NULL"), index=True)
    role_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    environment: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    snapshot_ref: Mapped[str | None] = mapped_column(sa.String(64))
    last_snapshot_error: Mapped[str | None] = mapped_column(sa.Text)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    parent_workspace_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="SET NULL"))
    fork_source_snapshot_ref: Mapped[str | None] = mapped_column(sa.String(64))
    fork_point_task_count: Mapped[int | None] = mapped_column(sa.Integer)
    sandbox_uid: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    # Fence: every job carries the attempt it was enqueued for and writes only while
    # it is still current; the reaper bumps it when it settles a dead job's workspace.
    attempt: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    job_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index("ix_workspaces_org_listing", "org_id", "deleted_at", "id"),
        sa.Index("ix_workspaces_in_flight", "status", "job_deadline"),
        # One live uid per workspace: process-count limits are per host uid.
        sa.Index("uq_workspaces_sandbox_uid_live", "sandbox_uid", unique=True,
                 sqlite_where=sa.text("deleted_at IS NULL"),
                 postgresql_where=sa.text("deleted_at IS NULL")),
        sa.CheckConstraint(
            "status in ('provisioning', 'idle', 'busy', 'stopping', 'stopped', 'failed')",
            name="status"),
    )


class WorkspacePack(db.Model):
    """A pack as the workspace materialised it (SPEC §7: ``pack_status``)."""

    __tablename__ = "workspace_packs"

    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    pack_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    digest: Mapped[str] = mapped_column(sa.String(64), nullable=False)


class Snapshot(db.Model):
    """A compressed tarball of ``/data`` minus packs, in the blob store by content hash."""

    __tablename__ = "workspace_snapshots"

    id: Mapped[str] = id_column("snap")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    ref: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    task_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    cause: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (sa.Index("ix_workspace_snapshots_workspace", "workspace_id", "id"),)
