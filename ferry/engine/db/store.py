"""The engine's store: reads and writes the inventory, policies, migrations and events.

A `Store` wraps one SQLAlchemy session (one unit of work: a REST request, an orchestrator
step); the caller commits. Rows go in and out as the value types of ferry.engine.options /
ferry.engine.policies and the records of ferry.engine.db.records, so nothing above this module
sees SQLAlchemy. Every rule the database cannot check is checked here and raises a ferry error
naming the field: unknown names (NotFound), clashes with existing state (Conflict), and the
zero-copy gate (a zero-copy policy only where the cluster supports parallel migrations).
"""
from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ferry.common.errors import Conflict, InvalidInput, NotFound
from ferry.common.vmspec import VmSpec
from ferry.engine import audit
from ferry.engine.db import models as m
from ferry.engine.db.records import (
    ACTIVE_MIGRATION_STATES,
    ClusterRecord,
    EventRecord,
    HostRecord,
    HostStatus,
    MigrationRecord,
    VmRecord,
    VmStatus,
)
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ClusterMigrationOptions,
    ParallelMode,
    ParallelSetting,
    ResiliencePolicy,
    VmMigrationOverrides,
)
from ferry.engine.policies import (
    BUILTIN_BY_ID,
    BUILTIN_POLICIES,
    MINIMAL_DOWNTIME_ID,
    MigrationPolicy,
    find_policy,
    policy_from_dict,
    policy_to_dict,
)
from ferry.protocol.schedule import Action, StallingStep

DEFAULT_POLICY_ID = MINIMAL_DOWNTIME_ID  # oVirt's default for new clusters
AGENT_PORT = 54321
MAX_DOWNTIME_MS = 600_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

CLUSTER_FIELDS = ("description", "policy", "parallel", "encrypted", "bandwidth", "auto_converge",
                  "compressed", "resilience", "parallel_supported")
HOST_FIELDS = ("cluster", "address", "agent_url", "migration_address", "migration_network_up",
               "link_speed_mbps", "status", "capabilities")
OVERRIDE_FIELDS = ("policy", "parallel", "encrypted", "auto_converge", "compressed", "downtime_ms")
SPEC_FIELDS = ("memory_mib", "vcpus", "kernel", "initrd", "cmdline", "accel",
               "memtune_hard_limit_kib", "console_log", "emulator", "machine")


