"""Per-host-pair throughput kept apart from VMs, and a VM's last pre-migration measurement.

`pair_throughput`: one row per succeeded migration (source, destination, connections, cap,
MiB/s, when, migration id), with no foreign key, so deleting a VM (whose migrations go with it)
keeps the history the forecast calibrates a host pair from. `vms.measured`: the last
VM.getDirtyRate taken for a forecast, which a migration started soon after keeps on its plan
for the live ETA.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pair_throughput',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('connections', sa.Integer(), nullable=False),
    sa.Column('cap_mibs', sa.Integer(), nullable=True),
    sa.Column('mibs', sa.Float(), nullable=False),
    sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('migration_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pair_throughput'))
    )
    with op.batch_alter_table('pair_throughput', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pair_throughput_destination'), ['destination'], unique=False)
        batch_op.create_index(batch_op.f('ix_pair_throughput_measured_at'), ['measured_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pair_throughput_source'), ['source'], unique=False)
    with op.batch_alter_table('vms') as batch:
        batch.add_column(sa.Column('measured', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vms') as batch:
        batch.drop_column('measured')
    with op.batch_alter_table('pair_throughput', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pair_throughput_source'))
        batch_op.drop_index(batch_op.f('ix_pair_throughput_measured_at'))
        batch_op.drop_index(batch_op.f('ix_pair_throughput_destination'))
    op.drop_table('pair_throughput')
