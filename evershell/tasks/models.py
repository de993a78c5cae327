"""Tasks: one agent run in a workspace, numbered 1, 2, 3, … within it.

At most one task of a workspace is active (``submitted``, ``queued`` or ``running``): a
partial unique index says so, so two concurrent submits give one task and one 409
``task_already_running``. ``attempt`` fences the task's job exactly as a workspace's
attempt fences its lifecycle jobs.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from evershell.core.db import Timestamped, UTCDateTime, id_column
from evershell.extensions import db


class TaskStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (TaskStatus.SUBMITTED, TaskStatus.QUEUED, TaskStatus.RUNNING)
TERMINAL = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
_ACTIVE_SQL = "status IN ('submitted', 'queued', 'running')"


class Task(Timestamped, db.Model):
    __tablename__ = "tasks"

    id: Mapped[str] = id_column("task")
    org_id: Mapped[str] = mapped_column(
        sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    number: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    created_by_user_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False)
    role_version: Mapped[int | None] = mapped_column(sa.Integer)
    thinking_effort: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    max_continuations: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    max_context_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    uploads: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    result: Mapped[str | None] = mapped_column(sa.Text)
    failure_code: Mapped[str | None] = mapped_column(sa.String(60))
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    input_tokens: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    tool_calls: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    model_calls: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    attempt: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    job_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A fork copies finished tasks: the copy names the task it was copied from.
    copied_from_task_id: Mapped[str | None] = mapped_column(sa.String(40))

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "number", name="uq_tasks_workspace_number"),
        sa.Index("uq_tasks_one_active_per_workspace", "workspace_id", unique=True,
                 sqlite_where=sa.text(_ACTIVE_SQL), postgresql_where=sa.text(_ACTIVE_SQL)),
        sa.Index("ix_tasks_org_listing", "org_id", "id"),
        sa.Index("ix_tasks_running", "status", "job_deadline"),
        sa.CheckConstraint(
            "status in ('submitted', 'queued', 'running', 'succeeded', 'failed', "
            "'cancelled')", name="status"),
    )
