"""Migrations keep the agent's live figures and every destination tried.

`figures`: the last VM.getMigrationStatus sample (percent, bytes, bandwidth, iteration, current
max downtime...), so GET /api/migrations/{id} can draw a progress bar. `attempts`: one entry per
destination tried (reruns), with how that attempt ended.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('migrations') as batch:
        batch.add_column(sa.Column('figures', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('attempts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('migrations') as batch:
        batch.drop_column('attempts')
        batch.drop_column('figures')
