"""Secrets and credentials

Revision ID: a4c1e0000001
Revises: 8e711f8b6589
Create Date: 2026-11-23 13:10:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "a4c1e0000001"
down_revision = "8e711f8b6589"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
