"""What the store hands out: inventory records built from the option value types.

Records are frozen and detached from the database session, so the API, the CLI and the
orchestrator can pass them around freely. `to_dict()` is the JSON form the REST API returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from ferry.engine.options import (
    BandwidthMode,
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    ParallelSetting,
    VmMigrationOverrides,
    ZeroCopySupport,
)


class HostStatus(str, Enum):
    """oVirt's host states that matter for migration. UP -> PREPARING_FOR_MAINTENANCE (the drain
    empties it) -> MAINTENANCE, and back to UP on activate; both maintenance states are the
    admin's (the host monitor leaves them) and take no incoming migrations and no new VMs."""

    UNKNOWN = "UNKNOWN"          # added, agent not contacted yet
    UP = "UP"
    DOWN = "DOWN"                # agent unreachable
    PREPARING_FOR_MAINTENANCE = "PREPARING_FOR_MAINTENANCE"  # its VMs are being migrated away
    MAINTENANCE = "MAINTENANCE"  # admin took it out of scheduling; runs no VMs

    @property
    def in_maintenance(self) -> bool:
        return self in (HostStatus.PREPARING_FOR_MAINTENANCE, HostStatus.MAINTENANCE)


class VmStatus(str, Enum):
    DOWN = "DOWN"                # defined in the inventory, not running anywhere
    UP = "UP"
    PAUSED = "PAUSED"
    MIGRATING = "MIGRATING"


class MigrationState(str, Enum):
    """The engine's migration states: PENDING (accepted, not sent yet) -> RUNNING (the source
    agent migrates; reruns stay RUNNING) -> SUCCEEDED | FAILED | CANCELLED | ABORTED; CANCELLING
    between a cancel request and the agent's answer. ABORTED: the convergence schedule gave up."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ABORTED = "ABORTED"

    @property
    def final(self) -> bool:
        return self in MIGRATION_FINAL_STATES


# The one set of final states; every other state is active (the database filters on the values).
MIGRATION_FINAL_STATES = frozenset({MigrationState.SUCCEEDED, MigrationState.FAILED,
                                    MigrationState.CANCELLED, MigrationState.ABORTED})
MIGRATION_ACTIVE_STATES = tuple(s.value for s in MigrationState if s not in MIGRATION_FINAL_STATES)


# What Host.getCapabilities reports about zero-copy (facts §2; the seed's capability name).
ZEROCOPY_CAPABILITY = "zerocopy_migrations"


def zerocopy_support(capabilities: dict[str, Any] | None) -> ZeroCopySupport:
    """YES/NO when the agent reported `zerocopy_migrations`, UNKNOWN when it did not (older
    agent) or was never asked."""
    if not capabilities or ZEROCOPY_CAPABILITY not in capabilities:
        return ZeroCopySupport.UNKNOWN
    return ZeroCopySupport.YES if capabilities[ZEROCOPY_CAPABILITY] is True else ZeroCopySupport.NO


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:  # SQLite keeps no zone; everything we store is UTC
        t = t.replace(tzinfo=UTC)
    return t.isoformat()


def parallel_to_dict(p: ParallelSetting | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"mode": p.mode.value, "connections": p.connections}


@dataclass(frozen=True)
class ClusterRecord:
    id: int
    name: str
    options: ClusterMigrationOptions
    description: str = ""
    created_at: datetime | None = None

    def to_dict(self, policy_name: str | None = None) -> dict[str, Any]:
        o = self.options
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "policy": {"id": o.policy_id, "name": policy_name},
            "parallel": parallel_to_dict(o.parallel),
            "encrypted": o.encrypted,
            "bandwidth": {"mode": o.bandwidth.mode.value, "custom_mbps": o.bandwidth.custom_mbps},
            "auto_converge": o.auto_converge,
            "compressed": o.compressed,
            "resilience": o.resilience.value,
            "parallel_supported": o.parallel_supported,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class HostSchedule:
    """What the host monitor's loop needs of a host each second (not its capabilities JSON)."""

    name: str
    agent_url: str
    status: HostStatus
    refreshed: bool


@dataclass(frozen=True)
class VmPlacement:
    """Where a VM runs and its status: all the host monitor compares with an agent's VM list."""

    name: str
    uuid: str
    host: str | None
    status: VmStatus


