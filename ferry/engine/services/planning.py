"""Choosing a destination and planning a VM's migration from the inventory.

Used by the REST API's dry run (`POST /api/vms/{vm}/plan`), by a migration request and by a
rerun before VM.migrate is sent. Reads only: it gathers what the pure planner
(ferry.engine.planner) and the destination rule (ferry.engine.destination) need and calls them.
"""
from __future__ import annotations

from ferry.common.errors import Conflict, InvalidInput, NotFound
from ferry.engine.db.records import HostRecord, HostStatus, VmRecord, VmStatus
from ferry.engine.db.store import Store
from ferry.engine.destination import Candidate, choose_destination
from ferry.engine.planner import MigrationPlan, effective_policy_id, plan_migration
from ferry.engine.policies import check_policy_allowed

# Host.getCapabilities / getStats keys that may carry free memory (MiB), if the agent sends them.
_FREE_MEMORY_KEYS = ("memFree", "free_memory_mib")


def _free_memory(host: HostRecord) -> int | None:
    caps = host.capabilities or {}
    for key in _FREE_MEMORY_KEYS:
        value = caps.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def pick_destination(store: Store, vm: VmRecord, exclude: set[str] | frozenset[str] = frozenset()) -> HostRecord:
    """The host the engine would choose for `vm` (up, same cluster, not the source, room for
    it, fewest running migrations); Conflict saying why when there is none."""
    running = store.migrations.active_by_destination()
    hosts = {h.name: h for h in store.hosts.list(cluster=vm.cluster)}
    candidates = [
        Candidate(name=h.name, cluster=h.cluster, up=h.status is HostStatus.UP,
                  free_memory_mib=_free_memory(h), running_migrations=running.get(h.name, 0))
        for h in hosts.values()
    ]
    choice = choose_destination(candidates, cluster=vm.cluster, source=vm.host or "",
                                vm_memory_mib=vm.memory_mib, exclude=exclude)
    if choice.host is None:
        raise Conflict(f"no host to migrate VM {vm.name!r} to: {choice.reason()}")
    return hosts[choice.host]


def _given_destination(store: Store, vm: VmRecord, source: HostRecord, to: object) -> HostRecord:
    if not isinstance(to, str) or not to.strip():
        raise InvalidInput("to", "must be a host name")
    try:
        destination = store.hosts.get(to)
    except NotFound:
        raise InvalidInput("to", f"unknown host {to!r}") from None
    if destination.name == source.name:
        raise InvalidInput("to", f"VM {vm.name!r} already runs on {to!r}")
    if destination.cluster != vm.cluster:
        raise InvalidInput("to", f"host {to!r} is in cluster {destination.cluster!r}; VM {vm.name!r} "
                                 f"can migrate only within its cluster {vm.cluster!r}")
    return destination


def plan_for_vm(store: Store, vm_ref: str, *, to: str | None = None, policy: str | None = None) -> MigrationPlan:
    """The plan for migrating a running VM now: to `to` (or the host the engine would pick),
    under `policy` (or the VM's effective one). Bad input names the field (`to`, `policy`)."""
    vm = store.vms.get(vm_ref)
    if vm.host is None:
        raise Conflict(f"VM {vm.name!r} is not running on any host (status {vm.status.value}); "
                       "only a running VM can be migrated")
    cluster = store.clusters.get(vm.cluster)
    source = store.hosts.get(vm.host)
    destination = pick_destination(store, vm) if to is None else _given_destination(store, vm, source, to)
    if policy is not None:
        chosen = store.policies.get(policy, field="policy")
        check_policy_allowed(chosen, cluster.options.parallel_supported, field="policy")
    else:
        policy_id, _origin = effective_policy_id(cluster.options, vm.overrides)
        chosen = store.policies.get(policy_id, field="policy")
    return plan_migration(
        cluster.options, vm.overrides, chosen, source.migration_info(), destination.migration_info(),
        vcpus=vm.vcpus, paused=vm.status is VmStatus.PAUSED, vm_name=vm.name,
        # facts §5 step 8: the bandwidth is shared by the CLUSTER policy's migrations
        cluster_policy=store.policies.get(cluster.options.policy_id, field="cluster.policy"),
    )
