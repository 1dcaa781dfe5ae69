"""The inventory use cases: clusters, hosts, VMs and policies as the REST API reads and changes them.

Changes arrive as mappings of the fields a client sent (a PATCH changes only those); an unknown
field is bad input naming it, before the repository's typed arguments see it. Every value is
checked here (ferry.engine.validation, ferry.engine.vm_validation) before a repository stores
it, so nothing the engine cannot store and give back, and nothing an agent would refuse, is
kept. Views are the records' JSON forms, with the names of the policies they refer to.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.common.errors import InvalidInput
from ferry.engine.db.records import ClusterRecord, HostRecord, VmRecord
from ferry.engine.db.store import Store
from ferry.engine.validation import (
    MAX_DOWNTIME_MS,
    MAX_LINK_SPEED_MBPS,
    check_address,
    check_bandwidth,
    check_json,
    check_name,
    check_optional_int,
    check_ref,
    check_text,
    check_url,
)
from ferry.engine.vm_validation import VmPathRules, check_spec_fields, check_workload

CLUSTER_FIELDS = ("description", "policy", "parallel", "encrypted", "bandwidth", "auto_converge",
                  "compressed", "resilience", "parallel_supported")
HOST_FIELDS = ("cluster", "address", "agent_url", "migration_address", "migration_network_up",
               "link_speed_mbps", "status", "capabilities")
VM_FIELDS = ("memory_mib", "vcpus", "kernel", "initrd", "cmdline", "accel", "memtune_hard_limit_kib",
             "console_log", "emulator", "machine", "cluster", "host", "status", "workload")


def known(kind: str, changes: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise InvalidInput(check_ref("field", unknown[0]), f"unknown {kind} field")
    return dict(changes)


def _check_refs(changes: Mapping[str, Any], keys: tuple[str, ...], prefix: str = "") -> None:
    """References (a policy, a cluster, a host by name or id) and enum names: storable text;
    the repository looks them up and names the field when they are unknown."""
    for key in keys:
        if changes.get(key) is not None and isinstance(changes[key], str):
            check_ref(prefix + key, changes[key])


def check_cluster_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    changes = known("cluster", changes, CLUSTER_FIELDS)
    if changes.get("description") is not None:
        check_text("description", changes["description"])
    _check_refs(changes, ("policy", "parallel", "resilience"))
    if changes.get("bandwidth") is not None and not isinstance(changes["bandwidth"], str):
        check_bandwidth(changes["bandwidth"])
    return changes


def check_host_changes(changes: Mapping[str, Any], fields: tuple[str, ...] = HOST_FIELDS) -> dict[str, Any]:
    changes = known("host", changes, fields)
    _check_refs(changes, ("cluster", "status"))
    for key in ("address", "migration_address"):
        if changes.get(key) is not None:
            changes[key] = check_address(key, changes[key])
    if changes.get("agent_url") is not None:
        check_url("agent_url", changes["agent_url"])
    if "link_speed_mbps" in changes:
        check_optional_int("link_speed_mbps", changes["link_speed_mbps"], 1, MAX_LINK_SPEED_MBPS)
    if changes.get("capabilities") is not None:
        check_json("capabilities", changes["capabilities"])
    return changes


def check_overrides(overrides: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not overrides:
        return overrides
    # Named like the repository names them ("policy", "downtime_ms"), as the API always has.
    _check_refs(overrides, ("policy", "parallel"))
    if "downtime_ms" in overrides:
        check_optional_int("downtime_ms", overrides["downtime_ms"], 1, MAX_DOWNTIME_MS)
    for key in overrides:
        check_ref("overrides", key)
    return overrides


# ---------------------------------------------------------------- views

def cluster_view(store: Store, c: ClusterRecord) -> dict[str, Any]:
    return c.to_dict(policy_name=store.policies.name_of(c.options.policy_id))


def vm_view(store: Store, v: VmRecord) -> dict[str, Any]:
    return v.to_dict(policy_name=store.policies.name_of(v.overrides.policy_id))


# ---------------------------------------------------------------- changes

def create_cluster(store: Store, name: str, changes: Mapping[str, Any]) -> ClusterRecord:
    return store.clusters.create(check_name("name", name), **check_cluster_changes(changes))


def update_cluster(store: Store, name: str, changes: Mapping[str, Any]) -> ClusterRecord:
    return store.clusters.update(check_ref("name", name), **check_cluster_changes(changes))


def add_host(store: Store, name: str, *, cluster: str, address: str, changes: Mapping[str, Any]) -> HostRecord:
    check_name("name", name)
    checked = check_host_changes({"cluster": cluster, "address": address, **changes})
    return store.hosts.add(name, **checked)


def update_host(store: Store, name: str, changes: Mapping[str, Any]) -> HostRecord:
    return store.hosts.update(check_ref("name", name), **check_host_changes(changes))


def add_vm(store: Store, spec: Mapping[str, Any], *, cluster: str, host: str | None = None,
           status: str | None = None, overrides: Mapping[str, Any] | None = None,
           workload: Mapping[str, Any] | None = None, rules: VmPathRules | None = None) -> VmRecord:
    """A new VM: its spec's files only from the engine's allowlists (vm_validation)."""
    spec = check_spec_fields(spec, rules or VmPathRules.from_env())
    _check_refs({"cluster": cluster, "host": host, "status": status}, ("cluster", "host", "status"))
    workload = check_workload("workload", workload, spec.get("memory_mib"))
    return store.vms.add(spec, cluster=cluster, host=host, status=status,
                         overrides=check_overrides(overrides), workload=workload)


def update_vm(store: Store, ref: str, changes: Mapping[str, Any],
              overrides: Mapping[str, Any] | None = None, rules: VmPathRules | None = None) -> VmRecord:
    changes = known("VM", changes, VM_FIELDS)
    spec_keys = [k for k in changes if k not in ("cluster", "host", "status", "workload")]
    changes.update(check_spec_fields({k: changes[k] for k in spec_keys}, rules or VmPathRules.from_env()))
    _check_refs(changes, ("cluster", "host", "status"))
    if changes.get("workload") is not None:
        memory = changes.get("memory_mib") or store.vms.get(check_ref("vm", ref)).memory_mib
        changes["workload"] = check_workload("workload", changes["workload"], memory)
    return store.vms.update(check_ref("vm", ref), overrides=check_overrides(overrides), **changes)