@dataclass(frozen=True)
class HostRecord:
    id: int
    name: str
    cluster: str
    address: str
    agent_url: str
    migration_address: str | None = None
    migration_network_up: bool = False
    link_speed_mbps: int | None = None
    status: HostStatus = HostStatus.UNKNOWN
    capabilities: dict[str, Any] | None = None
    capabilities_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def zerocopy(self) -> ZeroCopySupport:
        return zerocopy_support(self.capabilities)

    def migration_info(self) -> HostMigrationInfo:
        """What the planner needs to know of this host."""
        return HostMigrationInfo(
            name=self.name,
            address=self.address,
            migration_address=self.migration_address,
            migration_network_up=self.migration_network_up,
            link_speed_mbps=self.link_speed_mbps,
            zerocopy=self.zerocopy,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "cluster": self.cluster,
            "address": self.address,
            "agent_url": self.agent_url,
            "migration_address": self.migration_address,
            "migration_network_up": self.migration_network_up,
            "link_speed_mbps": self.link_speed_mbps,
            "status": self.status.value,
            "zerocopy": self.zerocopy.value,
            "capabilities": self.capabilities,
            "capabilities_at": _iso(self.capabilities_at),
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class VmRecord:
    id: int
    name: str
    uuid: str
    cluster: str
    spec: dict[str, Any]            # ferry.common.vmspec.VmSpec.to_dict()
    host: str | None = None
    status: VmStatus = VmStatus.DOWN
    overrides: VmMigrationOverrides = field(default_factory=VmMigrationOverrides)
    workload: dict[str, Any] | None = None
    created_at: datetime | None = None

    @property
    def memory_mib(self) -> int:
        return int(self.spec["memory_mib"])

    @property
    def vcpus(self) -> int:
        return int(self.spec["vcpus"])

    def to_dict(self, policy_name: str | None = None) -> dict[str, Any]:
        o = self.overrides
        return {
            "id": self.id,
            "name": self.name,
            "uuid": self.uuid,
            "cluster": self.cluster,
            "host": self.host,
            "status": self.status.value,
            "memory_mib": self.memory_mib,
            "vcpus": self.vcpus,
            "spec": self.spec,
            "workload": self.workload,
            "overrides": {
                "policy": None if o.policy_id is None else {"id": o.policy_id, "name": policy_name},
                "parallel": parallel_to_dict(o.parallel),
                "encrypted": o.encrypted,
                "auto_converge": o.auto_converge,
                "compressed": o.compressed,
                "downtime_ms": o.downtime_ms,
            },
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class MigrationRecord:
    id: str
    vm: str
    source: str | None
    destination: str | None
    state: MigrationState
    progress: int = 0
    plan: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    figures: dict[str, Any] | None = None      # the agent's last progress sample
    attempts: list[dict[str, Any]] | None = None  # one entry per destination tried
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return not MigrationState(self.state).final

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "vm": self.vm, "source": self.source, "destination": self.destination,
            "state": MigrationState(self.state).value, "progress": self.progress, "plan": self.plan, "result": self.result,
            "error": self.error, "figures": self.figures, "attempts": self.attempts or [],
            "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at), "updated_at": _iso(self.updated_at),
        }


class DrainState(str, Enum):
    """A host drain (ferry.engine.drain_runner): ACTIVE (migrating the host's VMs away) or
    PAUSED (no new migration starts) -> DONE (host in MAINTENANCE); CANCELLING (queued ones
    dropped, running ones finishing) -> CANCELLED (host UP again)."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in (DrainState.DONE, DrainState.CANCELLED)


DRAIN_ACTIVE_STATES = (DrainState.ACTIVE.value, DrainState.PAUSED.value, DrainState.CANCELLING.value)


@dataclass(frozen=True)
class DrainRecord:
    """One host drain; `items` is one dict per VM (ferry.engine.drain_items), kept in the
    database so an engine restarted mid-drain resumes it."""

    id: str
    host: str
    state: DrainState
    order: str = "shortest"
    reason: str = ""
    user: str = "admin"
    abort_running: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def active(self) -> bool:
        return not self.state.final

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "state": self.state.value, "order": self.order,
            "reason": self.reason, "user": self.user, "abort_running": self.abort_running,
            "items": list(self.items), "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at), "finished_at": _iso(self.finished_at),
        }


@dataclass(frozen=True)
class EventRecord:
    id: int
    time: datetime
    severity: str
    code: int
    message: str
    vm: str | None = None
    host: str | None = None
    migration_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "time": _iso(self.time), "severity": self.severity, "code": self.code,
            "message": self.message, "vm": self.vm, "host": self.host, "migration_id": self.migration_id,
        }


__all__ = [
    "BandwidthMode", "ClusterRecord", "DrainRecord", "DrainState",
    "EventRecord", "HostRecord", "HostStatus", "MigrationRecord", "MigrationState",
    "ParallelMode", "VmRecord", "VmStatus", "ZEROCOPY_CAPABILITY", "zerocopy_support",
]
