"""One pending invitation per email and org

Two simultaneous invites of one email used to leave two pending invitations. A partial
unique index over the pending rows (neither accepted nor revoked) makes the database say
no to the second; the members service maps that to a retry that replaces the first.

Revision ID: a4c1e0000005
Revises: a4c1e0000004
Create Date: 2026-12-02 10:00:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000005"
down_revision = "a4c1e0000004"
branch_labels = None
depends_on = None

PENDING = "accepted_at IS NULL AND revoked_at IS NULL"


def upgrade():
    # Duplicates left by earlier races: the newest invitation of each email stays
    # pending (it is the link the inviter saw last); the others are revoked.
    invitations = sa.table("invitations", sa.column("id", sa.String),
                           sa.column("org_id", sa.String), sa.column("email", sa.String),
                           sa.column("accepted_at", sa.DateTime(timezone=True)),
                           sa.column("revoked_at", sa.DateTime(timezone=True)))
    newer = invitations.alias("newer")
    op.execute(invitations.update().where(
        invitations.c.accepted_at.is_(None), invitations.c.revoked_at.is_(None),
        sa.exists().where(newer.c.org_id == invitations.c.org_id,
                          newer.c.email == invitations.c.email,
                          newer.c.accepted_at.is_(None), newer.c.revoked_at.is_(None),
                          newer.c.id > invitations.c.id),
    ).values(revoked_at=datetime.now(UTC)))
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("uq_invitations_pending_email", ["org_id", "email"],
                              unique=True, sqlite_where=sa.text(PENDING),
                              postgresql_where=sa.text(PENDING))


def downgrade():
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("uq_invitations_pending_email")
