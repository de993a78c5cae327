"""Agent roles and their versions

Revision ID: a4c1e0000004
Revises: a4c1e0000003
Create Date: 2026-11-23 13:10:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "a4c1e0000004"
down_revision = "a4c1e0000003"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
