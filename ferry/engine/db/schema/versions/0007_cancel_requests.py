"""Cancel requests (issue 18): a cancel asked of an engine that does not own the migration is
written on the migration for the engine that owns it, which carries it out within a second.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_requested_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('cancel_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_migrations_cancel_requested_at'), ['cancel_requested_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_migrations_cancel_requested_at'))
        batch_op.drop_column('cancel_requested_at')
        batch_op.drop_column('cancel_requested_by')
