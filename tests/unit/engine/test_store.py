"""The store against a real SQLite file and a real PostgreSQL server: what goes in comes back
out as the same value types, and every rule the engine relies on holds on both databases."""
from __future__ import annotations

import pytest

from ferry.common.errors import Conflict, InvalidInput, NotFound
from ferry.common.vmspec import VmSpec
from ferry.engine import audit
from ferry.engine.db import Database, Store, upgrade_database
from ferry.engine.db.records import HostStatus, VmStatus
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ParallelMode,
    ParallelSetting,
    ResiliencePolicy,
    ZeroCopySupport,
)
from ferry.engine.policies import (
    BUILTIN_POLICIES,
    LEGACY_ID,
    MINIMAL_DOWNTIME_ID,
    SUSPEND_WORKLOAD_ID,
    VERY_LARGE_VMS_ID,
)
from ferry.engine.services import inventory, policies
from ferry.engine.services.planning import plan_for_vm
from ferry.engine.vm_validation import VmPathRules
from ferry.protocol.schedule import MAX_DOWNTIME_MS

CUSTOM_POLICY = {
    "name": "Fast lane",
    "description": "short steps",
    "max_migrations": 3,
    "auto_converge": True,
    "init": [{"name": "setDowntime", "params": [50]}],
    "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": [100]}},
                 {"limit": 3, "action": {"name": "setDowntime", "params": [250]}}],
    "last_items": [{"name": "abort", "params": []}],
}


@pytest.fixture
def db(upgraded_db):
    return upgraded_db


@pytest.fixture
def store(db):
    with db.unit_of_work() as store:
        yield store


RULES = VmPathRules(emulators=("/usr/bin/qemu-system-x86_64",), images_dirs=("/var/lib/ferry/images",),
                    console_log_dir="/var/log/ferry")


def spec(name: str, memory_mib: int = 1024, vcpus: int = 2) -> VmSpec:
    return VmSpec(name=name, memory_mib=memory_mib, vcpus=vcpus, kernel="/var/lib/ferry/images/vmlinuz")


def add_vm(store: Store, vm: VmSpec, **kwargs):
    """A VM as the REST API adds one (the inventory use case checks it), not straight into the repository."""
    return inventory.add_vm(store, vm.to_dict(), rules=RULES, **kwargs)


def populate(store: Store) -> None:
    store.clusters.create("c1")
    store.hosts.add("h1", cluster="c1", address="127.0.0.2", link_speed_mbps=10000)
    store.hosts.add("h2", cluster="c1", address="127.0.0.3", migration_address="10.1.0.3")


# ------------------------------------------------------------------ clusters

def test_new_cluster_takes_ovirt_defaults(store):
    c = store.clusters.create("c1")
    o = c.options
    assert o.policy_id == MINIMAL_DOWNTIME_ID
    assert o.parallel == ParallelSetting(ParallelMode.DISABLED)
    assert o.bandwidth == BandwidthSetting(BandwidthMode.AUTO)
    assert (o.encrypted, o.auto_converge, o.compressed) == (False, False, False)
    assert o.resilience is ResiliencePolicy.MIGRATE
    assert o.parallel_supported is True


def test_cluster_options_survive_a_new_session(db):
    with db.unit_of_work() as s:
        inventory.create_cluster(s, "big", dict(
            description="large guests", policy="suspend workload if needed",
            parallel=ParallelSetting(ParallelMode.CUSTOM, 8), encrypted=True,
            bandwidth=BandwidthSetting(BandwidthMode.CUSTOM, 5000), auto_converge=True, compressed=True,
            resilience="do_not_migrate", parallel_supported=False,
        ))
    with db.unit_of_work() as s:
        c = s.clusters.get("big")
    o = c.options
    assert o.policy_id == SUSPEND_WORKLOAD_ID
    assert o.parallel == ParallelSetting(ParallelMode.CUSTOM, 8)
    assert o.bandwidth == BandwidthSetting(BandwidthMode.CUSTOM, 5000)
    assert (o.encrypted, o.auto_converge, o.compressed, o.parallel_supported) == (True, True, True, False)
    assert o.resilience is ResiliencePolicy.DO_NOT_MIGRATE
    assert c.description == "large guests"
    assert c.to_dict(policy_name="Suspend workload if needed")["parallel"] == {"mode": "CUSTOM", "connections": 8}


