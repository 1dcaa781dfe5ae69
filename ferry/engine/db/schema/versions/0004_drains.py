"""Host drains (issue 15): one row per maintenance request, its state and its VMs' items.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drains',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('order', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('user', sa.String(length=64), nullable=False),
    sa.Column('abort_running', sa.Boolean(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_drains_host_id_hosts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drains'))
    )
    with op.batch_alter_table('drains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drains_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drains_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('drains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drains_state'))
        batch_op.drop_index(batch_op.f('ix_drains_host_id'))
    op.drop_table('drains')
