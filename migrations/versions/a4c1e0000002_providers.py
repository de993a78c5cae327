"""Model providers

Revision ID: a4c1e0000002
Revises: a4c1e0000001
Create Date: 2026-11-23 13:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000002"
down_revision = "a4c1e0000001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "providers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=True),
        sa.Column("api_key_secret_id", sa.String(length=40), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("script", sa.JSON(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind in ('anthropic', 'openai', 'openai_compatible', 'scripted')",
                           name=op.f("ck_providers_kind")),
        sa.ForeignKeyConstraint(["api_key_secret_id"], ["secrets.id"],
                                name=op.f("fk_providers_api_key_secret_id_secrets")),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_providers_org_id_orgs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("org_id", "name", name="uq_providers_org_name"),
    )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_providers_api_key_secret_id"),
                              ["api_key_secret_id"], unique=False)


def downgrade():
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_providers_api_key_secret_id"))
    op.drop_table("providers")
