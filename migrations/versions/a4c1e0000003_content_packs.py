"""Content packs and their versions

Revision ID: a4c1e0000003
Revises: a4c1e0000002
Create Date: 2026-11-23 13:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000003"
down_revision = "a4c1e0000002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "packs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name="fk_packs_created_by_user_id_users", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_packs_org_id_orgs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_packs"),
        sa.UniqueConstraint("org_id", "name", name="uq_packs_org_id_name"),
    )
    with op.batch_alter_table("packs", schema=None) as batch_op:
        batch_op.create_index("ix_packs_org_id", ["org_id"], unique=False)

    op.create_table(
        "pack_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("pack_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name="fk_pack_versions_created_by_user_id_users",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_pack_versions_org_id_orgs",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pack_id"], ["packs.id"], name="fk_pack_versions_pack_id_packs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_pack_versions"),
        sa.UniqueConstraint("pack_id", "number", name="uq_pack_versions_pack_id_number"),
    )
    with op.batch_alter_table("pack_versions", schema=None) as batch_op:
        batch_op.create_index("ix_pack_versions_org_id", ["org_id"], unique=False)

    op.create_table(
        "pack_blobs",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_pack_blobs_org_id_orgs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_id", "digest", name="pk_pack_blobs"),
    )

    op.create_table(
        "pack_files",
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("executable", sa.Boolean(), nullable=False),
        # No ON DELETE: a blob row cannot be removed while a file references it.
        sa.ForeignKeyConstraint(["org_id", "digest"], ["pack_blobs.org_id", "pack_blobs.digest"],
                                name="fk_pack_files_org_id_digest_pack_blobs"),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_pack_files_org_id_orgs",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["pack_versions.id"],
                                name="fk_pack_files_version_id_pack_versions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_pack_files"),
    )
    with op.batch_alter_table("pack_files", schema=None) as batch_op:
        batch_op.create_index("ix_pack_files_org_id_digest", ["org_id", "digest"], unique=False)


def downgrade():
    with op.batch_alter_table("pack_files", schema=None) as batch_op:
        batch_op.drop_index("ix_pack_files_org_id_digest")
    op.drop_table("pack_files")
    op.drop_table("pack_blobs")
    with op.batch_alter_table("pack_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_pack_versions_org_id")
    op.drop_table("pack_versions")
    with op.batch_alter_table("packs", schema=None) as batch_op:
        batch_op.drop_index("ix_packs_org_id")
    op.drop_table("packs")
