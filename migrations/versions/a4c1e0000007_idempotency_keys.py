"""Idempotency keys: one row per (org, principal, method + path, key)

A claim until ``response_status`` is set, then the first request's sealed answer, kept
24 hours from the claim (``evershell.access.idempotency``).

Revision ID: a4c1e0000007
Revises: a4c1e0000006
Create Date: 2026-12-05 12:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000007"
down_revision = "a4c1e0000006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("principal", sa.String(length=48), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_key_id", sa.String(length=32), nullable=True),
        sa.Column("response_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"],
                                name=op.f("fk_idempotency_keys_org_id_orgs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_org_id"), ["org_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"],
                              unique=False)


def downgrade():
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_org_id"))
    op.drop_table("idempotency_keys")
