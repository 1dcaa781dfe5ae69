"""The inventory use cases: clusters, hosts and VMs as the REST API reads and changes them.

Changes arrive as mappings of the fields a client sent (a PATCH changes only those); an unknown
field is bad input naming it. Every value is checked and turned into its value type here
(ferry.engine.validation, ferry.engine.vm_validation) before a repository stores it, so nothing
the engine cannot store and give back, and nothing an agent would refuse, is kept. The rules
that span aggregates are here too: the zero-copy gate (a zero-copy policy, the cluster's or a
VM's own, only where the cluster supports parallel migrations) and where a VM may run
(ferry.engine.db.placement). The repositories only persist. Views are the records' JSON
forms, with the names of the policies they refer to.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.common.errors import Conflict, InvalidInput
from ferry.common.vmspec import VmSpec
from ferry.engine.db.placement import host_cluster_error, placed_status, status_error
from ferry.engine.db.records import ClusterRecord, HostRecord, HostStatus, VmRecord, VmStatus
from ferry.engine.db.repos.clusters import DEFAULT_POLICY_ID
from ferry.engine.db.repos.hosts import default_agent_url
from ferry.engine.db.repos.vms import OVERRIDE_FIELDS
from ferry.engine.db.store import Store
from ferry.engine.options import ResiliencePolicy
from ferry.engine.validation import (
    MAX_LINK_SPEED_MBPS,
    check_address,
    check_bandwidth,
    check_bool,
    check_enum,
    check_json,
    check_name,
    check_object,
    check_optional_int,
    check_parallel,
    check_ref,
    check_string,
    check_text,
    check_url,
    check_zerocopy_gate,
)
from ferry.engine.vm_validation import VmPathRules, check_spec_fields, check_workload
from ferry.protocol.schedule import MAX_DOWNTIME_MS  # the VM.migrate limit the planner checks

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


# ---------------------------------------------------------------- clusters

def _cluster_values(store: Store, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The checked changes as the repository's values (the policy by id), in the fields' order."""
    out: dict[str, Any] = {}
    for key in CLUSTER_FIELDS:
        if key not in changes:
            continue
        value = changes[key]
        if key == "description":
            out[key] = check_string("description", value)
        elif key == "policy":
            out[key] = store.policies.get(value).id
        elif key == "parallel":
            out[key] = check_parallel("parallel", value)
        elif key == "bandwidth":
            out[key] = check_bandwidth(value)
        elif key == "resilience":
            out[key] = check_enum(ResiliencePolicy, "resilience", value)
        else:  # encrypted, auto_converge, compressed, parallel_supported
            out[key] = check_bool(key, value)
    return out


def _cluster_gate(store: Store, name: str, values: Mapping[str, Any], policy_id: str,
                  parallel_supported: bool) -> None:
    """The zero-copy gate on the cluster's own policy after the change."""
    policy = store.policies.get(values.get("policy", policy_id))
    field = "policy" if "policy" in values else "parallel_supported"
    check_zerocopy_gate(field, policy, name, values.get("parallel_supported", parallel_supported))


def create_cluster(store: Store, name: str, changes: Mapping[str, Any]) -> ClusterRecord:
    check_name("name", name)
    changes = check_cluster_changes(changes)
    store.clusters.ensure_new(name)
    values = _cluster_values(store, changes)
    _cluster_gate(store, name, values, DEFAULT_POLICY_ID, True)
    return store.clusters.create(name, **values)


def update_cluster(store: Store, name: str, changes: Mapping[str, Any]) -> ClusterRecord:
    name = check_ref("name", name)
    changes = check_cluster_changes(changes)
    current = store.clusters.get(name)
    values = _cluster_values(store, changes)
    _cluster_gate(store, current.name, values, current.options.policy_id, current.options.parallel_supported)
    if current.options.parallel_supported and values.get("parallel_supported") is False:
        for vm in store.vms.list(cluster=current.name):
            if vm.overrides.policy_id and store.policies.get(vm.overrides.policy_id).zerocopy:
                raise InvalidInput(
                    "parallel_supported",
                    f"VM {vm.name!r} uses zero-copy policy {store.policies.name_of(vm.overrides.policy_id)!r}, "
                    "which needs parallel migrations; change its policy before turning parallel support off")
    return store.clusters.update(current.name, **values)


# ---------------------------------------------------------------- hosts

def _host_values(changes: dict[str, Any]) -> dict[str, Any]:
    """The enum, flag and object fields as the repository's values (the rest are checked)."""
    if "status" in changes:
        changes["status"] = check_enum(HostStatus, "status", changes["status"])
    if "migration_network_up" in changes:
        changes["migration_network_up"] = check_bool("migration_network_up", changes["migration_network_up"])
    if "capabilities" in changes:
        changes["capabilities"] = check_object("capabilities", changes["capabilities"])
    return changes


def add_host(store: Store, name: str, *, cluster: str, address: str, changes: Mapping[str, Any]) -> HostRecord:
    check_name("name", name)
    checked = check_host_changes({"cluster": cluster, "address": address, **changes})
    store.hosts.ensure_new(name)
    store.clusters.get(checked["cluster"], field="cluster")
    if checked.get("agent_url") is None:   # the default URL is the host's address: checked the same way
        check_url("agent_url", default_agent_url(checked["address"]))
    return store.hosts.add(name, **_host_values(checked))


