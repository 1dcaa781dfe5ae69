"""The inventory use cases: clusters, hosts, VMs and policies as the REST API reads and changes them.

Changes arrive as mappings of the fields a client sent (a PATCH changes only those); an unknown
field is bad input naming it, before the repository's typed arguments see it. Views are the
records' JSON forms, with the names of the policies they refer to.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.common.errors import InvalidInput
from ferry.engine.db.records import ClusterRecord, HostRecord, VmRecord
from ferry.engine.db.store import Store

CLUSTER_FIELDS = ("description", "policy", "parallel", "encrypted", "bandwidth", "auto_converge",
                  "compressed", "resilience", "parallel_supported")
HOST_FIELDS = ("cluster", "address", "agent_url", "migration_address", "migration_network_up",
               "link_speed_mbps", "status", "capabilities")
VM_FIELDS = ("memory_mib", "vcpus", "kernel", "initrd", "cmdline", "accel", "memtune_hard_limit_kib",
             "console_log", "emulator", "machine", "cluster", "host", "status", "workload")


def known(kind: str, changes: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown {kind} field")
    return dict(changes)


# ---------------------------------------------------------------- views

def cluster_view(store: Store, c: ClusterRecord) -> dict[str, Any]:
    return c.to_dict(policy_name=store.policies.name_of(c.options.policy_id))


def vm_view(store: Store, v: VmRecord) -> dict[str, Any]:
    return v.to_dict(policy_name=store.policies.name_of(v.overrides.policy_id))


# ---------------------------------------------------------------- changes

def create_cluster(store: Store, name: str, changes: Mapping[str, Any]) -> ClusterRecord:
    return store.clusters.create(name, **known("cluster", changes, CLUSTER_FIELDS))


def update_cluster(store: Store, name: str, changes: Mapping[str, Any]) -> ClusterRecord:
    return store.clusters.update(name, **known("cluster", changes, CLUSTER_FIELDS))


def add_host(store: Store, name: str, *, cluster: str, address: str, changes: Mapping[str, Any]) -> HostRecord:
    return store.hosts.add(name, cluster=cluster, address=address,
                           **known("host", changes, HOST_FIELDS[2:]))


def update_host(store: Store, name: str, changes: Mapping[str, Any]) -> HostRecord:
    return store.hosts.update(name, **known("host", changes, HOST_FIELDS))


def update_vm(store: Store, ref: str, changes: Mapping[str, Any],
              overrides: Mapping[str, Any] | None = None) -> VmRecord:
    return store.vms.update(ref, overrides=overrides, **known("VM", changes, VM_FIELDS))

