"""The VMs repository: each VM's spec, where it runs, its workload and its migration overrides."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from ferry.common.errors import Conflict, InvalidInput
from ferry.common.vmspec import VmSpec
from ferry.engine.db import models as m
from ferry.engine.db.records import MIGRATION_ACTIVE_STATES, VmRecord, VmStatus
from ferry.engine.db.repos.base import UNSET, Unset, find_row, given, now, utc
from ferry.engine.db.repos.policies import PolicyRepository
from ferry.engine.options import ParallelMode, ParallelSetting, VmMigrationOverrides
from ferry.engine.validation import (
    MAX_DOWNTIME_MS,
    check_bool,
    check_enum,
    check_object,
    check_optional_int,
    check_parallel,
    check_zerocopy_gate,
)

OVERRIDE_FIELDS = ("policy", "parallel", "encrypted", "auto_converge", "compressed", "downtime_ms")


class VmRepository:
    def __init__(self, session: Session, policies: PolicyRepository):
        self.session = session
        self.policies = policies

    def list(self, cluster: str | None = None, host: str | None = None) -> list[VmRecord]:
        if cluster is not None:
            find_row(self.session, m.Cluster, cluster, "cluster")
        if host is not None:
            find_row(self.session, m.Host, host, "host")
        return self._listed(select(m.Vm), cluster=cluster, hosts=None if host is None else [host])

    def on_hosts(self, hosts: list[str]) -> list[VmRecord]:
        """The VMs placed on any of `hosts` (unknown names have none), in one query: a drain of 100
        hosts read them host by host, 100 round trips and most of its planning time."""
        return self._listed(select(m.Vm), hosts=list(hosts))

    def _listed(self, q, cluster: str | None = None, hosts: list[str] | None = None) -> list[VmRecord]:  # noqa: ANN001
        # The record names the VM's cluster and host: loaded in the same query, not one query per VM,
        # and only their names (a host row carries the agent's capabilities and stats, large JSON).
        q = q.options(joinedload(m.Vm.cluster).load_only(m.Cluster.name),
                      joinedload(m.Vm.host).load_only(m.Host.name)).order_by(m.Vm.name)
        if cluster is not None:
            q = q.where(m.Vm.cluster_id.in_(select(m.Cluster.id).where(m.Cluster.name == cluster)))
        if hosts is not None:
            q = q.where(m.Vm.host_id.in_(select(m.Host.id).where(m.Host.name.in_(hosts))))
        return [_record(r) for r in self.session.scalars(q)]

    def get(self, ref: str) -> VmRecord:
        return _record(find_row(self.session, m.Vm, ref))

    def add(self, spec: VmSpec | Mapping[str, Any], *, cluster: str, host: str | None = None,
            status: VmStatus | str | None = None, overrides: Mapping[str, Any] | None = None,
            workload: dict[str, Any] | None = None) -> VmRecord:
        spec = spec if isinstance(spec, VmSpec) else VmSpec.from_dict(spec)
        uuid = spec.effective_uuid
        taken = self.session.scalars(select(m.Vm).where(or_(m.Vm.name == spec.name, m.Vm.uuid == uuid))).first()
        if taken is not None:
            what = f"name {spec.name!r}" if taken.name == spec.name else f"uuid {uuid}"
            raise Conflict(f"a VM with {what} already exists")
        cluster_row = find_row(self.session, m.Cluster, cluster, "cluster")
        row = m.Vm(name=spec.name, uuid=uuid, cluster_id=cluster_row.id, created_at=now())
        with self.session.no_autoflush:
            _set_spec(row, spec)
            self._set_placement(row, host, status, initial=True, cluster=cluster_row)
            if workload is not None:
                row.workload = check_object("workload", workload)
            self._set_overrides(row, cluster_row, overrides or {})
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def update(self, ref: str, *, overrides: Mapping[str, Any] | None = None,
               memory_mib: int | Unset = UNSET, vcpus: int | Unset = UNSET, kernel: str | Unset = UNSET,
               initrd: str | None | Unset = UNSET, cmdline: str | Unset = UNSET, accel: str | None | Unset = UNSET,
               memtune_hard_limit_kib: int | None | Unset = UNSET, console_log: str | None | Unset = UNSET,
               emulator: str | None | Unset = UNSET, machine: str | None | Unset = UNSET,
               cluster: str | Unset = UNSET, host: str | None | Unset = UNSET,
               status: VmStatus | str | None | Unset = UNSET,
               workload: dict[str, Any] | None | Unset = UNSET) -> VmRecord:
        """Change a VM: the spec fields, cluster, host, status, workload given; `overrides`
        holds only the overrides to change (None as a value = inherit)."""
        row = find_row(self.session, m.Vm, ref)
        spec_changes = given(memory_mib=memory_mib, vcpus=vcpus, kernel=kernel, initrd=initrd, cmdline=cmdline,
                             accel=accel, memtune_hard_limit_kib=memtune_hard_limit_kib,
                             console_log=console_log, emulator=emulator, machine=machine)
        if spec_changes:
            _set_spec(row, VmSpec.from_dict({**row.spec, **spec_changes}))
        if cluster is not UNSET:
            cluster_row = find_row(self.session, m.Cluster, cluster, "cluster")
            if cluster_row.id != row.cluster_id and row.host_id is not None and host is UNSET:
                raise Conflict(f"VM {row.name!r} runs on host {row.host.name!r} of cluster {row.cluster.name!r}; "
                               "stop it (or give its new host) before moving it to another cluster")
            row.cluster_id = cluster_row.id
            row.cluster = cluster_row
        if host is not UNSET or status is not UNSET:
            current = row.host.name if row.host else None
            self._set_placement(row, current if host is UNSET else host, None if status is UNSET else status,
                                initial=False, cluster=row.cluster)
        if workload is not UNSET:
            row.workload = check_object("workload", workload)
        self._set_overrides(row, row.cluster, overrides or {})
        self.session.flush()
        return _record(row)

    def delete(self, ref: str) -> None:
        row = find_row(self.session, m.Vm, ref)
        active = self.session.scalars(select(m.Migration.id).where(
            m.Migration.vm_id == row.id, m.Migration.state.in_(MIGRATION_ACTIVE_STATES))).first()
        if active is not None:
            raise Conflict(f"VM {row.name!r} is migrating (migration {active}); wait or cancel it first")
        self.session.delete(row)
        self.session.flush()

    def _set_placement(self, row: m.Vm, host: str | None, status: Any, *, initial: bool,
                       cluster: m.Cluster) -> None:
        if host is None:
            row.host_id = None
            row.host = None
        else:
            host_row = find_row(self.session, m.Host, host, "host")
            if host_row.cluster_id != row.cluster_id:
                raise InvalidInput("host", f"host {host!r} is in cluster {host_row.cluster.name!r}, "
                                           f"not in the VM's cluster {cluster.name!r}")
            row.host_id = host_row.id
            row.host = host_row
        if status is not None:
            new_status = check_enum(VmStatus, "status", status)
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
                policy = None if value is None else self.policies.get(value)
                row.policy_id = policy.id if policy else None
            elif key == "parallel":
                p = None if value is None else check_parallel("parallel", value)
                row.parallel_mode = p.mode.value if p else None
                row.parallel_connections = p.connections if p else None
            elif key in ("encrypted", "auto_converge", "compressed"):
                setattr(row, key, check_bool(key, value, optional=True))
            elif key == "downtime_ms":
                row.downtime_ms = check_optional_int("downtime_ms", value, 1, MAX_DOWNTIME_MS)
        if row.policy_id is not None and not cluster.parallel_supported:
            check_zerocopy_gate("policy", self.policies.get(row.policy_id), cluster.name, False)


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


def _record(row: m.Vm) -> VmRecord:
    return VmRecord(
        id=row.id, name=row.name, uuid=row.uuid, cluster=row.cluster.name, spec=dict(row.spec),
        host=row.host.name if row.host else None, status=VmStatus(row.status),
        overrides=_overrides(row), workload=row.workload, created_at=utc(row.created_at),
    )