def _utc(t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t


def check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidInput(field, f"{value!r} must be 1-63 letters, digits, '_', '.', '-', "
                                  "starting with a letter or digit")
    return value


def check_address(field: str, value: Any) -> str:
    """An IP address or a DNS host name."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if _HOSTNAME_RE.match(value):
                return value
    raise InvalidInput(field, f"{value!r} is not an IP address or host name")


def check_url(field: str, value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            try:
                _ = parts.port  # raises ValueError for a bad port
            except ValueError:
                raise InvalidInput(field, f"{value!r} has an invalid port") from None
            return value
    raise InvalidInput(field, f"{value!r} is not an http:// or https:// URL")


def check_optional_int(field: str, value: Any, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"must be from {lo} to {hi}, got {value}")
    return value


def check_bool(field: str, value: Any, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise InvalidInput(field, f"must be true or false, got {value!r}")
    return value


def _enum(enum_type, field: str, value: Any):  # noqa: ANN001, ANN202
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(str(value).upper().replace("-", "_"))
    except ValueError:
        choices = ", ".join(e.value for e in enum_type)
        raise InvalidInput(field, f"unknown value {value!r} (one of {choices})") from None


def _check_parallel(field: str, value: Any) -> ParallelSetting:
    if isinstance(value, ParallelSetting):
        return value
    if isinstance(value, str):
        return ParallelSetting.parse(value, field)
    raise InvalidInput(field, f"must be a parallel setting, got {value!r}")


def _check_bandwidth(value: Any) -> BandwidthSetting:
    if isinstance(value, BandwidthSetting):
        return value
    raise InvalidInput("bandwidth", f"must be a bandwidth setting, got {value!r}")


def _zerocopy_gate_error(field: str, policy: MigrationPolicy, cluster: str) -> InvalidInput:
    return InvalidInput(
        field,
        f"policy {policy.name!r} uses zero-copy migration, which needs parallel migrations, "
        f"and cluster {cluster!r} does not support parallel migrations (parallel_supported is false)",
    )


class Store:
    """Inventory, policies, migrations and events over one session."""

    def __init__(self, session: Session):
        self.session = session

    def commit(self) -> None:
        self.session.commit()

    # ---------------------------------------------------------------- policies

    def list_policies(self) -> list[MigrationPolicy]:
        """The built-ins (in oVirt's order), then the custom ones by name."""
        return list(BUILTIN_POLICIES) + self._custom_policies()

    def _custom_policies(self) -> list[MigrationPolicy]:
        return [self._policy(r) for r in self.session.scalars(select(m.Policy).order_by(m.Policy.name))]

    def get_policy(self, ref: str, field: str = "policy") -> MigrationPolicy:
        """A policy by id or by name (case-insensitive), built-in or custom; an unknown one is
        bad input in `field` (the policy is referred to from a cluster, a VM, a plan)."""
        try:
            return find_policy(ref, self._custom_policies(), field=field)
        except NotFound:
            names = ", ".join(repr(p.name) for p in self.list_policies())
            raise InvalidInput(field, f"unknown policy {ref!r} (known: {names})") from None

    def find_policy(self, ref: str) -> MigrationPolicy:
        """A policy by id or name; a missing one is NotFound (for /policies/{ref})."""
        return find_policy(ref, self._custom_policies())

    def create_policy(self, data: Mapping[str, Any]) -> MigrationPolicy:
        """A new custom policy from its JSON form (ferry.engine.policies.policy_from_dict)."""
        data = self._policy_input(data)
        customs = self._custom_policies()
        self._check_policy_name_free(data.get("name"), customs)
        policy = policy_from_dict(data, customs)
        row = m.Policy(id=policy.id, created_at=datetime.now(UTC))
        self._fill_policy(row, policy)
        self.session.add(row)
        self.session.flush()
        return policy

    def replace_policy(self, ref: str, data: Mapping[str, Any]) -> MigrationPolicy:
        """Replace a custom policy's contents (its id stays); built-ins are read-only."""
        current = self.find_policy(ref)
        if current.builtin:
            raise Conflict(f"policy {current.name!r} is built-in and read-only; create a custom policy instead")
        data = self._policy_input(data)
        if data.get("id") not in (None, current.id):
            raise InvalidInput("id", "a policy's id cannot change")
        others = [p for p in self._custom_policies() if p.id != current.id]
        self._check_policy_name_free(data.get("name"), others)
        policy = policy_from_dict({**data, "id": current.id}, others)
        if policy.zerocopy:
            for cluster_name, _ in self._policy_users(current.id, gated_only=True):
                raise _zerocopy_gate_error("zerocopy", policy, cluster_name)
        self._fill_policy(self.session.get(m.Policy, current.id), policy)
        self.session.flush()
        return policy

    def delete_policy(self, ref: str) -> None:
        policy = self.find_policy(ref)
        if policy.builtin:
            raise Conflict(f"policy {policy.name!r} is built-in and cannot be removed")
        users = [f"{kind} {name!r}" for name, kind in self._policy_users(policy.id)]
        if users:
            raise Conflict(f"policy {policy.name!r} is in use by {', '.join(users)}")
        self.session.delete(self.session.get(m.Policy, policy.id))
        self.session.flush()

    @staticmethod
    def _policy_input(data: Any) -> dict[str, Any]:
        """Accept what GET returned: drop the read-only markers when they are false."""
        if not isinstance(data, Mapping):
            raise InvalidInput("policy", "must be an object")
        data = dict(data)
        for marker in ("builtin", "legacy"):
            if marker in data and data[marker] is False:
                del data[marker]
            elif marker in data:
                raise InvalidInput(marker, "custom policies cannot be built-in or Legacy")
        return data

    def _policy_users(self, policy_id: str, gated_only: bool = False) -> Iterable[tuple[str, str]]:
        """(name, 'cluster'|'VM') of everything that uses the policy; with gated_only, the
        names of clusters without parallel support where it is used (directly or by a VM)."""
        for c in self.session.scalars(select(m.Cluster).where(m.Cluster.policy_id == policy_id)):
            if not gated_only or not c.parallel_supported:
                yield (c.name, "cluster")
        for v in self.session.scalars(select(m.Vm).where(m.Vm.policy_id == policy_id)):
            if not gated_only:
                yield (v.name, "VM")
            elif not v.cluster.parallel_supported:
                yield (v.cluster.name, "cluster")

    @staticmethod
    def _check_policy_name_free(name: Any, customs: Iterable[MigrationPolicy]) -> None:
        if not isinstance(name, str):
            return  # policy_from_dict names the problem
        for p in (*BUILTIN_POLICIES, *customs):
            if p.name.lower() == name.strip().lower():
                raise Conflict(f"a policy named {p.name!r} already exists")

    @staticmethod
    def _fill_policy(row: m.Policy, p: MigrationPolicy) -> None:
        wire = policy_to_dict(p)
        row.name = p.name
        row.description = p.description
        row.max_migrations = p.max_migrations
        row.auto_converge = p.auto_converge
        row.compression = p.compression
        row.guest_events = p.guest_events
        row.zerocopy = p.zerocopy
        row.schedule = {k: wire[k] for k in ("init", "stalling", "last_items")}

    @staticmethod
    def _policy(row: m.Policy) -> MigrationPolicy:
        """Rebuilt as stored, without re-validating (rules may tighten; stored data stays readable)."""
        def action(a: dict) -> Action:
            return Action.from_params(a["name"], a.get("params", ()))

        sched = row.schedule or {}
        return MigrationPolicy(
            id=row.id, name=row.name, description=row.description, max_migrations=row.max_migrations,
            auto_converge=row.auto_converge, compression=row.compression, guest_events=row.guest_events,
            zerocopy=row.zerocopy,
            init=tuple(action(a) for a in sched.get("init", ())),
            stalling=tuple(StallingStep(s["limit"], action(s["action"])) for s in sched.get("stalling", ())),
            last_items=tuple(action(a) for a in sched.get("last_items", ())),
        )

    def policy_name(self, policy_id: str | None) -> str | None:
        if policy_id is None:
            return None
        if policy_id in BUILTIN_BY_ID:
            return BUILTIN_BY_ID[policy_id].name
        row = self.session.get(m.Policy, policy_id)
        return row.name if row else None

    # ---------------------------------------------------------------- clusters

    def list_clusters(self) -> list[ClusterRecord]:
        return [self._cluster(r) for r in self.session.scalars(select(m.Cluster).order_by(m.Cluster.name))]

    def get_cluster(self, name: str) -> ClusterRecord:
        return self._cluster(self._cluster_row(name))

    def create_cluster(self, name: str, **changes: Any) -> ClusterRecord:
        """A new cluster; options not given take oVirt's defaults (policy Minimal downtime,
        parallel DISABLED, bandwidth AUTO, parallel migrations supported)."""
        check_name("name", name)
        if self.session.scalars(select(m.Cluster.id).where(m.Cluster.name == name)).first() is not None:
            raise Conflict(f"cluster {name!r} already exists")
        options = ClusterMigrationOptions(policy_id=DEFAULT_POLICY_ID)
        options, description = self._apply_cluster_changes(name, options, "", changes)
        row = m.Cluster(name=name, created_at=datetime.now(UTC))
        self._fill_cluster(row, options, description)
        self.session.add(row)
        self.session.flush()
        return self._cluster(row)

    def update_cluster(self, name: str, **changes: Any) -> ClusterRecord:
        row = self._cluster_row(name)
        current = self._cluster(row)
        options, description = self._apply_cluster_changes(name, current.options, current.description, changes)
        if not options.parallel_supported and current.options.parallel_supported:
            for vm in row.vms:
                if vm.policy_id and self.get_policy(vm.policy_id).zerocopy:
                    raise InvalidInput(
                        "parallel_supported",
                        f"VM {vm.name!r} uses zero-copy policy {self.policy_name(vm.policy_id)!r}, which "
                        "needs parallel migrations; change its policy before turning parallel support off")
        self._fill_cluster(row, options, description)
        self.session.flush()
        return self._cluster(row)

    def delete_cluster(self, name: str) -> None:
        row = self._cluster_row(name)
        if row.hosts or row.vms:
            raise Conflict(f"cluster {name!r} still has {len(row.hosts)} host(s) and {len(row.vms)} VM(s); "
                           "remove them first")
        self.session.delete(row)
        self.session.flush()

    def _apply_cluster_changes(self, name: str, options: ClusterMigrationOptions, description: str,
                               changes: Mapping[str, Any]) -> tuple[ClusterMigrationOptions, str]:
        unknown = sorted(set(changes) - set(CLUSTER_FIELDS))
        if unknown:
            raise InvalidInput(unknown[0], "unknown cluster field")
        new: dict[str, Any] = {}
        policy = None
        for key, value in changes.items():
            if key == "description":
                if not isinstance(value, str):
                    raise InvalidInput("description", "must be a string")
                description = value
            elif key == "policy":
                policy = self.get_policy(value)
                new["policy_id"] = policy.id
            elif key == "parallel":
                new["parallel"] = _check_parallel("parallel", value)
            elif key == "bandwidth":
                new["bandwidth"] = _check_bandwidth(value)
            elif key == "resilience":
                new["resilience"] = _enum(ResiliencePolicy, "resilience", value)
            elif key in ("encrypted", "auto_converge", "compressed", "parallel_supported"):
                new[key] = check_bool(key, value)
        options = replace(options, **new)
        if not options.parallel_supported:
            policy = policy or self.get_policy(options.policy_id)
            if policy.zerocopy:
                field = "policy" if "policy" in changes else "parallel_supported"
                raise _zerocopy_gate_error(field, policy, name)
        return options, description

    @staticmethod
    def _fill_cluster(row: m.Cluster, o: ClusterMigrationOptions, description: str) -> None:
        row.description = description
        row.policy_id = o.policy_id
        row.parallel_mode = o.parallel.mode.value
        row.parallel_connections = o.parallel.connections
        row.encrypted = o.encrypted
        row.bandwidth_mode = o.bandwidth.mode.value
        row.bandwidth_custom_mbps = o.bandwidth.custom_mbps
        row.auto_converge = o.auto_converge
        row.compressed = o.compressed
        row.resilience = o.resilience.value
        row.parallel_supported = o.parallel_supported

    @staticmethod
    def _cluster(row: m.Cluster) -> ClusterRecord:
        options = ClusterMigrationOptions(
            policy_id=row.policy_id,
            parallel=ParallelSetting(ParallelMode(row.parallel_mode), row.parallel_connections),
            encrypted=row.encrypted,
            bandwidth=BandwidthSetting(BandwidthMode(row.bandwidth_mode), row.bandwidth_custom_mbps),
            auto_converge=row.auto_converge,
            compressed=row.compressed,
            resilience=ResiliencePolicy(row.resilience),
            parallel_supported=row.parallel_supported,
        )
        return ClusterRecord(row.id, row.name, options, row.description, _utc(row.created_at))

    def _cluster_row(self, name: str, field: str | None = None) -> m.Cluster:
        row = self.session.scalars(select(m.Cluster).where(m.Cluster.name == name)).first()
        if row is None:
            if field:
                raise InvalidInput(field, f"unknown cluster {name!r}")
            raise NotFound("cluster", name)
        return row

    # ---------------------------------------------------------------- hosts

    def list_hosts(self, cluster: str | None = None) -> list[HostRecord]:
        q = select(m.Host).order_by(m.Host.name)
        if cluster is not None:
            q = q.where(m.Host.cluster_id == self._cluster_row(cluster, "cluster").id)
        return [self._host(r) for r in self.session.scalars(q)]

    def get_host(self, name: str) -> HostRecord:
        return self._host(self._host_row(name))

    def add_host(self, name: str, *, cluster: str, address: str, agent_url: str | None = None,
                 migration_address: str | None = None, migration_network_up: bool | None = None,
                 link_speed_mbps: int | None = None, status: HostStatus | str = HostStatus.UNKNOWN,
                 capabilities: dict[str, Any] | None = None) -> HostRecord:
        check_name("name", name)
        if self.session.scalars(select(m.Host.id).where(m.Host.name == name)).first() is not None:
            raise Conflict(f"host {name!r} already exists")
        address = check_address("address", address)
        host = "[" + address + "]" if ":" in address else address
        row = m.Host(
            name=name,
            cluster_id=self._cluster_row(cluster, "cluster").id,
            address=address,
            agent_url=check_url("agent_url", agent_url or f"https://{host}:{AGENT_PORT}/"),
            migration_address=None if migration_address is None else check_address("migration_address", migration_address),
            link_speed_mbps=check_optional_int("link_speed_mbps", link_speed_mbps, 1, 10_000_000),
            status=_enum(HostStatus, "status", status).value,
            created_at=datetime.now(UTC),
        )
        # A configured migration network is taken as up until the agent says otherwise.
        row.migration_network_up = (row.migration_address is not None) if migration_network_up is None \
            else bool(check_bool("migration_network_up", migration_network_up))
        if capabilities is not None:
            self._set_capabilities(row, capabilities)
        self.session.add(row)
        self.session.flush()
        return self._host(row)

    def update_host(self, name: str, **changes: Any) -> HostRecord:
        unknown = sorted(set(changes) - set(HOST_FIELDS))
        if unknown:
            raise InvalidInput(unknown[0], "unknown host field")
        row = self._host_row(name)
        for key, value in changes.items():
            if key == "cluster":
                cluster = self._cluster_row(value, "cluster")
                if cluster.id != row.cluster_id and self._vms_on(row):
                    raise Conflict(f"host {name!r} runs VMs; move them before moving the host to another cluster")
                row.cluster = cluster
            elif key == "address":
                row.address = check_address("address", value)
            elif key == "agent_url":
                row.agent_url = check_url("agent_url", value)
            elif key == "migration_address":
                row.migration_address = None if value is None else check_address("migration_address", value)
                if "migration_network_up" not in changes:
                    row.migration_network_up = row.migration_address is not None
            elif key == "migration_network_up":
                row.migration_network_up = bool(check_bool("migration_network_up", value))
            elif key == "link_speed_mbps":
                row.link_speed_mbps = check_optional_int("link_speed_mbps", value, 1, 10_000_000)
            elif key == "status":
                row.status = _enum(HostStatus, "status", value).value
            elif key == "capabilities":
                self._set_capabilities(row, value)
        self.session.flush()
        return self._host(row)

    def set_capabilities(self, name: str, capabilities: dict[str, Any]) -> HostRecord:
        """Record the agent's Host.getCapabilities answer (the orchestrator calls this)."""
        return self.update_host(name, capabilities=capabilities)

    def delete_host(self, name: str) -> None:
        row = self._host_row(name)
        vms = self._vms_on(row)
        if vms:
            raise Conflict(f"host {name!r} runs VM(s) {', '.join(v.name for v in vms)}; "
                           "migrate or remove them first")
        self.session.delete(row)
        self.session.flush()

    @staticmethod
    def _set_capabilities(row: m.Host, capabilities: Any) -> None:
        if capabilities is not None and not isinstance(capabilities, dict):
            raise InvalidInput("capabilities", "must be an object")
        row.capabilities = capabilities
        row.capabilities_at = None if capabilities is None else datetime.now(UTC)

    def _vms_on(self, host: m.Host) -> list[m.Vm]:
        return list(self.session.scalars(select(m.Vm).where(m.Vm.host_id == host.id).order_by(m.Vm.name)))

    def _host_row(self, name: str, field: str | None = None) -> m.Host:
        row = self.session.scalars(select(m.Host).where(m.Host.name == name)).first()
        if row is None:
            if field:
                raise InvalidInput(field, f"unknown host {name!r}")
            raise NotFound("host", name)
        return row

    @staticmethod
    def _host(row: m.Host) -> HostRecord:
        return HostRecord(
            id=row.id, name=row.name, cluster=row.cluster.name, address=row.address,
            agent_url=row.agent_url, migration_address=row.migration_address,
            migration_network_up=row.migration_network_up, link_speed_mbps=row.link_speed_mbps,
            status=HostStatus(row.status), capabilities=row.capabilities,
            capabilities_at=_utc(row.capabilities_at), created_at=_utc(row.created_at),
        )

    # ---------------------------------------------------------------- VMs

    def list_vms(self, cluster: str | None = None, host: str | None = None) -> list[VmRecord]:
        q = select(m.Vm).order_by(m.Vm.name)
        if cluster is not None:
            q = q.where(m.Vm.cluster_id == self._cluster_row(cluster, "cluster").id)
        if host is not None:
            q = q.where(m.Vm.host_id == self._host_row(host, "host").id)
        return [self._vm(r) for r in self.session.scalars(q)]

    def get_vm(self, ref: str) -> VmRecord:
        return self._vm(self._vm_row(ref))

    def add_vm(self, spec: VmSpec | Mapping[str, Any], *, cluster: str, host: str | None = None,
               status: VmStatus | str | None = None, overrides: Mapping[str, Any] | None = None,
               workload: dict[str, Any] | None = None) -> VmRecord:
        spec = spec if isinstance(spec, VmSpec) else VmSpec.from_dict(spec)
        uuid = spec.effective_uuid
        taken = self.session.scalars(select(m.Vm).where(or_(m.Vm.name == spec.name, m.Vm.uuid == uuid))).first()
        if taken is not None:
            what = f"name {spec.name!r}" if taken.name == spec.name else f"uuid {uuid}"
            raise Conflict(f"a VM with {what} already exists")
        cluster_row = self._cluster_row(cluster, "cluster")
        row = m.Vm(name=spec.name, uuid=uuid, cluster_id=cluster_row.id, created_at=datetime.now(UTC))
        with self.session.no_autoflush:
            self._set_spec(row, spec)
            self._set_placement(row, host, status, initial=True, cluster=cluster_row)
            if workload is not None:
                row.workload = self._check_workload(workload)
            self._set_overrides(row, cluster_row, overrides or {})
        self.session.add(row)
        self.session.flush()
        return self._vm(row)

    def update_vm(self, ref: str, *, overrides: Mapping[str, Any] | None = None, **changes: Any) -> VmRecord:
        """Change a VM. `changes` may hold spec fields, cluster, host, status, workload;
        `overrides` holds only the overrides to change (None as a value = inherit)."""
        allowed = set(SPEC_FIELDS) | {"cluster", "host", "status", "workload"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise InvalidInput(unknown[0], "unknown VM field")
        row = self._vm_row(ref)
        spec_changes = {k: v for k, v in changes.items() if k in SPEC_FIELDS}
        if spec_changes:
            spec = VmSpec.from_dict({**row.spec, **spec_changes})
            self._set_spec(row, spec)
        if "cluster" in changes:
            cluster_row = self._cluster_row(changes["cluster"], "cluster")
            if cluster_row.id != row.cluster_id and row.host_id is not None and "host" not in changes:
                raise Conflict(f"VM {row.name!r} runs on host {row.host.name!r} of cluster {row.cluster.name!r}; "
                               "stop it (or give its new host) before moving it to another cluster")
            row.cluster_id = cluster_row.id
            row.cluster = cluster_row
        if "host" in changes or "status" in changes:
            self._set_placement(row, changes.get("host", row.host.name if row.host else None),
                                changes.get("status"), initial=False, cluster=row.cluster)
        if "workload" in changes:
            row.workload = self._check_workload(changes["workload"])
        self._set_overrides(row, row.cluster, overrides or {})
        self.session.flush()
        return self._vm(row)

    def delete_vm(self, ref: str) -> None:
        row = self._vm_row(ref)
        active = self.session.scalars(select(m.Migration.id).where(
            m.Migration.vm_id == row.id, m.Migration.state.in_(ACTIVE_MIGRATION_STATES))).first()
        if active is not None:
            raise Conflict(f"VM {row.name!r} is migrating (migration {active}); wait or cancel it first")
        self.session.delete(row)
        self.session.flush()

    @staticmethod
    def _check_workload(workload: Any) -> dict[str, Any] | None:
        if workload is not None and not isinstance(workload, dict):
            raise InvalidInput("workload", "must be an object")
        return workload

    @staticmethod
    def _set_spec(row: m.Vm, spec: VmSpec) -> None:
        if spec.name != row.name:
            raise InvalidInput("name", "a VM's name cannot change")
        if spec.effective_uuid != row.uuid:
            raise InvalidInput("uuid", "a VM's uuid cannot change")
        data = spec.to_dict()
        data["uuid"] = row.uuid
        row.spec = data
        row.memory_mib = spec.memory_mib
        row.vcpus = spec.vcpus

    def _set_placement(self, row: m.Vm, host: str | None, status: Any, *, initial: bool,
                       cluster: m.Cluster) -> None:
        if host is None:
            row.host_id = None
            row.host = None
        else:
            host_row = self._host_row(host, "host")
            if host_row.cluster_id != row.cluster_id:
                raise InvalidInput("host", f"host {host!r} is in cluster {host_row.cluster.name!r}, "
                                           f"not in the VM's cluster {cluster.name!r}")
            row.host_id = host_row.id
            row.host = host_row
        if status is not None:
            new_status = _enum(VmStatus, "status", status)
        elif initial or (row.host_id is None) != (row.status == VmStatus.DOWN.value):
            new_status = VmStatus.UP if row.host_id is not None else VmStatus.DOWN
        else:
            new_status = VmStatus(row.status)
        if new_status is VmStatus.DOWN and row.host_id is not None:
            raise InvalidInput("status", "a VM that is DOWN runs on no host; clear its host too")
        if new_status is not VmStatus.DOWN and row.host_id is None:
            raise InvalidInput("host", f"a VM that is {new_status.value} must run on a host")
        row.status = new_status.value

    def _set_overrides(self, row: m.Vm, cluster: m.Cluster, changes: Mapping[str, Any]) -> None:
        unknown = sorted(set(changes) - set(OVERRIDE_FIELDS))
        if unknown:
            raise InvalidInput(f"overrides.{unknown[0]}", f"unknown override (known: {', '.join(OVERRIDE_FIELDS)})")
        for key, value in changes.items():
            if key == "policy":
                policy = None if value is None else self.get_policy(value)
                row.policy_id = policy.id if policy else None
            elif key == "parallel":
                p = None if value is None else _check_parallel("parallel", value)
                row.parallel_mode = p.mode.value if p else None
                row.parallel_connections = p.connections if p else None
            elif key in ("encrypted", "auto_converge", "compressed"):
                setattr(row, key, check_bool(key, value, optional=True))
            elif key == "downtime_ms":
                row.downtime_ms = check_optional_int("downtime_ms", value, 1, MAX_DOWNTIME_MS)
        if row.policy_id is not None and not cluster.parallel_supported:
            policy = self.get_policy(row.policy_id)
            if policy.zerocopy:
                raise _zerocopy_gate_error("policy", policy, cluster.name)

    def _vm_row(self, ref: str, field: str | None = None) -> m.Vm:
        row = self.session.scalars(select(m.Vm).where(or_(m.Vm.name == ref, m.Vm.uuid == ref))).first()
        if row is None:
            if field:
                raise InvalidInput(field, f"unknown VM {ref!r}")
            raise NotFound("VM", ref)
        return row

    @staticmethod
    def _overrides(row: m.Vm) -> VmMigrationOverrides:
        return VmMigrationOverrides(
            policy_id=row.policy_id,
            parallel=None if row.parallel_mode is None
            else ParallelSetting(ParallelMode(row.parallel_mode), row.parallel_connections),
            encrypted=row.encrypted,
            auto_converge=row.auto_converge,
            compressed=row.compressed,
            downtime_ms=row.downtime_ms,
        )

    def _vm(self, row: m.Vm) -> VmRecord:
        return VmRecord(
            id=row.id, name=row.name, uuid=row.uuid, cluster=row.cluster.name, spec=dict(row.spec),
            host=row.host.name if row.host else None, status=VmStatus(row.status),
            overrides=self._overrides(row), workload=row.workload, created_at=_utc(row.created_at),
        )

    # ---------------------------------------------------------------- migrations

    def create_migration(self, vm: str, *, source: str | None, destination: str | None,
                         plan: dict[str, Any] | None = None, state: str = "PENDING") -> MigrationRecord:
        row = m.Migration(
            id=str(uuidlib.uuid4()),
            vm_id=self._vm_row(vm, "vm").id,
            source_host_id=None if source is None else self._host_row(source, "source").id,
            destination_host_id=None if destination is None else self._host_row(destination, "destination").id,
            state=state, progress=0, plan=plan, created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        self.session.add(row)
        self.session.flush()
        return self._migration(row)

    def update_migration(self, migration_id: str, **changes: Any) -> MigrationRecord:
        """Set any of: state, progress, plan, result, error, figures, attempts, started_at,
        finished_at, source, destination."""
        row = self._migration_row(migration_id)
        for key, value in changes.items():
            if key == "destination":
                row.destination_host_id = None if value is None else self._host_row(value, "destination").id
            elif key == "source":
                row.source_host_id = None if value is None else self._host_row(value, "source").id
            elif key == "progress":
                row.progress = int(check_optional_int("progress", value, 0, 100))
            elif key in ("state", "plan", "result", "error", "figures", "attempts", "started_at", "finished_at"):
                setattr(row, key, value)
            else:
                raise InvalidInput(key, "unknown migration field")
        row.updated_at = datetime.now(UTC)
        self.session.flush()
        return self._migration(row)

    def get_migration(self, migration_id: str) -> MigrationRecord:
        return self._migration(self._migration_row(migration_id))

    def list_migrations(self, vm: str | None = None, active: bool | None = None,
                        limit: int = 100) -> list[MigrationRecord]:
        q = select(m.Migration).order_by(m.Migration.created_at.desc(), m.Migration.id).limit(limit)
        if vm is not None:
            q = q.where(m.Migration.vm_id == self._vm_row(vm, "vm").id)
        if active is True:
            q = q.where(m.Migration.state.in_(ACTIVE_MIGRATION_STATES))
        elif active is False:
            q = q.where(m.Migration.state.not_in(ACTIVE_MIGRATION_STATES))
        return [self._migration(r) for r in self.session.scalars(q)]

    def _migration_row(self, migration_id: str) -> m.Migration:
        row = self.session.get(m.Migration, migration_id)
        if row is None:
            raise NotFound("migration", migration_id)
        return row

    @staticmethod
    def _migration(row: m.Migration) -> MigrationRecord:
        return MigrationRecord(
            id=row.id, vm=row.vm.name,
            source=row.source_host.name if row.source_host else None,
            destination=row.destination_host.name if row.destination_host else None,
            state=row.state, progress=row.progress, plan=row.plan, result=row.result, error=row.error,
            figures=row.figures, attempts=row.attempts,
            created_at=_utc(row.created_at), started_at=_utc(row.started_at),
            finished_at=_utc(row.finished_at), updated_at=_utc(row.updated_at),
        )

    # ---------------------------------------------------------------- events

    def add_event(self, code: int, message: str, *, severity: str = "normal", vm: str | None = None,
                  host: str | None = None, migration_id: str | None = None) -> EventRecord:
        row = m.Event(
            time=datetime.now(UTC), severity=str(severity), code=int(code), message=message,
            vm_id=None if vm is None else self._vm_row(vm, "vm").id,
            host_id=None if host is None else self._host_row(host, "host").id,
            migration_id=migration_id,
        )
        self.session.add(row)
        self.session.flush()
        return self._event(row)

    def record_audit(self, kind: audit.AuditType, *, vm: str | None = None, host: str | None = None,
                     migration_id: str | None = None, **fields: Any) -> EventRecord:
        """An oVirt audit event: its id, severity and text from ferry.engine.audit."""
        message = audit.format_message(kind, vm=vm, **fields)
        return self.add_event(kind.code, message, severity=kind.severity.value, vm=vm, host=host,
                              migration_id=migration_id)

    def list_events(self, *, vm: str | None = None, host: str | None = None,
                    migration_id: str | None = None, after_id: int | None = None,
                    limit: int = 100) -> list[EventRecord]:
        """The newest `limit` events matching, oldest first; after_id lets a caller follow."""
        # Following (after_id): the next ones, oldest first; otherwise the newest ones.
        q = select(m.Event).order_by(m.Event.id if after_id is not None else m.Event.id.desc()).limit(limit)
        if vm is not None:
            q = q.where(m.Event.vm_id == self._vm_row(vm, "vm").id)
        if host is not None:
            q = q.where(m.Event.host_id == self._host_row(host, "host").id)
        if migration_id is not None:
            q = q.where(m.Event.migration_id == migration_id)
        if after_id is not None:
            q = q.where(m.Event.id > after_id)
        rows = self.session.scalars(q).all()
        return [self._event(r) for r in (rows if after_id is not None else reversed(rows))]

    @staticmethod
    def _event(row: m.Event) -> EventRecord:
        return EventRecord(
            id=row.id, time=_utc(row.time), severity=row.severity, code=row.code, message=row.message,
            vm=row.vm.name if row.vm else None, host=row.host.name if row.host else None,
            migration_id=row.migration_id,
        )
