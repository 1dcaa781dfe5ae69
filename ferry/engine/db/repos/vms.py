"""The VMs repository: each VM's spec, where it runs, its workload and its migration overrides."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from ferry.common.errors import Conflict, InvalidInput
from ferry.common.vmspec import VmSpec
from ferry.engine.db import models as m
from ferry.engine.db.placement import placed_status
from ferry.engine.db.records import MIGRATION_ACTIVE_STATES, VmPlacement, VmRecord, VmStatus
from ferry.engine.db.repos.base import UNSET, Unset, as_enum, find_row, given, now, utc
from ferry.engine.db.repos.policies import PolicyRepository
from ferry.engine.options import ParallelMode, ParallelSetting, VmMigrationOverrides

# A VM record names its cluster and host: loaded with the VM, and only their names.
_NAMES = (joinedload(m.Vm.cluster).load_only(m.Cluster.name), joinedload(m.Vm.host).load_only(m.Host.name))
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
        q = q.options(*_NAMES).order_by(m.Vm.name)
        if cluster is not None:
            q = q.where(m.Vm.cluster_id.in_(select(m.Cluster.id).where(m.Cluster.name == cluster)))
        if hosts is not None:
            q = q.where(m.Vm.host_id.in_(select(m.Host.id).where(m.Host.name.in_(hosts))))
        return [_record(r) for r in self.session.scalars(q)]

    def placements(self, hosts: list[str] | None = None, uuids: list[str] | None = None) -> list[VmPlacement]:
        """Name, UUID, host and status of the VMs placed on `hosts` or with one of `uuids`, in one
        narrow query (the host monitor's reconciliation needs no spec, overrides or cluster)."""
        conditions = []
        if hosts:
            conditions.append(m.Vm.host_id.in_(select(m.Host.id).where(m.Host.name.in_(hosts))))
        if uuids:
            conditions.append(m.Vm.uuid.in_(uuids))
        if not conditions:
            return []
        q = select(m.Vm.name, m.Vm.uuid, m.Host.name, m.Vm.status).outerjoin(m.Host, m.Vm.host_id == m.Host.id) \
            .where(or_(*conditions)).order_by(m.Vm.name)
        return [VmPlacement(name, uuid, host, VmStatus(status)) for name, uuid, host, status in self.session.execute(q)]

    def get(self, ref: str) -> VmRecord:
        return _record(find_row(self.session, m.Vm, ref, options=_NAMES))

    def ensure_new(self, name: str, uuid: str) -> None:
        taken = self.session.scalars(select(m.Vm).where(or_(m.Vm.name == name, m.Vm.uuid == uuid))).first()
        if taken is not None:
            what = f"name {name!r}" if taken.name == name else f"uuid {uuid}"
            raise Conflict(f"a VM with {what} already exists")

    def add(self, spec: VmSpec | Mapping[str, Any], *, cluster: str, host: str | None = None,
            status: VmStatus | str | None = None, overrides: Mapping[str, Any] | None = None,
            workload: dict[str, Any] | None = None) -> VmRecord:
        """A new VM (checked by services.inventory: placement, overrides, the zero-copy gate);
        with no status given it is UP on a host, DOWN without one."""
        spec = spec if isinstance(spec, VmSpec) else VmSpec.from_dict(spec)
        uuid = spec.effective_uuid
        self.ensure_new(spec.name, uuid)
        cluster_row = find_row(self.session, m.Cluster, cluster, "cluster")
        row = m.Vm(name=spec.name, uuid=uuid, cluster_id=cluster_row.id, created_at=now())
        with self.session.no_autoflush:
            _set_spec(row, spec)
            self._set_placement(row, host, status, initial=True)
            row.workload = workload
            self._set_overrides(row, overrides or {})
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
            row.cluster_id = cluster_row.id
            row.cluster = cluster_row
        if host is not UNSET or status is not UNSET:
            current = row.host.name if row.host else None
            self._set_placement(row, current if host is UNSET else host, None if status is UNSET else status,
                                initial=False)
        if workload is not UNSET:
            row.workload = workload
        self._set_overrides(row, overrides or {})
        self.session.flush()
        return _record(row)

    def set_measured(self, ref: str, measured: dict[str, Any] | None) -> None:
        """Keep the VM's last pre-migration measurement (see models.Vm.measured)."""
        row = find_row(self.session, m.Vm, ref)
        row.measured = measured
        self.session.flush()

    def measured(self, ref: str) -> dict[str, Any] | None:
        return find_row(self.session, m.Vm, ref).measured

    def delete(self, ref: str) -> None:
        row = find_row(self.session, m.Vm, ref)
        active = self.session.scalars(select(m.Migration.id).where(
            m.Migration.vm_id == row.id, m.Migration.state.in_(MIGRATION_ACTIVE_STATES))).first()
        if active is not None:
            raise Conflict(f"VM {row.name!r} is migrating (migration {active}); wait or cancel it first")
        self.session.delete(row)
        self.session.flush()

    def _set_placement(self, row: m.Vm, host: str | None, status: VmStatus | str | None, *, initial: bool) -> None:
        if host is None:
            row.host_id = None
            row.host = None
        else:
            host_row = find_row(self.session, m.Host, host, "host")
            row.host_id = host_row.id
            row.host = host_row
        row.status = placed_status(has_host=row.host_id is not None,
                                   status=None if status is None else as_enum(VmStatus, status),
                                   current=None if initial else VmStatus(row.status)).value

    def _set_overrides(self, row: m.Vm, changes: Mapping[str, Any]) -> None:
        """Store the overrides given, as values (policy: an id or name, None = inherit)."""
        unknown = sorted(set(changes) - set(OVERRIDE_FIELDS))
        if unknown:
            raise ValueError(f"unknown override {unknown[0]!r}")
        for key, value in changes.items():
            if key == "policy":
                row.policy_id = None if value is None else self.policies.get(value).id
            elif key == "parallel":
                row.parallel_mode = value.mode.value if value else None
                row.parallel_connections = value.connections if value else None
            else:  # encrypted, auto_converge, compressed, downtime_ms
                setattr(row, key, value)


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