def test_cluster_update_changes_only_what_is_given(store):
    store.clusters.create("c1", encrypted=True, parallel=ParallelSetting(ParallelMode.AUTO))
    c = store.clusters.update("c1", policy=VERY_LARGE_VMS_ID, bandwidth=BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT))
    assert c.options.policy_id == VERY_LARGE_VMS_ID
    assert c.options.bandwidth.mode is BandwidthMode.HYPERVISOR_DEFAULT
    assert c.options.encrypted is True
    assert c.options.parallel.mode is ParallelMode.AUTO


@pytest.mark.parametrize("changes, field", [
    ({"policy": "No such policy"}, "policy"),
    ({"parallel": "1"}, "parallel.connections"),
    ({"parallel": "CUSTOM:300"}, "parallel.connections"),
    ({"parallel": "sometimes"}, "parallel"),
    ({"resilience": "maybe"}, "resilience"),
    ({"encrypted": "yes"}, "encrypted"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_cluster_options_name_the_field(store, changes, field):
    # As a client sends them (a mapping, unknown keys possible): the inventory use case checks them.
    with pytest.raises(InvalidInput) as err:
        inventory.create_cluster(store, "c1", changes)
    assert err.value.field == field
    with pytest.raises(NotFound):
        store.clusters.get("c1")


def test_zero_copy_policy_needs_parallel_support(store):
    # The zero-copy gate spans a cluster and its policy: the inventory use case keeps it.
    with pytest.raises(InvalidInput) as err:
        inventory.create_cluster(store, "old", {"policy": "Very large VMs", "parallel_supported": False})
    assert err.value.field == "policy"
    assert "does not support parallel migrations" in str(err.value)

    inventory.create_cluster(store, "new", {"policy": "Very large VMs"})
    with pytest.raises(InvalidInput) as err:
        inventory.update_cluster(store, "new", {"parallel_supported": False})
    assert err.value.field == "parallel_supported"
    # Switching the policy away in the same change is fine.
    c = inventory.update_cluster(store, "new", {"parallel_supported": False, "policy": "Minimal downtime"})
    assert c.options.parallel_supported is False


def test_zero_copy_vm_override_needs_parallel_support(store):
    store.clusters.create("old", parallel_supported=False)
    with pytest.raises(InvalidInput) as err:
        add_vm(store, spec("vm1"), cluster="old", overrides={"policy": "Very large VMs"})
    assert err.value.field == "policy"

    store.clusters.create("new")
    add_vm(store, spec("vm2"), cluster="new", overrides={"policy": VERY_LARGE_VMS_ID})
    with pytest.raises(InvalidInput) as err:
        inventory.update_cluster(store, "new", {"parallel_supported": False})
    assert err.value.field == "parallel_supported" and "vm2" in str(err.value)
    # Nor may a VM with a zero-copy policy move into a cluster without parallel support.
    with pytest.raises(InvalidInput) as err:
        inventory.update_vm(store, "vm2", {"cluster": "old"}, rules=RULES)
    assert err.value.field == "policy" and "'old'" in str(err.value)


def test_cluster_names_are_unique_and_in_use_clusters_stay(store):
    populate(store)
    with pytest.raises(Conflict):
        store.clusters.create("c1")
    with pytest.raises(Conflict, match="2 host"):
        store.clusters.delete("c1")
    store.clusters.create("empty")
    store.clusters.delete("empty")
    with pytest.raises(NotFound):
        store.clusters.get("empty")
    assert [c.name for c in store.clusters.list()] == ["c1"]


# ------------------------------------------------------------------ hosts

def test_host_defaults_and_migration_info(store):
    populate(store)
    h1, h2 = store.hosts.get("h1"), store.hosts.get("h2")
    assert h1.agent_url == "https://127.0.0.2:54321/"
    assert h1.status is HostStatus.UNKNOWN
    assert (h1.migration_address, h1.migration_network_up) == (None, False)
    assert (h2.migration_address, h2.migration_network_up) == ("10.1.0.3", True)
    info = h1.migration_info()
    assert (info.name, info.address, info.link_speed_mbps) == ("h1", "127.0.0.2", 10000)
    assert info.zerocopy is ZeroCopySupport.UNKNOWN
    assert [h.name for h in store.hosts.list(cluster="c1")] == ["h1", "h2"]


@pytest.mark.parametrize("caps, support", [
    (None, ZeroCopySupport.UNKNOWN),
    ({"version": "0.9"}, ZeroCopySupport.UNKNOWN),
    ({"zerocopy_migrations": True}, ZeroCopySupport.YES),
    ({"zerocopy_migrations": False}, ZeroCopySupport.NO),
])
def test_capabilities_decide_zero_copy_support(store, caps, support):
    populate(store)
    h = inventory.update_host(store, "h1", {"capabilities": caps, "status": "up"})
    assert h.zerocopy is support
    assert h.status is HostStatus.UP
    assert (h.capabilities_at is None) == (caps is None)
    assert store.hosts.get("h1").capabilities == caps


@pytest.mark.parametrize("kwargs, field", [
    ({"address": "not an address!"}, "address"),
    ({"address": "127.0.0.9", "agent_url": "ftp://x/"}, "agent_url"),
    ({"address": "127.0.0.9", "link_speed_mbps": 0}, "link_speed_mbps"),
    ({"address": "127.0.0.9", "status": "sleepy"}, "status"),
    ({"address": "127.0.0.9", "cluster": "nope"}, "cluster"),
])
def test_bad_host_input_names_the_field(store, kwargs, field):
    populate(store)
    kwargs = {"cluster": "c1", **kwargs}
    with pytest.raises(InvalidInput) as err:
        inventory.add_host(store, "h9", cluster=kwargs.pop("cluster"), address=kwargs.pop("address"), changes=kwargs)
    assert err.value.field == field


def test_a_default_agent_url_is_checked_like_a_given_one(store):
    populate(store)
    with pytest.raises(InvalidInput) as err:
        inventory.add_host(store, "h9", cluster="c1", address="169.254.169.254", changes={})
    assert err.value.field == "agent_url" and "link-local" in str(err.value)


def test_host_running_vms_cannot_go(store):
    populate(store)
    store.vms.add(spec("vm1"), cluster="c1", host="h1")
    with pytest.raises(Conflict, match="vm1"):
        store.hosts.delete("h1")
    store.clusters.create("c2")
    with pytest.raises(Conflict, match="host 'h1' runs VMs; move them"):
        inventory.update_host(store, "h1", {"cluster": "c2"})
    assert inventory.update_host(store, "h2", {"cluster": "c2"}).cluster == "c2"
    store.hosts.delete("h2")
    assert [h.name for h in store.hosts.list()] == ["h1"]


# ------------------------------------------------------------------ VMs

def test_vm_round_trip_with_overrides(db):
    with db.unit_of_work() as st:
        populate(st)
        add_vm(st, spec("vm1", 4096, 4), cluster="c1", host="h1", overrides={
            "policy": "Post-copy migration", "parallel": "CUSTOM:4", "encrypted": False,
            "auto_converge": True, "compressed": None, "downtime_ms": 700,
        }, workload={"dirty_mib_s": 64})
    with db.unit_of_work() as s:
        vm = s.vms.get("vm1")
    assert (vm.cluster, vm.host, vm.status) == ("c1", "h1", VmStatus.UP)
    assert (vm.memory_mib, vm.vcpus) == (4096, 4)
    assert VmSpec.from_dict(vm.spec).effective_uuid == vm.uuid
    o = vm.overrides
    assert o.parallel == ParallelSetting(ParallelMode.CUSTOM, 4)
    assert (o.encrypted, o.auto_converge, o.compressed, o.downtime_ms) == (False, True, None, 700)
    assert vm.workload == {"dirty_mib_s": 64}
    with db.unit_of_work() as s:
        assert s.vms.get(vm.uuid).name == "vm1"


def test_vm_override_update_is_partial_and_none_means_inherit(store):
    populate(store)
    add_vm(store, spec("vm1"), cluster="c1", overrides={"encrypted": True, "downtime_ms": 500})
    vm = inventory.update_vm(store, "vm1", {}, overrides={"encrypted": None, "parallel": "AUTO_PARALLEL"}, rules=RULES)
    assert vm.overrides.encrypted is None
    assert vm.overrides.downtime_ms == 500
    assert vm.overrides.parallel == ParallelSetting(ParallelMode.AUTO_PARALLEL)


def test_any_vm_downtime_the_store_accepts_the_planner_sends(store):
    """One downtime limit, the VM.migrate parameter's (protocol/schedule.py): the store used to
    stop at 600,000 ms while the planner and the agent take up to 3,600,000."""
    populate(store)
    add_vm(store, spec("vm1"), cluster="c1", host="h1", overrides={"downtime_ms": MAX_DOWNTIME_MS})
    assert MAX_DOWNTIME_MS == 3_600_000
    assert plan_for_vm(store, "vm1", to="h2").params.downtime == MAX_DOWNTIME_MS
    with pytest.raises(InvalidInput) as err:
        inventory.update_vm(store, "vm1", {}, overrides={"downtime_ms": MAX_DOWNTIME_MS + 1}, rules=RULES)
    assert (err.value.field, err.value.reason) == ("downtime_ms", f"must be from 1 to {MAX_DOWNTIME_MS}, got 3600001")
    assert store.vms.get("vm1").overrides.downtime_ms == MAX_DOWNTIME_MS


@pytest.mark.parametrize("overrides, field", [
    ({"policy": "nope"}, "policy"),
    ({"parallel": "1"}, "parallel.connections"),
    ({"parallel": "300"}, "parallel.connections"),
    ({"downtime_ms": 0}, "downtime_ms"),
    ({"encrypted": "on"}, "encrypted"),
    ({"speed": 3}, "overrides.speed"),
])
def test_bad_vm_overrides_name_the_field(store, overrides, field):
    populate(store)
    with pytest.raises(InvalidInput) as err:
        add_vm(store, spec("vm1"), cluster="c1", overrides=overrides)
    assert err.value.field == field


def test_vm_placement_rules(store):
    populate(store)
    store.clusters.create("c2")
    store.hosts.add("x1", cluster="c2", address="127.0.0.5")
    vm = add_vm(store, spec("vm1"), cluster="c1")
    assert (vm.host, vm.status) == (None, VmStatus.DOWN)

    def update(**changes):   # as the REST API changes a VM: the inventory use case checks placement
        return inventory.update_vm(store, "vm1", changes, rules=RULES)

    with pytest.raises(InvalidInput) as err:
        update(host="x1")
    assert err.value.field == "host"
    vm = update(host="h2")
    assert (vm.host, vm.status) == ("h2", VmStatus.UP)
    assert update(status="paused").status is VmStatus.PAUSED
    with pytest.raises(Conflict, match="stop it"):
        update(cluster="c2")
    with pytest.raises(InvalidInput) as err:
        update(status="DOWN")
    assert err.value.field == "status"
    vm = update(host=None)
    assert (vm.host, vm.status) == (None, VmStatus.DOWN)
    with pytest.raises(InvalidInput) as err:
        update(status="UP")
    assert err.value.field == "host"
    assert update(cluster="c2", host="x1").host == "x1"
    assert [v.name for v in store.vms.list(host="x1")] == ["vm1"]
    assert update(memory_mib=2048).memory_mib == 2048
    with pytest.raises(InvalidInput) as err:
        update(vcpus=0)
    assert err.value.field == "vcpus"
    with pytest.raises(InvalidInput) as err:
        store.vms.update("vm1", vcpus=0)   # the spec is a value that checks itself, wherever it is built
    assert err.value.field == "vcpus"


def test_vm_name_and_uuid_are_unique(store):
    populate(store)
    store.vms.add(spec("vm1"), cluster="c1")
    with pytest.raises(Conflict):
        store.vms.add(spec("vm1"), cluster="c1")
    uuid = store.vms.get("vm1").uuid
    with pytest.raises(Conflict, match="uuid"):
        store.vms.add(VmSpec(name="vm2", memory_mib=64, vcpus=1, kernel="/k", uuid=uuid), cluster="c1")


# ------------------------------------------------------------------ policies

def test_built_in_policies_are_listed_first_with_ovirt_ids(store):
    policies.create_policy(store, CUSTOM_POLICY)
    listed = store.policies.list()
    assert [p.id for p in listed[:len(BUILTIN_POLICIES)]] == [p.id for p in BUILTIN_POLICIES]
    assert LEGACY_ID in {p.id for p in listed}
    assert [p.name for p in listed[len(BUILTIN_POLICIES):]] == ["Fast lane"]
    assert store.policies.get("very LARGE vms").id == VERY_LARGE_VMS_ID


def test_custom_policy_round_trip(db):
    with db.unit_of_work() as s:
        created = policies.create_policy(s, CUSTOM_POLICY)
    with db.unit_of_work() as s:
        got = s.policies.get("fast lane")
    assert got == created
    assert got.max_migrations == 3 and got.auto_converge and not got.builtin
    assert got.schedule().to_wire() == {
        "init": [{"name": "setDowntime", "params": ["50"]}],
        "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["100"]}},
                     {"limit": 3, "action": {"name": "setDowntime", "params": ["250"]}},
                     {"limit": -1, "action": {"name": "abort", "params": []}}],
    }


def test_built_in_policies_are_read_only(store):
    with pytest.raises(Conflict, match="built-in"):
        policies.replace_policy(store, "Legacy", CUSTOM_POLICY)
    with pytest.raises(Conflict, match="built-in"):
        store.policies.delete(VERY_LARGE_VMS_ID)
    with pytest.raises(Conflict, match="already exists"):
        policies.create_policy(store, {**CUSTOM_POLICY, "name": "minimal downtime"})


def test_policy_in_use_cannot_be_removed_and_can_be_replaced(store):
    p = policies.create_policy(store, CUSTOM_POLICY)
    store.clusters.create("c1", policy="Fast lane")
    with pytest.raises(Conflict, match="cluster 'c1'"):
        store.policies.delete("Fast lane")
    q = policies.replace_policy(store, p.id, {**CUSTOM_POLICY, "name": "Faster lane", "max_migrations": 1})
    assert q.id == p.id and store.policies.get("faster lane").max_migrations == 1
    store.clusters.update("c1", policy="Legacy")
    store.policies.delete(p.id)
    with pytest.raises(NotFound):
        store.policies.find(p.id)


def test_a_used_policy_cannot_turn_zero_copy_where_parallel_is_unsupported(store):
    policies.create_policy(store, CUSTOM_POLICY)
    store.clusters.create("old", policy="Fast lane", parallel_supported=False)
    with pytest.raises(InvalidInput) as err:
        policies.replace_policy(store, "Fast lane", {**CUSTOM_POLICY, "zerocopy": True})
    assert err.value.field == "zerocopy"


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"),
    ({"max_migrations": 0}, "max_migrations"),
    ({"max_migrations": "2"}, "max_migrations"),
    ({"init": [{"name": "reboot"}]}, "init[0].name"),
    ({"init": [{"name": "setDowntime", "params": []}]}, "init[0].params"),
    ({"last_items": [{"name": "abort", "params": [1]}]}, "last_items[0].params"),
    ({"stalling": [{"limit": 2, "action": "abort"}, {"limit": 1, "action": "abort"}]}, "stalling[1].limit"),
    ({"zerocopy": 1}, "zerocopy"),
    ({"builtin": True}, "builtin"),
    ({"colour": "red"}, "colour"),
])
def test_bad_custom_policy_names_the_field(store, change, field):
    with pytest.raises(InvalidInput) as err:
        policies.create_policy(store, {**CUSTOM_POLICY, **change})
    assert err.value.field == field


