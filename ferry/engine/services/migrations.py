"""The migration use cases the orchestrator runs inside its lock: accept a request, plan a rerun,
ask to cancel. Each works on one unit of work; the orchestrator sends and follows VM.migrate."""
from __future__ import annotations

import time

from ferry.common.errors import Conflict
from ferry.engine.db.records import HostStatus, MigrationRecord, MigrationState, VmRecord, VmStatus
from ferry.engine.db.store import Store
from ferry.engine.forecasting import fresh_premigration
from ferry.engine.planner import MigrationPlan
from ferry.engine.services.planning import pick_destination, plan_for_vm


def accept(store: Store, vm_ref: str, *, to: str | None = None,
           policy: str | None = None) -> tuple[VmRecord, MigrationRecord]:
    """Check that the VM can migrate now, plan it and record it PENDING. Bad input names the
    field (`to`, `policy`); a VM that cannot migrate now is a Conflict saying why."""
    vm = store.vms.get(vm_ref)
    busy = store.migrations.list(vm=vm.name, active=True)
    if busy:
        raise Conflict(f"VM {vm.name!r} is already migrating (migration {busy[0].id})")
    if vm.status not in (VmStatus.UP, VmStatus.PAUSED):
        raise Conflict(f"VM {vm.name!r} is {vm.status.value}; only a running VM can be migrated")
    plan = plan_for_vm(store, vm.name, to=to, policy=policy)
    source = store.hosts.get(plan.source)
    if source.status is HostStatus.DOWN:
        raise Conflict(f"the VM's host {source.name!r} is DOWN (its agent does not answer)")
    planned = plan.to_dict()
    measured = fresh_premigration(store.vms.measured(vm.name), time.time())
    if measured is not None:      # the live ETA's dirty rate (ferry.engine.migration_eta)
        planned["measured"] = measured
    record = store.migrations.create(vm.name, source=plan.source, destination=plan.destination,
                                     plan=planned, state=MigrationState.PENDING)
    return vm, store.migrations.update(record.id, attempts=[])


def plan_rerun(store: Store, vm_ref: str, *, tried: set[str], policy: str | None) -> MigrationPlan:
    """The plan for trying another host after a failed attempt (hosts tried are excluded);
    Conflict saying why when no host is left."""
    nxt = pick_destination(store, store.vms.get(vm_ref), exclude=tried)
    return plan_for_vm(store, vm_ref, to=nxt.name, policy=policy)


def still_active(store: Store, migration_id: str) -> MigrationRecord:
    """The migration's record; Conflict when it has already ended."""
    record = store.migrations.get(migration_id)
    if not record.active:
        raise Conflict(f"migration {migration_id} already ended ({record.state.value})")
    return record


def mark_cancelling(store: Store, migration_id: str) -> MigrationRecord:
    """A cancel was asked: CANCELLING until the agent confirms (Conflict if it already ended)."""
    still_active(store, migration_id)
    return store.migrations.update(migration_id, state=MigrationState.CANCELLING)
