"""Audit: an index for the actor filter by email

Revision ID: a4c1e0000010
Revises: a4c1e0000009
Create Date: 2026-11-30 11:30:00

GET /v1/audit?actor=<email> scanned every entry of the org. On PostgreSQL the index is
built CONCURRENTLY (outside the migration's transaction), so a large audit log keeps
taking writes while it builds.
"""
from alembic import op

revision = 'a4c1e0000010'
down_revision = 'a4c1e0000009'
branch_labels = None
depends_on = None

NAME = "ix_audit_entries_org_actor_email_id"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            # A concurrent build that failed before leaves an INVALID index of this name.
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
            op.create_index(NAME, "audit_entries", ["org_id", "actor_email", "id"],
                            postgresql_concurrently=True)
    else:
        op.create_index(NAME, "audit_entries", ["org_id", "actor_email", "id"])


def downgrade():
    op.drop_index(NAME, table_name="audit_entries")
