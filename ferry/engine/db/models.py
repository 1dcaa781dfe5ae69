"""The engine's tables: inventory (clusters, hosts, VMs), custom policies, migrations, events.

Enumerations are stored as their string values (checked by the value types in
ferry.engine.options, not by the database), so adding a value never needs a schema change.
Built-in policies live in code (ferry.engine.policies) and have no rows; a policy reference on a
cluster or VM is therefore a plain id string, not a foreign key.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so Alembic can alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Cluster(Base):
    """A cluster and its migration options (oVirt: cluster > Migration Policy tab)."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    policy_id: Mapped[str] = mapped_column(String(64))
    parallel_mode: Mapped[str] = mapped_column(String(32))
    parallel_connections: Mapped[int | None] = mapped_column(Integer, nullable=True)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    bandwidth_mode: Mapped[str] = mapped_column(String(32))
    bandwidth_custom_mbps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    auto_converge: Mapped[bool] = mapped_column(Boolean, default=False)
    compressed: Mapped[bool] = mapped_column(Boolean, default=False)
    resilience: Mapped[str] = mapped_column(String(32))
    parallel_supported: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    hosts: Mapped[list[Host]] = relationship(back_populates="cluster")
    vms: Mapped[list[Vm]] = relationship(back_populates="cluster")


class Host(Base):
    """A KVM host with its agent; capabilities are the agent's last Host.getCapabilities answer."""

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str] = mapped_column(String(255))
    agent_url: Mapped[str] = mapped_column(String(512))
    migration_address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    migration_network_up: Mapped[bool] = mapped_column(Boolean, default=False)
    link_speed_mbps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    capabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    capabilities_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    cluster: Mapped[Cluster] = relationship(back_populates="hosts")


class Vm(Base):
    """A VM: its spec, where it runs, and its per-VM migration overrides (NULL = inherit)."""

    __tablename__ = "vms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="RESTRICT"), index=True)
    host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="RESTRICT"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(32))
    memory_mib: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    workload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    policy_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parallel_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parallel_connections: Mapped[int | None] = mapped_column(Integer, nullable=True)
    encrypted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    auto_converge: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    compressed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    downtime_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the last VM.getDirtyRate taken for a forecast (dirty rate, touched memory, pattern, when):
    # a migration started soon after keeps it on its plan for the live ETA
    measured: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    cluster: Mapped[Cluster] = relationship(back_populates="vms")
    host: Mapped[Host | None] = relationship()


class Policy(Base):
    """A custom migration policy; the convergence schedule is kept in its wire form."""

    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    max_migrations: Mapped[int] = mapped_column(Integer)
    auto_converge: Mapped[bool] = mapped_column(Boolean, default=False)
    compression: Mapped[bool] = mapped_column(Boolean, default=False)
    guest_events: Mapped[bool] = mapped_column(Boolean, default=False)
    zerocopy: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"init": [...], "stalling": [...], "last": [...]}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Migration(Base):
    """One migration request: its plan, state and progress, and how it ended."""

    __tablename__ = "migrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"), index=True)
    source_host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="SET NULL"), nullable=True)
    destination_host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="SET NULL"), nullable=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    figures: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # last agent sample
    attempts: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)     # one per destination
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # a cancel asked of an engine that does not own the migration, for its owner to carry out
    cancel_requested_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)

    vm: Mapped[Vm] = relationship()
    source_host: Mapped[Host | None] = relationship(foreign_keys=[source_host_id])
    destination_host: Mapped[Host | None] = relationship(foreign_keys=[destination_host_id])


class PairThroughput(Base):
    """The throughput one migration reached between two hosts, kept apart from the VM and its
    migration records (deleting a VM deletes those) and by host name (a host re-added under its
    name keeps its history): what the forecast calibrates a host pair's bandwidth from."""

    __tablename__ = "pair_throughput"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    destination: Mapped[str] = mapped_column(String(64), index=True)
    connections: Mapped[int] = mapped_column(Integer, default=0)        # 0 = one (no parallel)
    cap_mibs: Mapped[int | None] = mapped_column(Integer, nullable=True)  # maxBandwidth; None/0 = none
    mibs: Mapped[float] = mapped_column(Float)
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    migration_id: Mapped[str] = mapped_column(String(36))              # no foreign key: it outlives it


class Event(Base):
    """An audit event (oVirt AuditLog): code is oVirt's id, see ferry.engine.audit."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    severity: Mapped[str] = mapped_column(String(16))
    code: Mapped[int] = mapped_column(Integer, index=True)
    message: Mapped[str] = mapped_column(Text)
    vm_id: Mapped[int | None] = mapped_column(ForeignKey("vms.id", ondelete="SET NULL"), nullable=True, index=True)
    host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="SET NULL"), nullable=True, index=True)
    migration_id: Mapped[str | None] = mapped_column(
        ForeignKey("migrations.id", ondelete="SET NULL"), nullable=True, index=True)

    vm: Mapped[Vm | None] = relationship()
    host: Mapped[Host | None] = relationship()


class Drain(Base):
    """A host drain (maintenance): its state and one JSON item per VM, so a restarted engine
    resumes it (ferry.engine.drain_runner)."""

    __tablename__ = "drains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    order: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(64))
    abort_running: Mapped[bool] = mapped_column(Boolean, default=False)
    items: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    host: Mapped[Host] = relationship()


class ApiToken(Base):
    """A bearer token of the REST API: only its SHA-256 is kept (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token in lists
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WorkLease(Base):
    """Which engine owns a migration or a drain until when (issue 18: several engines on one
    PostgreSQL; ferry.engine.lease_rules). `epoch` grows with every change of owner."""

    __tablename__ = "leases"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    epoch: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