# ------------------------------------------------------------------ migrations and events

def test_migration_lifecycle_and_events(db):
    with db.unit_of_work() as st:
        populate(st)
        st.vms.add(spec("vm1"), cluster="c1", host="h1")
        mig = st.migrations.create("vm1", source="h1", destination="h2", plan={"params": {"zerocopy": True}})
        st.events.record_audit(audit.VM_MIGRATION_START, vm="vm1", host="h1", migration_id=mig.id,
                        source="h1", destination="h2", user="admin")
    with db.unit_of_work() as st:
        assert [m.id for m in st.migrations.list(active=True)] == [mig.id]
        m = st.migrations.update(mig.id, state="SUCCEEDED", progress=100, result={"downtime_ms": 80})
        assert (m.state, m.progress, m.result, m.plan) == ("SUCCEEDED", 100, {"downtime_ms": 80},
                                                            {"params": {"zerocopy": True}})
        st.events.add(63, "done", vm="vm1", migration_id=mig.id)
    with db.unit_of_work() as st:
        assert st.migrations.list(active=True) == []
        events = st.events.list(vm="vm1")
        assert [e.code for e in events] == [62, 63]
        assert events[0].message == ("Migration started (VM: vm1, Source: h1, Destination: h2, User: admin).")
        assert events[0].severity == "normal" and events[0].host == "h1"
        assert [e.code for e in st.events.list(after_id=events[0].id)] == [63]
        assert [e.code for e in st.events.list(limit=1)] == [63]
        st.vms.update("vm1", host=None)
        st.vms.delete("vm1")
    with db.unit_of_work() as st:
        assert st.migrations.list() == []
        events = st.events.list()
        assert [(e.code, e.vm, e.migration_id) for e in events] == [(62, None, None), (63, None, None)]


def test_vm_with_an_active_migration_cannot_be_removed(store):
    populate(store)
    store.vms.add(spec("vm1"), cluster="c1", host="h1")
    store.migrations.create("vm1", source="h1", destination="h2", state="RUNNING")
    with pytest.raises(Conflict, match="migrating"):
        store.vms.delete("vm1")