def update_host(store: Store, name: str, changes: Mapping[str, Any]) -> HostRecord:
    name = check_ref("name", name)
    checked = check_host_changes(changes)
    current = store.hosts.get(name)
    if "cluster" in checked:
        target = store.clusters.get(checked["cluster"], field="cluster")
        if target.name != current.cluster and store.vms.list(host=current.name):
            raise Conflict(f"host {name!r} runs VMs; move them before moving the host to another cluster")
    return store.hosts.update(current.name, **_host_values(checked))


# ---------------------------------------------------------------- VMs

def _placement(store: Store, cluster: str, host: str | None, status: Any, current: VmStatus | None) -> VmStatus:
    """Where the VM will run and its status after the change; bad input if they do not go together."""
    if host is not None:
        error = host_cluster_error(host, store.hosts.get(host, field="host").cluster, cluster)
        if error:
            raise error
    given = None if status is None else check_enum(VmStatus, "status", status)
    new_status = placed_status(has_host=host is not None, status=given, current=current)
    error = status_error(new_status, host is not None)
    if error:
        raise error
    return new_status


def _override_values(store: Store, overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
    if unknown:
        raise InvalidInput(f"overrides.{unknown[0]}", f"unknown override (known: {', '.join(OVERRIDE_FIELDS)})")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "policy":
            out[key] = None if value is None else store.policies.get(value).id
        elif key == "parallel":
            out[key] = None if value is None else check_parallel("parallel", value)
        elif key in ("encrypted", "auto_converge", "compressed"):
            out[key] = check_bool(key, value, optional=True)
        elif key == "downtime_ms":
            out[key] = check_optional_int("downtime_ms", value, 1, MAX_DOWNTIME_MS)
    return out


def _vm_gate(store: Store, policy_id: str | None, cluster: ClusterRecord) -> None:
    """The zero-copy gate on the VM's own policy, in the cluster it will be in."""
    if policy_id is not None and not cluster.options.parallel_supported:
        check_zerocopy_gate("policy", store.policies.get(policy_id), cluster.name, False)


def add_vm(store: Store, spec: Mapping[str, Any], *, cluster: str, host: str | None = None,
           status: str | None = None, overrides: Mapping[str, Any] | None = None,
           workload: Mapping[str, Any] | None = None, rules: VmPathRules | None = None) -> VmRecord:
    """A new VM: its spec's files only from the engine's allowlists (vm_validation)."""
    spec = check_spec_fields(spec, rules or VmPathRules.from_env())
    _check_refs({"cluster": cluster, "host": host, "status": status}, ("cluster", "host", "status"))
    workload = check_workload("workload", workload, spec.get("memory_mib"))
    overrides = check_overrides(overrides) or {}
    value = VmSpec.from_dict(spec)
    store.vms.ensure_new(value.name, value.effective_uuid)
    cluster_record = store.clusters.get(cluster, field="cluster")
    placed = _placement(store, cluster_record.name, host, status, None)
    values = _override_values(store, overrides)
    _vm_gate(store, values.get("policy"), cluster_record)
    return store.vms.add(value, cluster=cluster_record.name, host=host, status=placed, overrides=values,
                         workload=workload)


def update_vm(store: Store, ref: str, changes: Mapping[str, Any],
              overrides: Mapping[str, Any] | None = None, rules: VmPathRules | None = None) -> VmRecord:
    changes = known("VM", changes, VM_FIELDS)
    spec_keys = [k for k in changes if k not in ("cluster", "host", "status", "workload")]
    changes.update(check_spec_fields({k: changes[k] for k in spec_keys}, rules or VmPathRules.from_env()))
    _check_refs(changes, ("cluster", "host", "status"))
    ref = check_ref("vm", ref)
    if changes.get("workload") is not None:
        memory = changes.get("memory_mib") or store.vms.get(ref).memory_mib
        changes["workload"] = check_workload("workload", changes["workload"], memory)
    overrides = check_overrides(overrides) or {}
    current = store.vms.get(ref)
    if spec_keys:
        VmSpec.from_dict({**current.spec, **{k: changes[k] for k in spec_keys}})   # the spec as it would be
    target = store.clusters.get(current.cluster)
    if "cluster" in changes:
        target = store.clusters.get(changes["cluster"], field="cluster")
        if target.name != current.cluster and current.host is not None and "host" not in changes:
            raise Conflict(f"VM {current.name!r} runs on host {current.host!r} of cluster {current.cluster!r}; "
                           "stop it (or give its new host) before moving it to another cluster")
    if "host" in changes or "status" in changes:
        host = changes["host"] if "host" in changes else current.host
        changes["host"] = host
        changes["status"] = _placement(store, target.name, host, changes.get("status"), current.status)
    values = _override_values(store, overrides)
    _vm_gate(store, values["policy"] if "policy" in values else current.overrides.policy_id, target)
    return store.vms.update(current.name, overrides=values, **changes)
