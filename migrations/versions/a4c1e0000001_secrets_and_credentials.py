"""Secrets and credentials

Revision ID: a4c1e0000001
Revises: 8e711f8b6589
Create Date: 2026-11-23 13:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000001"
down_revision = "8e711f8b6589"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("last_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name=op.f("fk_secrets_created_by_user_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_secrets_org_id_orgs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_secrets_org_id")),
    )
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secrets_org_id"), ["org_id"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("owner_user_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("last_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(scope = 'user' and owner_user_id is not null) or "
            "(scope = 'org' and owner_user_id is null)",
            name=op.f("ck_credentials_scope_owner")),
        sa.CheckConstraint("kind in ('token', 'ssh_key', 'username_password')",
                           name=op.f("ck_credentials_kind")),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name=op.f("fk_credentials_created_by_user_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"],
                                name=op.f("fk_credentials_org_id_orgs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_user_id"], ["users.id"],
                                name=op.f("fk_credentials_owner_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("org_id", "owner_user_id", "name",
                            name=op.f("uq_credentials_org_id")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credentials_owner_user_id"), ["owner_user_id"],
                              unique=False)
        # Org-wide names are unique too; NULL owners never collide in the constraint above.
        batch_op.create_index("uq_credentials_org_wide_name", ["org_id", "name"], unique=True,
                              sqlite_where=sa.text("scope = 'org'"),
                              postgresql_where=sa.text("scope = 'org'"))


def downgrade():
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index("uq_credentials_org_wide_name",
                            sqlite_where=sa.text("scope = 'org'"),
                            postgresql_where=sa.text("scope = 'org'"))
        batch_op.drop_index(batch_op.f("ix_credentials_owner_user_id"))
        batch_op.drop_index(batch_op.f("ix_credentials_org_id"))
    op.drop_table("credentials")

    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secrets_org_id"))
    op.drop_table("secrets")
