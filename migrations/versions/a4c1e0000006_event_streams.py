"""Event streams: a counter row per stream and the numbered events

Revision ID: a4c1e0000006
Revises: a4c1e0000005
Create Date: 2026-12-05 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000006"
down_revision = "a4c1e0000005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "event_streams",
        sa.Column("stream_key", sa.String(length=80), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"],
                                name=op.f("fk_event_streams_org_id_orgs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("stream_key", name=op.f("pk_event_streams")),
    )
    with op.batch_alter_table("event_streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_streams_org_id"), ["org_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("stream_key", sa.String(length=80), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_events_org_id_orgs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("stream_key", "number", name=op.f("uq_events_stream_key")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_org_id"), ["org_id"], unique=False)


def downgrade():
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_org_id"))
    op.drop_table("events")
    with op.batch_alter_table("event_streams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_streams_org_id"))
    op.drop_table("event_streams")
