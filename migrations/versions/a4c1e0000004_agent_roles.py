"""Agent roles and their versions

Revision ID: a4c1e0000004
Revises: a4c1e0000003
Create Date: 2026-11-23 13:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a4c1e0000004"
down_revision = "a4c1e0000003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('roles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_user_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_roles_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_roles_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('org_id', 'name', name='uq_roles_org_name')
    )
    op.create_table('role_versions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('role_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('system_prompt', sa.Text(), nullable=False),
    sa.Column('capabilities_yaml', sa.Text(), nullable=False),
    sa.Column('capabilities', sa.JSON(), nullable=False),
    sa.Column('thinking_effort', sa.String(length=10), nullable=False),
    sa.Column('max_continuations', sa.Integer(), nullable=False),
    sa.Column('max_context_tokens', sa.Integer(), nullable=False),
    sa.Column('created_by_user_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("thinking_effort in ('low', 'medium', 'high')", name=op.f('ck_role_versions_thinking_effort')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_role_versions_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_role_versions_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_role_versions_provider_id_providers')),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_versions_role_id_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_versions')),
    sa.UniqueConstraint('role_id', 'number', name='uq_role_versions_role_number')
    )
    with op.batch_alter_table('role_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_versions_provider_id'), ['provider_id'], unique=False)

    op.create_table('role_version_packs',
    sa.Column('role_version_id', sa.String(length=40), nullable=False),
    sa.Column('pack_id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_role_version_packs_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pack_id'], ['packs.id'], name=op.f('fk_role_version_packs_pack_id_packs')),
    sa.ForeignKeyConstraint(['role_version_id'], ['role_versions.id'], name=op.f('fk_role_version_packs_role_version_id_role_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('role_version_id', 'pack_id', name=op.f('pk_role_version_packs'))
    )
    with op.batch_alter_table('role_version_packs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_version_packs_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_version_packs_pack_id'), ['pack_id'], unique=False)


def downgrade():
    with op.batch_alter_table('role_version_packs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_version_packs_pack_id'))
        batch_op.drop_index(batch_op.f('ix_role_version_packs_org_id'))

    op.drop_table('role_version_packs')
    with op.batch_alter_table('role_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_versions_provider_id'))

    op.drop_table('role_versions')
    op.drop_table('roles')
