"""Planning the migrations that would empty a set of hosts, all at once, in one read of the inventory.

Why apart from the maintenance drain: the drain (ferry.engine.drain_planner, run by
ferry.engine.drain_runner) starts a host's VMs tick by tick within the hosts' migration slots
and records what it did; this use case plans every VM of the hosts in one pass and starts
nothing (what `ferry bench scale` times at 2,000 hosts). It gathers hosts, running migrations,
clusters and policies once, assigns destinations with ferry.engine.destination.assign_destinations
(the single-migration rule, counting the VMs planned before), and runs the pure planner per VM
exactly as `plan_for_vm` does. Reads only.
"""
from __future__ import annotations

from ferry.engine.db.records import HostStatus, VmStatus
from ferry.engine.db.store import Store
from ferry.engine.destination import Candidate, Leaving, assign_destinations
from ferry.engine.planner import MigrationPlan, effective_policy_id, plan_migration
from ferry.engine.services.planning import free_memory


def plan_hosts_empty(store: Store, hosts: list[str]) -> tuple[list[MigrationPlan], list[str]]:
    """Plans moving every running VM off `hosts` to other hosts; and the VMs nowhere fits."""
    drained = frozenset(hosts)
    all_hosts = {h.name: h for h in store.hosts.list()}
    running = store.migrations.active_by_destination()
    candidates = [Candidate(name=h.name, cluster=h.cluster, up=h.status is HostStatus.UP,
                            free_memory_mib=free_memory(h), running_migrations=running.get(h.name, 0))
                  for h in all_hosts.values()]
    order = {h: i for i, h in enumerate(hosts)}
    vms = sorted((vm for vm in store.vms.on_hosts(list(drained)) if vm.host is not None),
                 key=lambda v: order[v.host])   # host by host, as given (the assignment's order)
    where = assign_destinations((Leaving(v.name, v.cluster, v.host, v.memory_mib) for v in vms), candidates,
                                exclude=drained)
    clusters: dict = {}
    policies: dict = {}

    def policy(ref: str, field: str):  # noqa: ANN202
        if ref not in policies:
            policies[ref] = store.policies.get(ref, field=field)
        return policies[ref]

    plans, stuck = [], []
    for vm in vms:
        dest = where.get(vm.name)
        if dest is None:
            stuck.append(vm.name)
            continue
        cluster = clusters.get(vm.cluster) or clusters.setdefault(vm.cluster, store.clusters.get(vm.cluster))
        policy_id, _origin = effective_policy_id(cluster.options, vm.overrides)
        plans.append(plan_migration(
            cluster.options, vm.overrides, policy(policy_id, "policy"), all_hosts[vm.host].migration_info(),
            all_hosts[dest].migration_info(), vcpus=vm.vcpus, paused=vm.status is VmStatus.PAUSED, vm_name=vm.name,
            cluster_policy=policy(cluster.options.policy_id, "cluster.policy")))
    return plans, stuck
