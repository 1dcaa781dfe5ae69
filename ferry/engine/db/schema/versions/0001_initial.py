"""Initial schema: inventory (clusters, hosts, VMs), custom policies, migrations, events.

Revision ID: 0001
Revises: (none)
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clusters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('policy_id', sa.String(length=64), nullable=False),
    sa.Column('parallel_mode', sa.String(length=32), nullable=False),
    sa.Column('parallel_connections', sa.Integer(), nullable=True),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('bandwidth_mode', sa.String(length=32), nullable=False),
    sa.Column('bandwidth_custom_mbps', sa.Integer(), nullable=True),
    sa.Column('auto_converge', sa.Boolean(), nullable=False),
    sa.Column('compressed', sa.Boolean(), nullable=False),
    sa.Column('resilience', sa.String(length=32), nullable=False),
    sa.Column('parallel_supported', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clusters')),
    sa.UniqueConstraint('name', name=op.f('uq_clusters_name'))
    )
    op.create_table('policies',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('max_migrations', sa.Integer(), nullable=False),
    sa.Column('auto_converge', sa.Boolean(), nullable=False),
    sa.Column('compression', sa.Boolean(), nullable=False),
    sa.Column('guest_events', sa.Boolean(), nullable=False),
    sa.Column('zerocopy', sa.Boolean(), nullable=False),
    sa.Column('schedule', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_policies_name'))
    )
    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('agent_url', sa.String(length=512), nullable=False),
    sa.Column('migration_address', sa.String(length=255), nullable=True),
    sa.Column('migration_network_up', sa.Boolean(), nullable=False),
    sa.Column('link_speed_mbps', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('capabilities', sa.JSON(), nullable=True),
    sa.Column('capabilities_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_hosts_cluster_id_clusters'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
    sa.UniqueConstraint('name', name=op.f('uq_hosts_name'))
    )
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hosts_cluster_id'), ['cluster_id'], unique=False)

    op.create_table('vms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('workload', sa.JSON(), nullable=True),
    sa.Column('policy_id', sa.String(length=64), nullable=True),
    sa.Column('parallel_mode', sa.String(length=32), nullable=True),
    sa.Column('parallel_connections', sa.Integer(), nullable=True),
    sa.Column('encrypted', sa.Boolean(), nullable=True),
    sa.Column('auto_converge', sa.Boolean(), nullable=True),
    sa.Column('compressed', sa.Boolean(), nullable=True),
    sa.Column('downtime_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_vms_cluster_id_clusters'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_vms_host_id_hosts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vms')),
    sa.UniqueConstraint('name', name=op.f('uq_vms_name')),
    sa.UniqueConstraint('uuid', name=op.f('uq_vms_uuid'))
    )
    with op.batch_alter_table('vms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vms_cluster_id'), ['cluster_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vms_host_id'), ['host_id'], unique=False)

    op.create_table('migrations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vm_id', sa.Integer(), nullable=False),
    sa.Column('source_host_id', sa.Integer(), nullable=True),
    sa.Column('destination_host_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['destination_host_id'], ['hosts.id'], name=op.f('fk_migrations_destination_host_id_hosts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_host_id'], ['hosts.id'], name=op.f('fk_migrations_source_host_id_hosts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['vm_id'], ['vms.id'], name=op.f('fk_migrations_vm_id_vms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migrations'))
    )
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_migrations_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_migrations_vm_id'), ['vm_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('code', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('vm_id', sa.Integer(), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('migration_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_events_host_id_hosts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['migration_id'], ['migrations.id'], name=op.f('fk_events_migration_id_migrations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['vm_id'], ['vms.id'], name=op.f('fk_events_vm_id_vms'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_migration_id'), ['migration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_time'), ['time'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_vm_id'), ['vm_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_vm_id'))
        batch_op.drop_index(batch_op.f('ix_events_time'))
        batch_op.drop_index(batch_op.f('ix_events_migration_id'))
        batch_op.drop_index(batch_op.f('ix_events_host_id'))
        batch_op.drop_index(batch_op.f('ix_events_code'))

    op.drop_table('events')
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_migrations_vm_id'))
        batch_op.drop_index(batch_op.f('ix_migrations_state'))

    op.drop_table('migrations')
    with op.batch_alter_table('vms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vms_host_id'))
        batch_op.drop_index(batch_op.f('ix_vms_cluster_id'))

    op.drop_table('vms')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hosts_cluster_id'))

    op.drop_table('hosts')
    op.drop_table('policies')
    op.drop_table('clusters')
